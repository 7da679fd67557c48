# -*- coding: utf-8 -*-
"""cert_facts.certificate_facts: what fleet.mtls.cert_info returns, driven without Ansible."""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pytest  # noqa: E402
from pki_factory import Pki, crl_pem, make_crl  # noqa: E402

from ansible_collections.fleet.mtls.plugins.module_utils.cert_facts import certificate_facts  # noqa: E402
from ansible_collections.fleet.mtls.plugins.module_utils.errors import MtlsError  # noqa: E402

PARAMS = dict(path=None, content=None, all=False, key_path=None, key_passphrase=None, trust_bundle=None,
              chain=None, purpose=None, crl=None, renew_fraction=None, renew_days=None, mtls_dir=None,
              chain_files=False, renewal_check=False)


def _params(**given):
    params = dict(PARAMS)
    params.update(given)
    return params


def test_missing_file_is_reported_not_raised(tmp_path):
    assert certificate_facts(_params(path=str(tmp_path / "none.crt"))) == {"changed": False, "exists": False}


def test_content_without_checks_leaves_the_checks_null():
    pki = Pki()
    leaf = pki.server()
    facts = certificate_facts(_params(content=leaf.cert_pem.decode()))
    assert facts["exists"] is True and facts["count"] == 1 and facts["changed"] is False
    assert (facts["key_exists"], facts["key_match"], facts["chain_valid"], facts["revoked"]) == (None, None, None, None)
    assert facts["in_renewal_window"] is False


def test_key_chain_and_crl_checks(tmp_path):
    pki = Pki()
    leaf = pki.server()
    bad = pki.server("revoked.test")
    paths = {}
    for name, data in (("leaf", leaf.cert_pem), ("bad", bad.cert_pem), ("key", leaf.key_pem()),
                       ("bundle", pki.trust_bundle_pem),
                       ("crl", crl_pem(make_crl(pki.root), make_crl(pki.issuing, revoked=[bad.cert])))):
        paths[name] = str(tmp_path / name)
        with open(paths[name], "wb") as handle:
            handle.write(data)
    facts = certificate_facts(_params(path=paths["leaf"], key_path=paths["key"], trust_bundle=paths["bundle"],
                                      purpose="serverAuth", crl=paths["crl"]))
    assert (facts["key_exists"], facts["key_match"]) == (True, True)
    assert facts["chain_valid"] is True and len(facts["chain_path"]) == 2  # the bundle's issuing CA anchors
    assert (facts["revocation"], facts["revoked"]) == ("good", False)
    revoked = certificate_facts(_params(path=paths["bad"], key_path=str(tmp_path / "nokey"),
                                        trust_bundle=paths["bundle"], crl=paths["crl"]))
    assert (revoked["key_exists"], revoked["key_match"]) == (False, False)
    assert (revoked["revocation"], revoked["revoked"]) == ("revoked", True)
    foreign = certificate_facts(_params(content=pki.foreign_issuing.issue("x.test").cert_pem.decode(),
                                        trust_bundle=paths["bundle"], crl=paths["crl"]))
    assert foreign["chain_valid"] is False and foreign["chain_reason"]
    assert foreign["revocation"] == "no crl for issuer" and foreign["revoked"] is None


def test_mtls_dir_inspects_every_installed_identity_and_refuses_key_path(tmp_path):
    pki = Pki()
    certs = tmp_path / "certs"
    certs.mkdir()
    (certs / "web.crt").write_bytes(pki.server("web.test").cert_pem)
    facts = certificate_facts(_params(mtls_dir=str(tmp_path)))
    assert [entry["identity"] for entry in facts["leaves"]] == ["web"]
    assert facts["leaves"][0]["certificate_path"] == str(certs / "web.crt")
    with pytest.raises(MtlsError, match="key_path names one identity"):
        certificate_facts(_params(mtls_dir=str(tmp_path), key_path=str(tmp_path / "k")))
    with pytest.raises(MtlsError, match="chain_files only applies with mtls_dir"):
        certificate_facts(_params(path=str(certs / "web.crt"), chain_files=True))
