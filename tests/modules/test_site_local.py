# -*- coding: utf-8 -*-
"""One real fleet.mtls.site run on simulated hosts, through whichever ansible-core runs the tests.

The hosts are inventory names on localhost (``ansible_connection: local``), each with its own
``mtls_dir``; the CA holder is the controller with ``mtls_ca_dir`` in the test's tmp dir. There is
no service host (NGINX and Mosquitto need packages and systemd; molecule covers them), so the run
covers the ca and identity roles and the verify play: CA generation state, host-made and central
keys, one batched signing, install of leaves, chains, trust and CRL bundles, and a second run that
changes nothing. ``make compat`` runs this on the oldest ansible-core meta/runtime.yml claims.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from conftest import _ansible_playbook, _collections_path

PASSPHRASE = "site-run-ca-passphrase"


def _inventory(tmp_path):
    hosts = {
        # Identities declared by hand: a client, a server identity with SANs, a centrally keyed client.
        "app1": {"mtls_dir": str(tmp_path / "hosts" / "app1"), "mtls_identities": [
            {"name": "app1", "profile": "client"},
            {"name": "api", "profile": "server", "common_name": "api.fleet.test",
             "sans": ["DNS:api-internal.fleet.test", "IP:127.0.0.1"]},
            {"name": "device", "profile": "client", "central_key": True, "key_type": "ec_p384"},
        ]},
        # The default identity from group membership (a client named after the host).
        "app2": {"mtls_dir": str(tmp_path / "hosts" / "app2")},
    }
    return {"all": {
        "vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                 "mtls_ca_dir": str(tmp_path / "ca"), "mtls_ca_passphrase": PASSPHRASE,
                 "mtls_identity_gather_facts": False},
        "children": {"mtls_clients": {"hosts": hosts}}}}


def _site(tmp_path):
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps(_inventory(tmp_path)))
    env = dict(os.environ)
    env.update({"ANSIBLE_COLLECTIONS_PATH": _collections_path(), "ANSIBLE_NOCOLOR": "1",
                "ANSIBLE_STDOUT_CALLBACK": "default", "ANSIBLE_LOCALHOST_WARNING": "false",
                "ANSIBLE_PYTHON_INTERPRETER": sys.executable})
    proc = subprocess.run([_ansible_playbook(), "-i", str(inventory), "fleet.mtls.site"],
                          capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=600,
                          check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    recap = dict(re.findall(r"^(\S+)\s+:\s+ok=\d+\s+changed=(\d+)", output, re.M))
    assert set(recap) == {"localhost", "app1", "app2"}, output[-3000:]
    return {host: int(changed) for host, changed in recap.items()}, output


def _cert(path):
    with open(path, "rb") as handle:
        return x509.load_pem_x509_certificate(handle.read())


def test_site_run_on_simulated_hosts_then_nothing_to_do(tmp_path):
    changed, output = _site(tmp_path)
    assert all(changed.values()), changed
    assert PASSPHRASE not in output

    # The generation state keeps its types (ansible-core < 2.19 templated "active" into a string).
    with open(tmp_path / "ca" / "rotation.json") as handle:
        rotation = json.load(handle)
    assert rotation["active"] == 1 and rotation["generations"][0]["id"] == 1

    issuing = _cert(tmp_path / "ca" / "issuing-1" / "ca.crt")
    for host, name, eku in [("app1", "app1", ExtendedKeyUsageOID.CLIENT_AUTH),
                            ("app1", "api", ExtendedKeyUsageOID.SERVER_AUTH),
                            ("app1", "device", ExtendedKeyUsageOID.CLIENT_AUTH),
                            ("app2", "app2", ExtendedKeyUsageOID.CLIENT_AUTH)]:
        base = tmp_path / "hosts" / host
        key = base / "private" / ("%s.key" % name)
        assert stat.S_IMODE(os.stat(key).st_mode) == 0o600, key
        leaf = _cert(base / "certs" / ("%s.crt" % name))
        assert leaf.issuer == issuing.subject
        assert list(leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [eku]
        verify = subprocess.run(
            ["openssl", "verify", "-CAfile", str(base / "trust-bundle.pem"), "-crl_check",
             "-CRLfile", str(base / "crl.pem"), str(base / "certs" / ("%s.chain.pem" % name))],
            capture_output=True, text=True, check=False)
        assert verify.returncode == 0, verify.stdout + verify.stderr
    api = _cert(tmp_path / "hosts" / "app1" / "certs" / "api.crt")
    sans = api.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(sans.get_values_for_type(x509.DNSName)) == {"api.fleet.test", "api-internal.fleet.test"}
    # The central key was handed over and removed from the CA holder.
    assert [entry[2] for entry in os.walk(tmp_path / "ca" / "central-keys") if entry[2]] == []

    again = _site(tmp_path)[0]
    assert again == {"localhost": 0, "app1": 0, "app2": 0}
