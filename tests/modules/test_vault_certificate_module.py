# -*- coding: utf-8 -*-
"""fleet.mtls.vault_certificate through ansible-playbook, against a real OpenBao server (raft, TLS)."""

from __future__ import annotations

import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from conftest import import_library, openbao_harness
from vault_helpers import (CSR_NAMES, DOMAIN_POLICY, connection, enable_approle, make_csr, signing_policy_hcl,
                           stored_serials)

# This file's mount, policies and AppRole on the session's shared server (conftest.openbao_server).
MOUNT = "pki-cert"
RESULT_KEYS = {"identity", "host", "profile", "subject", "sans", "serial", "certificate", "not_before",
               "not_after"}


def _prepare(cluster):
    vault_pki = import_library("vault_pki")
    pki = vault_pki.VaultPKI(cluster.url, token=cluster.root_token, ca_file=cluster.ca_file, mount=MOUNT)
    vault_pki.prepare_mount(pki, role_policy=DOMAIN_POLICY)
    return cluster


@pytest.fixture(scope="module")
def bao(openbao_server):
    """The shared server with this file's mount prepared by the library (the mount module has its own tests)."""
    _prepare(openbao_server)
    client = openbao_server.client()
    client.sys.create_or_update_policy("cert-signing", signing_policy_hcl(MOUNT))
    client.sys.create_or_update_policy("cert-read-only",
                                       'path "%s/issuer/+/json" { capabilities = ["read"] }\n'
                                       'path "%s/roles/*" { capabilities = ["read"] }\n' % (MOUNT, MOUNT))
    return openbao_server


def sign(ansible_module, cluster, requests, check=False, diff=False, **options):
    args = connection(cluster, mount=MOUNT)
    args.update(options.pop("connection", {}))
    args.update(options)
    args["requests"] = requests
    return ansible_module("vault_certificate", args, check=check, diff=diff)


def web_requests():
    return [
        {"identity": "web", "host": "web1", "csr": make_csr(), "common_name": "web1.example.com",
         "sans": ["DNS:web1.example.com", "IP:192.0.2.10", "URI:spiffe://example.com/web"]},
        {"identity": "agent", "host": "web1", "csr": make_csr(), "profile": "client"},
        {"identity": "both", "host": "web2", "csr": make_csr(), "profile": "server_client",
         "common_name": "web2.example.com", "validity_days": 30},
    ]


def load(pem):
    return x509.load_pem_x509_certificate(pem.encode())


def eku(cert):
    return set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def sans(cert):
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return sorted(str(getattr(name, "value", name)) for name in ext)


