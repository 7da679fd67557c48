"""fleet.mtls.cert_info through ansible-playbook against localhost."""

from __future__ import annotations

import datetime
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "unit"))

from pki_factory import Pki, crl_pem, make_crl, now  # noqa: E402

DAY = datetime.timedelta(days=1)
PASSPHRASE = "cert-info-key-pass-7731"


@pytest.fixture(scope="module")
def pki_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("certinfo")
    pki = Pki()
    web = pki.server("web.test", days=30)
    revoked = pki.client("revoked.test")
    files = {
        "pki": pki, "web": web,
        "web_paths": web.write(str(directory), "web"),
        "locked": web.write(str(directory), "web-locked", passphrase=PASSPHRASE)["key"],
        "other_key": pki.client("other.test").write(str(directory), "other")["key"],
        "expired": pki.client("old.test", not_before=now() - 40 * DAY,
                              not_after=now() - DAY).write(str(directory), "old")["chain"],
        "rogue": pki.foreign_issuing.issue("rogue.test").write(str(directory), "rogue")["chain"],
        "revoked": revoked.write(str(directory), "revoked")["chain"],
        "bundle": str(directory / "trust-bundle.pem"),
        "root_only": str(directory / "root.pem"),
        "crl": str(directory / "crl.pem"),
        "garbage": str(directory / "garbage.pem"),
        "dir": directory,
    }
    (directory / "trust-bundle.pem").write_bytes(pki.trust_bundle_pem)
    (directory / "root.pem").write_bytes(pki.root.cert_pem)
    (directory / "crl.pem").write_bytes(crl_pem(make_crl(pki.root), make_crl(pki.issuing, revoked=[revoked.cert])))
    (directory / "garbage.pem").write_bytes(b"this is not a certificate\n")
    return files


def test_full_inspection_of_a_chain_file(ansible_module, pki_dir):
    paths = pki_dir["web_paths"]
    run = ansible_module("cert_info", {"path": paths["chain"], "key_path": paths["key"],
                                       "trust_bundle": pki_dir["root_only"], "crl": pki_dir["crl"],
                                       "purpose": "serverAuth"})
    assert not run.get("failed"), run.result
    assert run["changed"] is False and run["exists"] is True and run["count"] == 2
    assert run["subject"] == "CN=web.test,O=fleet-mtls tests"
    assert run["sans"] == ["DNS:localhost", "IP:127.0.0.1"]
    assert run["serial"] == format(pki_dir["web"].cert.serial_number, "x")
    assert run["profile"] == "server" and run["eku"] == ["serverAuth"]
    assert run["lifetime_days"] == 30.0 and 29.9 <= run["days_left"] <= 30.0
    assert run["in_renewal_window"] is False
    assert run["key_exists"] is True and run["key_match"] is True
    # the chain file's intermediate leads to the root-only bundle
    assert run["chain_valid"] is True and run["chain_reason"] is None
    assert run["chain_path"] == ["CN=web.test,O=fleet-mtls tests", "CN=Test Issuing CA,O=fleet-mtls tests",
                                 "CN=Test Root CA,O=fleet-mtls tests"]
    assert run["revocation"] == "good" and run["revoked"] is False
    assert "certificates" not in run
    assert "PRIVATE KEY" not in run.output


def test_all_certificates_content_and_check_mode(ansible_module, pki_dir):
    with open(pki_dir["bundle"]) as handle:
        bundle = handle.read()
    run = ansible_module("cert_info", {"content": bundle, "all": True}, check=True)
    assert not run.get("failed"), run.result
    assert run["changed"] is False and run["count"] == 2
    subjects = [c["subject"] for c in run["certificates"]]
    assert subjects == ["CN=Test Root CA,O=fleet-mtls tests", "CN=Test Issuing CA,O=fleet-mtls tests"]
    assert all(c["is_ca"] for c in run["certificates"])
    assert run["key_match"] is None and run["chain_valid"] is None and run["revocation"] is None


