# -*- coding: utf-8 -*-
"""vault_pki revocation and CRL refresh against a real OpenBao server (raft, TLS): what is revoked lands
in the published CRL bundle, a re-run changes nothing, refused reasons and unknown names fail clearly."""

from __future__ import annotations

import re

import pytest
from cryptography import x509

from conftest import import_library
from vault_helpers import DOMAIN_POLICY, make_csr

MOUNT = "pki-revoke"


def _crls(text):
    return [x509.load_pem_x509_crl(block.encode()) for block in
            re.findall(r"-----BEGIN X509 CRL-----.*?-----END X509 CRL-----\n", text, re.S)]


@pytest.fixture(scope="module")
def engine(openbao_server):
    vault_pki = import_library("vault_pki")
    pki = vault_pki.VaultPKI(openbao_server.url, token=openbao_server.root_token, ca_file=openbao_server.ca_file,
                             mount=MOUNT)
    vault_pki.prepare_mount(pki, role_policy=DOMAIN_POLICY)
    return vault_pki, pki


def _sign(vault_pki, pki, name, common_name=None, sans=None):
    request = {"identity": name, "host": name, "common_name": common_name or name + ".example.com", "csr": make_csr()}
    if sans:
        request["sans"] = sans
    out = vault_pki.sign_requests(pki, [request])
    return out.certificates[0]["serial"]


def _listed(vault_pki, pki, serial):
    bundle = vault_pki.publication(pki)["publication"]["crl-bundle.pem"]
    number = int(serial.replace(":", ""), 16)
    return any(crl.get_revoked_certificate_by_serial_number(number) is not None for crl in _crls(bundle))


def test_revoke_by_identity_and_by_serial_reach_the_crl_and_rerun_is_a_no_op(engine):
    vault_pki, pki = engine
    web = _sign(vault_pki, pki, "web1")
    mqtt = _sign(vault_pki, pki, "mqtt1")
    found = vault_pki.find_revocations(pki, common_name="web1.example.com", identity="web1", host="web1")
    assert found == {"serials": [vault_pki.engine_serial(web)], "already_revoked": []}
    done = vault_pki.revoke(pki, found["serials"])
    assert done["changed"] and done["crl_rebuilt"] and _listed(vault_pki, pki, web)
    assert not _listed(vault_pki, pki, mqtt)
    by_serial = vault_pki.find_revocations(pki, serial=mqtt)
    assert vault_pki.revoke(pki, by_serial["serials"])["changed"] and _listed(vault_pki, pki, mqtt)
    again = vault_pki.find_revocations(pki, serial=mqtt)
    assert again["serials"] == [] and again["already_revoked"] == [vault_pki.engine_serial(mqtt)]
    assert vault_pki.revoke(pki, again["serials"]) == {"changed": False, "revoked_now": [], "already_revoked": [],
                                                       "crl_rebuilt": False}


def test_a_certificate_that_only_names_the_identity_among_its_sans_is_left_alone(engine):
    vault_pki, pki = engine
    own = _sign(vault_pki, pki, "cache1")
    balancer = _sign(vault_pki, pki, "lb1", sans=["DNS:lb1.example.com", "DNS:cache1.example.com"])
    found = vault_pki.find_revocations(pki, common_name="cache1.example.com", identity="cache1", host="cache1")
    assert found == {"serials": [vault_pki.engine_serial(own)], "already_revoked": []}
    assert vault_pki.engine_serial(balancer) not in found["serials"]


def test_reason_unknown_identity_and_serial_fail_clearly(engine):
    vault_pki, pki = engine
    with pytest.raises(vault_pki.MtlsError, match="keyCompromise cannot be recorded by the vault backend"):
        vault_pki.revoke(pki, [], reason="keyCompromise")
    with pytest.raises(vault_pki.MtlsError, match="identity nobody on host h1 .* was issued by mount %s" % MOUNT):
        vault_pki.find_revocations(pki, common_name="nobody.example.com", identity="nobody", host="h1")
    with pytest.raises(vault_pki.MtlsError, match="serial 01:02:03 was issued by mount %s" % MOUNT):
        vault_pki.find_revocations(pki, serial="010203")


def test_crls_are_rebuilt_only_when_due(engine):
    vault_pki, pki = engine
    # prepare_mount's CRLs live 7 days: not due within 2, due within 8.
    assert vault_pki.refresh_crls(pki, 2) == {"changed": False, "crls_due": []}
    assert sorted(vault_pki.refresh_crls(pki, 8)["crls_due"]) == ["issuing-1", "root-1"]


def test_the_documented_policy_suffices(engine, openbao_server):
    from vault_helpers import signing_policy_hcl
    vault_pki, admin = engine
    serial = _sign(vault_pki, admin, "api1")
    client = openbao_server.client()
    client.sys.create_or_update_policy("fleet-revoke", signing_policy_hcl(MOUNT))
    token = client.auth.token.create(policies=["fleet-revoke"], no_default_policy=True, ttl="10m")
    pki = vault_pki.VaultPKI(openbao_server.url, token=token["auth"]["client_token"], ca_file=openbao_server.ca_file,
                             mount=MOUNT)
    found = vault_pki.find_revocations(pki, common_name="api1.example.com", identity="api1", host="api1")
    assert vault_pki.revoke(pki, found["serials"])["changed"] and _listed(vault_pki, pki, serial)
    assert vault_pki.refresh_crls(pki, 8)["changed"]


def test_the_module_revokes_then_changes_nothing(engine, openbao_server, ansible_module):
    from vault_helpers import connection
    vault_pki, pki = engine
    serial = _sign(vault_pki, pki, "db1")
    args = dict(connection(openbao_server, mount=MOUNT), identity="db1", host="db1", common_name="db1.example.com")
    first = ansible_module("vault_revoke", args)
    assert not first.get("failed"), first.get("msg")
    assert first["changed"] and first["revoked_now"] == [vault_pki.engine_serial(serial)] and first["crl_rebuilt"]
    again = ansible_module("vault_revoke", args)
    assert again["changed"] is False and again["already_revoked"] == [vault_pki.engine_serial(serial)]
    refused = ansible_module("vault_revoke", dict(args, reason="keyCompromise"))
    assert refused.get("failed") and "cannot be recorded by the vault backend" in refused["msg"]
    assert openbao_server.root_token not in first.output


def test_publication_refreshes_crls_only_when_due(openbao_server, ansible_module, engine):
    from vault_helpers import connection
    args = dict(connection(openbao_server, mount=MOUNT), refresh_crls=True)
    quiet = ansible_module("vault_ca_publication", dict(args, crl_refresh_days=2))
    assert not quiet.get("failed"), quiet.get("msg")
    assert quiet["changed"] is False and quiet["crls_due"] == []
    due = ansible_module("vault_ca_publication", dict(args, crl_refresh_days=8))
    assert due["changed"] is True and sorted(due["crls_due"]) == ["issuing-1", "root-1"]
    assert due["publication"]["crl-bundle.pem"] != quiet["publication"]["crl-bundle.pem"]
