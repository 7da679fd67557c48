# -*- coding: utf-8 -*-
"""fleet.mtls.vault_ca_publication through ansible-playbook, against a real OpenBao server (raft, TLS)."""

from __future__ import annotations

import re

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from conftest import import_library
from vault_helpers import connection

ROOT_PASS = "Root-Secret-Passphrase-7"
ISSUING_PASS = "Issuing-Secret-Passphrase-9"


def _certs(text):
    return [x509.load_pem_x509_certificate(block.encode()) for block in
            re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\n", text, re.S)]


def _crls(text):
    return [x509.load_pem_x509_crl(block.encode()) for block in
            re.findall(r"-----BEGIN X509 CRL-----.*?-----END X509 CRL-----\n", text, re.S)]


def _issuer(client, mount, ref):
    return x509.load_pem_x509_certificate(client.read("%s/issuer/%s/json" % (mount, ref))["data"]["certificate"]
                                          .encode())


def _pki(cluster, mount):
    vault_pki = import_library("vault_pki")
    return vault_pki, vault_pki.VaultPKI(cluster.url, token=cluster.root_token, ca_file=cluster.ca_file, mount=mount)


def test_every_live_issuer_and_its_crl_revoked_ones_left_out(ansible_module, openbao_server):
    vault_pki, pki = _pki(openbao_server, "pki-pub")
    vault_pki.prepare_mount(pki)
    client = openbao_server.client()
    root, issuing = _issuer(client, "pki-pub", "root-1"), _issuer(client, "pki-pub", "issuing-1")
    run = ansible_module("vault_ca_publication", connection(openbao_server, mount="pki-pub"), check=True)
    assert not run.get("failed"), run.get("msg")
    assert run["changed"] is False and run["publication_missing"] == []
    published = run["publication"]
    assert _certs(published["trust-bundle.pem"]) == [root, issuing]
    assert [crl.issuer for crl in _crls(published["crl-bundle.pem"])] == [root.subject, issuing.subject]
    assert _certs(published["signing-ca.pem"]) == [issuing]

    # A revoked issuer is retired: out of both bundles, listed with its reason.
    client.write("pki-pub/root/generate/internal", common_name="old root", issuer_name="root-old",
                 key_name="root-old", key_type="ec", ttl="48h")
    client.write("pki-pub/config/issuers", default="issuing-1")
    before = ansible_module("vault_ca_publication", connection(openbao_server, mount="pki-pub"))
    assert len(_certs(before["publication"]["trust-bundle.pem"])) == 3
    client.write("pki-pub/issuer/root-old/revoke")
    after = ansible_module("vault_ca_publication", connection(openbao_server, mount="pki-pub"))
    assert not after.get("failed"), after.get("msg")
    # Revoking an issuer rebuilds the CRLs, so only the issuers of the CRLs are the same.
    for name in ("trust-bundle.pem", "signing-ca.pem"):
        assert after["publication"][name] == published[name]
    assert [crl.issuer for crl in _crls(after["publication"]["crl-bundle.pem"])] == [root.subject, issuing.subject]
    assert [(i["name"], i["published"], i["reason"]) for i in after["issuers"]] == [
        ("root-1", True, None), ("issuing-1", True, None), ("root-old", False, "revoked")]


def test_an_imported_root_without_key_needs_its_crl(ansible_module, openbao_server, tmp_path):
    ca_store = import_library("ca_store")
    crl = import_library("crl")
    root_dir, issuing_dir = str(tmp_path / "root-1"), str(tmp_path / "issuing-1")
    ca_store.create_root(root_dir, ROOT_PASS, common_name="local root")
    ca_store.create_intermediate(issuing_dir, ISSUING_PASS, root_dir, ROOT_PASS, common_name="local issuing")
    vault_pki, pki = _pki(openbao_server, "pki-imported")
    key_pem, chain = vault_pki.import_material(issuing_dir, ISSUING_PASS)
    vault_pki.prepare_mount(pki, ca_source="import", import_key_pem=key_pem, import_chain=chain)

    run = ansible_module("vault_ca_publication", connection(openbao_server, mount="pki-imported"))
    assert run.get("failed")
    assert "(CN=local root) of mount pki-imported has no key in the engine" in run["msg"]
    assert "mtls_vault_crls" in run["msg"]

    root_crl = crl.revoke_and_publish(root_dir, ROOT_PASS)["crl"]
    run = ansible_module("vault_ca_publication", dict(connection(openbao_server, mount="pki-imported"),
                                                      crls=root_crl))
    assert not run.get("failed"), run.get("msg")
    crls = _crls(run["publication"]["crl-bundle.pem"])
    assert [c.subject.rfc4514_string() for c in _certs(run["publication"]["trust-bundle.pem"])] == \
        ["CN=local root", "CN=local issuing"]
    assert [c.issuer.rfc4514_string() for c in crls] == ["CN=local root", "CN=local issuing"]
    assert crls[0].public_bytes(serialization.Encoding.PEM).decode() == root_crl


def test_a_missing_mount_is_a_clear_error(ansible_module, openbao_server):
    run = ansible_module("vault_ca_publication", connection(openbao_server, mount="pki-absent"))
    assert run.get("failed")
    assert "mount pki-absent has no issuer 'default': enable and prepare it first" in run["msg"]
