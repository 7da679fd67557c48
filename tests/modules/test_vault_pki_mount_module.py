# -*- coding: utf-8 -*-
"""fleet.mtls.vault_pki_mount through ansible-playbook, against a real OpenBao server (raft, TLS)."""

from __future__ import annotations

import os

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from conftest import import_library
from vault_helpers import DOMAIN_POLICY, connection, make_csr

ROOT_PASS = "Root-Secret-Passphrase-7"
ISSUING_PASS = "Issuing-Secret-Passphrase-9"


def mounts(cluster):
    return set(cluster.client().sys.list_mounted_secrets_engines()["data"])


def prepare(ansible_module, cluster, mount, check=False, **options):
    args = connection(cluster, mount=mount)
    args.update(options)
    return ansible_module("vault_pki_mount", args, check=check, diff=True)


def test_generate_is_idempotent_and_check_mode_writes_nothing(ansible_module, openbao_server):
    run = prepare(ansible_module, openbao_server, "pki-check", check=True, policy=DOMAIN_POLICY)
    assert not run.get("failed"), run.get("msg")
    assert run["changed"] is True and "enable PKI engine at pki-check" in run["changes"]
    assert "pki-check/" not in mounts(openbao_server)

    run = prepare(ansible_module, openbao_server, "pki-gen", policy=DOMAIN_POLICY)
    assert not run.get("failed"), run.get("msg")
    assert run["changed"] is True
    assert run["changes"][:2] == ["enable PKI engine at pki-gen", "generate root CA root-1"]
    assert "PKI role fleet-server (server): create" in run["changes"]
    assert run["diff"]["after"]["changes"] == run["changes"]
    client = openbao_server.client()
    issuers = client.read("pki-gen/config/issuers")["data"]
    default = client.read("pki-gen/issuer/%s" % issuers["default"])["data"]
    assert default["issuer_name"] == "issuing-1" and default["leaf_not_after_behavior"] == "err"
    role = client.read("pki-gen/roles/fleet-client")["data"]
    assert (role["client_flag"], role["server_flag"], role["use_csr_sans"], role["use_csr_common_name"]) == \
        (True, False, False, False)
    crl = client.read("pki-gen/config/crl")["data"]
    assert crl["auto_rebuild"] is True and crl["expiry"] == "168h"

    again = prepare(ansible_module, openbao_server, "pki-gen", policy=DOMAIN_POLICY)
    assert not again.get("failed"), again.get("msg")
    assert again["changed"] is False and again["changes"] == []
    assert len(client.list("pki-gen/issuers")["data"]["keys"]) == 2

    wider = dict(DOMAIN_POLICY, allowed_domains=["example.com", "example.org"])
    changed = prepare(ansible_module, openbao_server, "pki-gen", policy=wider)
    assert changed["changed"] is True
    assert changed["changes"] == ["PKI role fleet-client (client): allowed_domains",
                                  "PKI role fleet-server (server): allowed_domains",
                                  "PKI role fleet-server-client (server_client): allowed_domains"]


def test_import_the_local_ca_so_the_fleet_keeps_its_trust(ansible_module, openbao_server, tmp_path):
    ca_store = import_library("ca_store")
    root_dir, issuing_dir = str(tmp_path / "root-1"), str(tmp_path / "issuing-1")
    ca_store.create_root(root_dir, ROOT_PASS, common_name="local root")
    ca_store.create_intermediate(issuing_dir, ISSUING_PASS, root_dir, ROOT_PASS, common_name="local issuing")
    options = {"ca_source": "import", "import_ca_path": issuing_dir, "import_ca_passphrase": ISSUING_PASS,
               "policy": DOMAIN_POLICY}
    run = prepare(ansible_module, openbao_server, "pki-import", **options)
    assert not run.get("failed"), run.get("msg")
    assert run["changed"] is True
    assert "import the local CA CN=local issuing with its chain" in run["changes"]
    assert ISSUING_PASS not in run.output

    client = openbao_server.client()
    default = client.read("pki-import/issuer/default/json")["data"]
    with open(os.path.join(issuing_dir, "ca.crt")) as handle:
        local_issuing = x509.load_pem_x509_certificate(handle.read().encode())
    assert x509.load_pem_x509_certificate(default["certificate"].encode()) == local_issuing

    again = prepare(ansible_module, openbao_server, "pki-import", **options)
    assert again["changed"] is False, again["changes"]

    signed = ansible_module("vault_certificate", dict(connection(openbao_server, mount="pki-import"), requests=[
        {"identity": "web", "host": "web1", "csr": make_csr(), "common_name": "web1.example.com"}]))
    assert not signed.get("failed"), signed.get("msg")
    leaf = x509.load_pem_x509_certificate(signed["certificates"][0]["certificate"].encode())
    local_issuing.public_key().verify(leaf.signature, leaf.tbs_certificate_bytes,
                                      ec.ECDSA(leaf.signature_hash_algorithm))


def test_import_with_a_wrong_passphrase_changes_nothing(ansible_module, openbao_server, tmp_path):
    ca_store = import_library("ca_store")
    root_dir = str(tmp_path / "root-1")
    ca_store.create_root(root_dir, ROOT_PASS, common_name="local root")
    run = prepare(ansible_module, openbao_server, "pki-wrong", ca_source="import", import_ca_path=root_dir,
                  import_ca_passphrase="not-the-passphrase")
    assert run.get("failed")
    assert "passphrase" in run["msg"] and "Traceback" not in run["msg"]
    assert "pki-wrong/" not in mounts(openbao_server)
    assert "not-the-passphrase" not in run.output