def test_signs_a_batch_with_profiles_and_declared_names(ansible_module, bao):
    run = sign(ansible_module, bao, web_requests(), diff=True)
    assert not run.get("failed"), run.get("msg")
    assert run["changed"] is True and run["issued"] == 3
    web, agent, both = run["certificates"]
    assert all(set(entry) == RESULT_KEYS for entry in run["certificates"])
    assert (web["identity"], web["host"], agent["identity"], both["host"]) == ("web", "web1", "agent", "web2")
    web_cert, agent_cert, both_cert = load(web["certificate"]), load(agent["certificate"]), load(both["certificate"])
    assert web_cert.subject.rfc4514_string() == "CN=web1.example.com"
    assert sans(web_cert) == sorted(["web1.example.com", "192.0.2.10", "spiffe://example.com/web"])
    assert web["sans"] == ["DNS:web1.example.com", "IP:192.0.2.10", "URI:spiffe://example.com/web"]
    assert eku(web_cert) == {ExtendedKeyUsageOID.SERVER_AUTH}
    assert agent_cert.subject.rfc4514_string() == "CN=agent" and sans(agent_cert) == []
    assert eku(agent_cert) == {ExtendedKeyUsageOID.CLIENT_AUTH}
    assert eku(both_cert) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    for cert in (web_cert, agent_cert, both_cert):
        assert not any(name in cert.subject.rfc4514_string() or name in sans(cert) for name in CSR_NAMES)
    assert web["serial"] == "%x" % web_cert.serial_number
    lifetime = both_cert.not_valid_after_utc - both_cert.not_valid_before_utc
    assert 30 * 86400 <= lifetime.total_seconds() <= 30 * 86400 + 600
    issuer = load(run["ca_chain"])
    assert issuer.subject == web_cert.issuer and run["issuer"] == "CN=fleet.mtls issuing CA"
    issuer.public_key().verify(web_cert.signature, web_cert.tbs_certificate_bytes,
                               ec.ECDSA(web_cert.signature_hash_algorithm))
    assert run["diff"]["after"]["issued"] == ["web1/web", "web1/agent", "web2/both"]
    assert run["invocation"]["module_args"]["requests"] == {"count": 3}
    assert run["invocation"]["module_args"]["token"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
    assert "BEGIN CERTIFICATE REQUEST" not in run.output
    assert bao.root_token not in run.output


def test_check_mode_signs_nothing(ansible_module, bao):
    before = stored_serials(bao.client(), MOUNT)
    run = sign(ansible_module, bao, web_requests(), check=True)
    assert not run.get("failed"), run.get("msg")
    assert run["changed"] is True and run["issued"] == 3
    assert all(entry["certificate"] is None and entry["serial"] is None for entry in run["certificates"])
    assert stored_serials(bao.client(), MOUNT) == before


def test_empty_batch_is_no_change(ansible_module, bao):
    run = sign(ansible_module, bao, [])
    assert not run.get("failed") and run["changed"] is False and run["certificates"] == []


def test_token_with_the_documented_policy_signs(ansible_module, bao):
    token = bao.client().auth.token.create(policies=["cert-signing"], no_default_policy=True, ttl="10m")
    run = sign(ansible_module, bao, web_requests()[:1], connection={"token": token["auth"]["client_token"]})
    assert not run.get("failed"), run.get("msg")
    assert run["issued"] == 1
    assert token["auth"]["client_token"] not in run.output


def test_token_without_sign_permission_is_refused_naming_the_request(ansible_module, bao):
    token = bao.client().auth.token.create(policies=["cert-read-only"], ttl="10m")["auth"]["client_token"]
    before = stored_serials(bao.client(), MOUNT)
    run = sign(ansible_module, bao, web_requests()[:1], connection={"token": token})
    assert run.get("failed")
    assert "request 1 (identity web on host web1)" in run["msg"]
    assert "permission denied" in run["msg"]
    assert stored_serials(bao.client(), MOUNT) == before
    assert token not in run.output


def test_approle_login_signs_and_hides_the_secret_id(ansible_module, bao):
    client = bao.client()
    enable_approle(client)
    client.auth.approle.create_or_update_approle("cert-fleet", token_policies=["cert-signing"], token_ttl="10m")
    role_id = client.auth.approle.read_role_id("cert-fleet")["data"]["role_id"]
    secret_id = client.auth.approle.generate_secret_id("cert-fleet")["data"]["secret_id"]
    args = {"url": [bao.url], "ca_file": bao.ca_file, "mount": MOUNT, "role_id": role_id, "secret_id": secret_id,
            "requests": web_requests()[1:2]}
    run = ansible_module("vault_certificate", args)
    assert not run.get("failed"), run.get("msg")
    assert run["issued"] == 1 and load(run["certificates"][0]["certificate"]).subject.rfc4514_string() == "CN=agent"
    assert run["invocation"]["module_args"]["secret_id"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
    assert run["invocation"]["module_args"]["requests"] == {"count": 1}
    assert secret_id not in run.output


def _fails_with_nothing_signed(ansible_module, bao, message, requests=None, **options):
    before = stored_serials(bao.client(), MOUNT)
    run = sign(ansible_module, bao, requests or web_requests(), **options)
    assert run.get("failed"), run.result
    assert message in run["msg"], run["msg"]
    assert "Traceback" not in run["msg"]
    assert stored_serials(bao.client(), MOUNT) == before
    return run


def test_wrong_token(ansible_module, bao):
    _fails_with_nothing_signed(ansible_module, bao, "token was refused", connection={"token": "s.not-a-token"})


def test_expired_token(ansible_module, bao):
    token = bao.client().auth.token.create(policies=["cert-signing"], ttl="1s", explicit_max_ttl="1s")
    time.sleep(2.5)
    _fails_with_nothing_signed(ansible_module, bao, "invalid, expired or revoked",
                               connection={"token": token["auth"]["client_token"]})


def test_unreachable_url(ansible_module, bao):
    harness = openbao_harness()
    url = "https://127.0.0.1:%d" % harness.free_port()
    run = _fails_with_nothing_signed(ansible_module, bao, "cannot reach %s: connection refused" % url,
                                     connection={"url": [url]}, retries=1)
    assert "after 2 attempts" in run["msg"]


def test_wrong_ca_file_for_the_servers_tls(ansible_module, bao, tmp_path):
    harness = openbao_harness()
    other_ca = harness.make_tls_material(str(tmp_path), "some other CA")[0]
    run = _fails_with_nothing_signed(ansible_module, bao, "TLS verification of %s failed" % bao.url,
                                     connection={"ca_file": other_ca})
    assert other_ca in run["msg"]


def test_role_that_forbids_the_san(ansible_module, bao):
    requests = web_requests()[:1]
    requests[0]["sans"] = ["DNS:web1.example.com", "DNS:web1.example.org"]
    run = _fails_with_nothing_signed(ansible_module, bao, "request 1 (identity web on host web1)",
                                     requests=requests)
    assert "web1.example.org not allowed by this role" in run["msg"]
    assert run["identity"] == "web" and run["host"] == "web1"


def test_mount_missing(ansible_module, bao):
    _fails_with_nothing_signed(ansible_module, bao, "mount pki-missing has no issuer",
                               connection={"mount": "pki-missing"})


def test_ttl_beyond_the_issuer(ansible_module, bao):
    requests = web_requests()
    requests[2]["validity_days"] = 5000
    run = _fails_with_nothing_signed(ansible_module, bao, "request 3 (identity both on host web2): "
                                     "validity_days=5000 would end on", requests=requests)
    assert "after the issuing CA expires" in run["msg"]


def test_truncate_to_issuer_ends_the_leaf_with_its_issuer(ansible_module, bao):
    run = sign(ansible_module, bao, web_requests()[1:2], validity_days=5000, truncate_to_issuer=True)
    assert not run.get("failed"), run.get("msg")
    leaf, issuer = load(run["certificates"][0]["certificate"]), load(run["ca_chain"])
    assert leaf.not_valid_after_utc == issuer.not_valid_after_utc


def test_role_taking_names_from_the_csr_is_refused(ansible_module, bao):
    loose = {"allow_any_name": True, "use_csr_sans": True, "server_flag": True, "client_flag": False}
    bao.client().write_data("%s/roles/loose" % MOUNT, data=loose)
    _fails_with_nothing_signed(ansible_module, bao, "PKI role loose (profile server) on mount %s does not follow "
                               "the signer policy: use_csr_sans must be false" % MOUNT, roles={"server": "loose"})


def test_bad_request_fails_before_contacting_the_engine(ansible_module, bao):
    requests = web_requests()
    requests[1]["identity"] = "../escape"
    _fails_with_nothing_signed(ansible_module, bao, "request 2 (identity ../escape on host web1): invalid identity",
                               requests=requests)


def test_sealed_server(ansible_module, private_openbao_server):
    """Sealing is the one case here that takes a server of its own: the shared one stays unsealed."""
    bao = _prepare(private_openbao_server)
    before = stored_serials(bao.client(), MOUNT)
    bao.seal()
    run = sign(ansible_module, bao, web_requests(), retries=1)
    assert run.get("failed")
    assert "%s is sealed: unseal it" % bao.url in run["msg"], run["msg"]
    bao.unseal(bao.nodes[0])
    bao.leader()
    assert stored_serials(bao.client(), MOUNT) == before
