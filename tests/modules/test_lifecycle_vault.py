# -*- coding: utf-8 -*-
"""fleet.mtls.revoke and fleet.mtls.rotate with ``mtls_ca_backend: vault``, against a real OpenBao server.

The fleet of test_identity_vault.py (simulated hosts on localhost, the mount prepared by
fleet.mtls.vault_pki_mount, a token of exactly the docs' signing policy) is set up with fleet.mtls.site.
Proven: revoking an identity by host and identity name revokes its certificate on the engine (found by the
common name the inventory declares), and the CRL installed on the host lists it; a re-run changes
nothing; a reason the engine cannot record is refused (an unknown identity: tests/unit,
declared_common_name); fleet.mtls.rotate with nothing due changes nothing.
"""

from __future__ import annotations

import json
import os
import re

from cryptography import x509

from test_identity_vault import _inventory, _run, engine  # noqa: F401  pylint: disable=unused-import
from vault_helpers import stored_serials

HOSTS = ("app1.fleet.test", "app2.fleet.test")
MOUNT = "pki-lifecycle"  # this file's mount on the session's shared server (the engine fixture's)


def _crl_serials(path):
    with open(path, "rb") as handle:
        text = handle.read()
    return set(entry.serial_number for block in
               re.findall(rb"-----BEGIN X509 CRL-----.*?-----END X509 CRL-----\n", text, re.S)
               for entry in x509.load_pem_x509_crl(block))


def test_revoke_then_rotate_with_the_vault_backend(engine, tmp_path):  # noqa: F811
    cluster, tokens = engine
    token = tokens["fleet-signing"]
    inventory = _inventory(tmp_path, cluster, token, HOSTS, mount=MOUNT)
    rc, _recap, output = _run(tmp_path, inventory, "fleet.mtls.site", "-e", "mtls_site_verify=false")
    assert rc == 0, output[-6000:]
    app1 = tmp_path / "hosts" / "app1.fleet.test"
    with open(app1 / "certs" / "api.crt", "rb") as handle:
        api = x509.load_pem_x509_certificate(handle.read())
    with open(app1 / "certs" / "app1.crt", "rb") as handle:
        kept = x509.load_pem_x509_certificate(handle.read()).serial_number
    assert api.serial_number not in _crl_serials(app1 / "crl.pem")

    # The api identity's declared common name is api.fleet.test, not its name.
    revoke = ("-e", "mtls_revoke_host=app1.fleet.test", "-e", "mtls_revoke_identity=api")
    rc, recap, output = _run(tmp_path, inventory, "fleet.mtls.revoke", *revoke)
    assert rc == 0, output[-6000:]
    assert recap["localhost"] == 1, recap
    assert token not in output
    for host in HOSTS:
        serials = _crl_serials(tmp_path / "hosts" / host / "crl.pem")
        assert api.serial_number in serials and kept not in serials, host
    client = cluster.client()
    stored = [serial for serial in stored_serials(client, MOUNT)
              if int(serial.replace(":", ""), 16) == api.serial_number]
    assert len(stored) == 1, stored
    assert client.read("%s/cert/%s" % (MOUNT, stored[0]))["data"]["revocation_time"] > 0

    rc, recap, output = _run(tmp_path, inventory, "fleet.mtls.revoke", *revoke)
    assert rc == 0, output[-6000:]
    assert recap == dict((host, 0) for host in ("localhost",) + HOSTS), recap

    # The engine records no reason: refused before anything is revoked.
    rc, _recap, output = _run(tmp_path, inventory, "fleet.mtls.revoke", "-e", "mtls_revoke_host=app2.fleet.test",
                              "-e", "mtls_revoke_reason=keyCompromise")
    assert rc != 0
    assert "unspecified" in output and "keyCompromise" in output, output[-4000:]
    assert kept not in _crl_serials(app1 / "crl.pem")

    rc, recap, output = _run(tmp_path, inventory, "fleet.mtls.rotate")
    assert rc == 0, output[-6000:]
    assert recap == dict((host, 0) for host in ("localhost",) + HOSTS), recap
    assert not os.path.exists(tmp_path / "ca")

    # report works unchanged: the engine's issuers are the CA generations, its CRLs are checked.
    report = tmp_path / "report.json"
    rc, _recap, output = _run(tmp_path, inventory, "fleet.mtls.report", "-e", "mtls_report_json=%s" % report,
                              "-e", "mtls_report_html=")
    assert rc == 0, output[-6000:]
    with open(report) as handle:
        found = json.load(handle)
    assert found["ca"]["generations"] == [{"id": "1", "state": "active"}] and found["ca"]["active_generation"] == 1
    assert sorted((row["ca"], row["status"]) for row in found["crls"]) == [("issuing-1", "ok"), ("root-1", "ok")]
    assert found["crls"][0]["crl_number"] is not None
    leaves = [row for row in found["certificates"] if row["host"] in HOSTS]
    assert leaves and all(row["issuer_generation"] == "1" for row in leaves), leaves
    # The revoked certificate the host still holds is the one finding.
    assert found["problems"] == ["app1.fleet.test api: revoked (listed in the host's CRL)"], found["problems"]