def test_missing_file_is_reported_not_failed(ansible_module, pki_dir):
    run = ansible_module("cert_info", {"path": str(pki_dir["dir"] / "absent.crt"),
                                       "trust_bundle": pki_dir["bundle"]})
    assert not run.get("failed") and run["exists"] is False and run["changed"] is False


def test_key_mismatch_encrypted_key_and_missing_key(ansible_module, pki_dir):
    chain = pki_dir["web_paths"]["chain"]
    mismatch = ansible_module("cert_info", {"path": chain, "key_path": pki_dir["other_key"]})
    assert mismatch["key_match"] is False and mismatch["key_exists"] is True
    locked = ansible_module("cert_info", {"path": chain, "key_path": pki_dir["locked"],
                                          "key_passphrase": PASSPHRASE})
    assert locked["key_match"] is True
    assert PASSPHRASE not in locked.output
    absent = ansible_module("cert_info", {"path": chain, "key_path": str(pki_dir["dir"] / "none.key")})
    assert not absent.get("failed") and absent["key_exists"] is False and absent["key_match"] is False


def test_chain_failures_name_reason_and_culprit(ansible_module, pki_dir):
    expired = ansible_module("cert_info", {"path": pki_dir["expired"], "trust_bundle": pki_dir["bundle"]})
    assert expired["chain_valid"] is False and expired["chain_reason"] == "expired"
    assert expired["chain_failed_subject"] == "CN=old.test,O=fleet-mtls tests"
    assert expired["days_left"] < 0 and expired["in_renewal_window"] is True
    rogue = ansible_module("cert_info", {"path": pki_dir["rogue"], "trust_bundle": pki_dir["bundle"]})
    assert rogue["chain_valid"] is False and rogue["chain_reason"] == "unknown issuer"
    wrong = ansible_module("cert_info", {"path": pki_dir["web_paths"]["chain"], "trust_bundle": pki_dir["bundle"],
                                         "purpose": "clientAuth"})
    assert wrong["chain_reason"] == "wrong purpose"


def test_revoked_and_renewal_window(ansible_module, pki_dir):
    run = ansible_module("cert_info", {"path": pki_dir["revoked"], "crl": pki_dir["crl"], "renew_days": 40})
    assert run["revoked"] is True and run["revocation"] == "revoked"
    assert run["revocation_reason"] == "keyCompromise" and run["revocation_date"].endswith("Z")
    assert run["in_renewal_window"] is True


@pytest.mark.parametrize("args, message", [
    ({"path": "{garbage}"}, "{garbage} is not a PEM certificate or bundle"),
    ({"path": "{chain}", "key_path": "{dir}"}, "cannot read private key {dir}"),
    ({"path": "{chain}", "key_path": "{garbage}"}, "private key {garbage} is not a readable PEM private key"),
    ({"path": "{chain}", "key_path": "{locked}"}, "private key {locked} is encrypted: a passphrase is required"),
    ({"path": "{chain}", "trust_bundle": "{dir}/missing-bundle.pem"}, "trust_bundle {dir}/missing-bundle.pem does not exist"),
    ({"path": "{chain}", "trust_bundle": "{garbage}"}, "trust_bundle {garbage} is not a PEM certificate or bundle"),
    ({"path": "{chain}", "crl": "{bundle}"}, "crl {bundle} holds no CRL"),
    ({"content": ""}, "content is empty"),
])
def test_bad_inputs_fail_with_a_clear_message(ansible_module, pki_dir, args, message):
    values = {"garbage": pki_dir["garbage"], "chain": pki_dir["web_paths"]["chain"], "dir": str(pki_dir["dir"]),
              "locked": pki_dir["locked"], "bundle": pki_dir["bundle"]}
    run = ansible_module("cert_info", dict((k, v.format(**values) if isinstance(v, str) else v)
                                           for k, v in args.items()))
    assert run.get("failed") is True
    assert message.format(**values) in run["msg"]
    assert "PRIVATE KEY" not in run.output


