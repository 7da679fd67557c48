"""fleet.mtls.tls_probe through ansible-playbook against openssl s_server on 127.0.0.1."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "unit"))

import tls_servers  # noqa: E402
from pki_factory import Pki  # noqa: E402

PASSPHRASE = "probe-key-pass-5521"


@pytest.fixture(scope="module")
def pki_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("probe-module")
    pki = Pki()
    files = {
        "dir": str(directory),
        "server": pki.server("server.test").write(str(directory), "server"),
        "client": pki.client("client.test").write(str(directory), "client", passphrase=PASSPHRASE),
        "bundle": str(directory / "trust-bundle.pem"),
    }
    (directory / "trust-bundle.pem").write_bytes(pki.trust_bundle_pem)
    with open(files["client"]["key"], "rb") as handle:
        files["client_key_pem"] = handle.read().decode()
    return files


@pytest.fixture(scope="module")
def mtls_server(request, pki_dir):
    server = tls_servers.start_s_server(pki_dir["dir"], pki_dir["server"], pki_dir["bundle"],
                                        ["-Verify", "1", "-verify_return_error"])
    request.addfinalizer(server.stop)
    return server


def _args(server, pki_dir, with_identity=False, **extra):
    args = {"host": "127.0.0.1", "port": server.port, "ca_bundle": pki_dir["bundle"], "read_timeout": 0.5}
    if with_identity:
        args.update(client_cert=pki_dir["client"]["chain"], client_key=pki_dir["client"]["key"],
                    client_key_passphrase=PASSPHRASE)
    args.update(extra)
    return args


def _assert_no_secrets(run, pki_dir):
    assert PASSPHRASE not in run.output
    assert "PRIVATE KEY" not in run.output
    body = pki_dir["client_key_pem"].splitlines()[1]
    assert body not in run.output


def test_expect_rejected_without_client_cert(ansible_module, mtls_server, pki_dir):
    run = ansible_module("tls_probe", _args(mtls_server, pki_dir, expect="rejected"))
    assert not run.get("failed"), run.result
    assert run["changed"] is False
    assert (run["outcome"], run["stage"]) == ("rejected", "post_handshake")
    assert run["error"] == "tlsv13 alert certificate required"


def test_expect_accepted_fails_with_the_reason(ansible_module, mtls_server, pki_dir):
    run = ansible_module("tls_probe", _args(mtls_server, pki_dir, expect="accepted"))
    assert run.get("failed") is True
    assert run["msg"] == ("expected 127.0.0.1:%d to accept the connection, but it was rejected at the "
                          "post_handshake stage: tlsv13 alert certificate required" % mtls_server.port)
    assert run["tls_version"] == "TLSv1.3" and run["peer"]["common_name"] == "server.test"


def test_client_identity_accepted_in_check_mode_without_secrets(ansible_module, mtls_server, pki_dir):
    run = ansible_module("tls_probe", _args(mtls_server, pki_dir, with_identity=True, expect="accepted"),
                         check=True)
    assert not run.get("failed"), run.result
    assert run["accepted"] is True and run["changed"] is False
    assert run["peer"]["sans"] == ["DNS:localhost", "IP:127.0.0.1"]
    assert run["elapsed_ms"] >= run["handshake_ms"] > 0
    _assert_no_secrets(run, pki_dir)


def test_expect_rejected_fails_when_accepted(ansible_module, mtls_server, pki_dir):
    run = ansible_module("tls_probe", _args(mtls_server, pki_dir, with_identity=True, expect="rejected"))
    assert run.get("failed") is True
    assert run["msg"].startswith("expected 127.0.0.1:%d to reject the connection, but it was accepted (TLSv1.3"
                                 % mtls_server.port)
    _assert_no_secrets(run, pki_dir)


@pytest.mark.parametrize("extra, message", [
    ({"port": 70000}, "port 70000 is out of range: use 1-65535"),
    ({"client_cert": "{client_cert}"}, "client_cert and client_key must be given together (got only client_cert)"),
    ({"protocol": "smtp"}, "value of protocol must be one of: tls, http, mqtt, got: smtp"),
    ({"expect": "maybe"}, "value of expect must be one of: accepted, rejected, got: maybe"),
    ({"ca_bundle": "{dir}/no-bundle.pem"}, "ca_bundle {dir}/no-bundle.pem does not exist"),
    ({"client_cert": "{client_cert}", "client_key": "{client_key}", "client_key_passphrase": "wrong-pass"},
     "wrong passphrase for client_key {client_key}"),
])
def test_bad_inputs_fail_with_a_clear_message(ansible_module, mtls_server, pki_dir, extra, message):
    values = {"dir": pki_dir["dir"], "client_cert": pki_dir["client"]["chain"],
              "client_key": pki_dir["client"]["key"]}
    args = _args(mtls_server, pki_dir)
    args.update(dict((k, v.format(**values) if isinstance(v, str) else v) for k, v in extra.items()))
    run = ansible_module("tls_probe", args)
    assert run.get("failed") is True
    assert message.format(**values) in run["msg"]
    _assert_no_secrets(run, pki_dir)