def test_every_installed_leaf_of_an_mtls_dir(ansible_module, pki_dir, tmp_path):
    pki = pki_dir["pki"]
    certs = tmp_path / "mtls" / "certs"
    certs.mkdir(parents=True)
    pki_dir["web"].write(str(certs), "web")
    client = pki.client("app.test")
    client.write(str(certs), "app")
    os.remove(str(certs / "app.chain.pem"))
    (certs / ".hidden.crt").write_bytes(client.cert_pem)
    os.symlink(str(certs / "web.crt"), str(certs / "link.crt"))
    (certs / "web.csr").write_text("not a leaf")
    (tmp_path / "mtls" / "trust-bundle.pem").write_bytes(pki.trust_bundle_pem)

    leaves = ansible_module("cert_info", {"mtls_dir": str(tmp_path / "mtls")}, check=True)
    assert not leaves.get("failed"), leaves.result
    assert [(leaf["identity"], leaf["path"], leaf["exists"]) for leaf in leaves["leaves"]] == [
        ("app", str(certs / "app.crt"), True), ("web", str(certs / "web.crt"), True)]
    assert leaves["leaves"][0]["profile"] == "client" and leaves["leaves"][1]["subject"].startswith("CN=web.test")
    assert leaves["leaves"][1]["count"] == 1

    chains = ansible_module("cert_info", {"mtls_dir": str(tmp_path / "mtls"), "chain_files": True, "all": True,
                                          "trust_bundle": str(tmp_path / "mtls" / "trust-bundle.pem")})
    assert not chains.get("failed"), chains.result
    app, web = chains["leaves"]
    assert app == {"identity": "app", "path": str(certs / "app.chain.pem"), "certificate_path": str(certs / "app.crt"),
                   "exists": False}
    assert web["count"] == 2 and len(web["certificates"]) == 2 and web["chain_valid"] is True

    empty = ansible_module("cert_info", {"mtls_dir": str(tmp_path / "nothing")})
    assert not empty.get("failed") and empty["leaves"] == []
    refused = ansible_module("cert_info", {"mtls_dir": str(tmp_path / "mtls"), "key_path": "/x"})
    assert refused.get("failed") and "cannot be combined with mtls_dir" in refused["msg"]

    (certs / "broken.crt").write_text("garbage")
    broken = ansible_module("cert_info", {"mtls_dir": str(tmp_path / "mtls")})
    assert broken.get("failed") and broken["msg"].startswith("broken.crt (identity broken): ")


def test_renewal_check_of_every_installed_identity(ansible_module, pki_dir, tmp_path):
    pki = pki_dir["pki"]
    mtls = tmp_path / "mtls"
    (mtls / "certs").mkdir(parents=True)
    (mtls / "private").mkdir()

    def install(identity, name):
        paths = identity.write(str(mtls / "certs"), name)
        os.rename(paths["key"], str(mtls / "private" / (name + ".key")))

    install(pki_dir["web"], "web")
    install(pki.client("app.test"), "app")
    install(pki.client("db.test"), "db")
    # db's key is replaced by another identity's: the certificate no longer belongs to it.
    os.replace(str(mtls / "private" / "app.key"), str(mtls / "private" / "db.key"))

    run = ansible_module("cert_info", {"mtls_dir": str(mtls), "chain_files": True, "renewal_check": True})
    assert not run.get("failed"), run.result
    reasons = dict((leaf["identity"], leaf["renewal"]["reason"]) for leaf in run["leaves"])
    assert reasons == {"app": "key_missing", "db": "key_mismatch", "web": "valid"}
    assert run["leaves"][1]["renewal"]["needs_issue"] is True
    assert "PRIVATE KEY" not in run.output

    plain = ansible_module("cert_info", {"mtls_dir": str(mtls)})
    assert all("renewal" not in leaf for leaf in plain["leaves"])
    refused = ansible_module("cert_info", {"path": str(mtls / "certs" / "web.crt"), "renewal_check": True})
    assert refused.get("failed") and "renewal_check only applies with mtls_dir" in refused["msg"]

    (mtls / "private" / "web.key").write_text("not a key")
    broken = ansible_module("cert_info", {"mtls_dir": str(mtls), "renewal_check": True})
    assert broken.get("failed") and broken["msg"].startswith("web.crt (identity web): ")
