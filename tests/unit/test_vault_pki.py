"""vault_pki: the parts that decide without an engine (request planning, role checks, settings)."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ansible_collections.fleet.mtls.plugins.module_utils import vault_pki
from ansible_collections.fleet.mtls.plugins.module_utils.errors import MtlsError


def csr_pem():
    key = ec.generate_private_key(ec.SECP256R1())
    return (x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "from-csr.example.net")]))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("from-csr.example.net")]), critical=False)
            .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode())


def plan(**request):
    request.setdefault("identity", "web")
    request.setdefault("csr", csr_pem())
    return vault_pki.plan_vault_request(request, 1, 90, None)


def test_names_come_from_the_declaration_never_from_the_csr():
    planned = plan(common_name="web1.example.com", sans=["IP:192.0.2.1", "URI:spiffe://example.com/web"])
    assert planned.common_name == "web1.example.com"
    assert planned.sans == ["IP:192.0.2.1", "URI:spiffe://example.com/web", "DNS:web1.example.com"]
    body = planned.body()
    assert body["alt_names"] == "web1.example.com" and body["ip_sans"] == "192.0.2.1"
    assert body["uri_sans"] == "spiffe://example.com/web" and body["exclude_cn_from_sans"] is True
    assert body["ttl"] == "2160h" and "from-csr" not in str(body["common_name"]) + body["alt_names"]
    client = plan(profile="client")
    assert client.common_name == "web" and client.sans == []


def test_truncated_leaf_sends_not_after_instead_of_ttl():
    body = plan(profile="client").body("2027-01-01T00:00:00Z")
    assert body["not_after"] == "2027-01-01T00:00:00Z" and "ttl" not in body


@pytest.mark.parametrize("request_, message", [
    ({"identity": "../x"}, "invalid identity name"),
    ({"host": "a/b"}, "invalid host"),
    ({"profile": "admin"}, "unknown profile"),
    ({"csr": None}, "csr is missing"),
    ({"validity_days": 0}, "validity_days must be a positive"),
    ({"sans": "DNS:x.example.com"}, "sans must be a list"),
    ({"common_name": "not a host name"}, "is not a DNS name or IP address"),
    ({"generate_keys": True}, "unknown request keys generate_keys"),
])
def test_bad_requests_name_the_request(request_, message):
    with pytest.raises(MtlsError) as caught:
        plan(**request_)
    assert caught.value.message.startswith("request 1 (identity ")
    assert message in caught.value.message


class _Mount:
    mount = "pki"


GOOD_ROLE = {"use_csr_sans": False, "use_csr_common_name": False, "server_flag": True, "client_flag": False}


def test_a_role_following_the_signer_policy_passes():
    vault_pki.check_role(_Mount(), "server", "fleet-server", dict(GOOD_ROLE))


@pytest.mark.parametrize("change, message", [
    ({"use_csr_sans": True}, "use_csr_sans must be false"),
    ({"use_csr_common_name": True}, "use_csr_common_name must be false"),
    ({"client_flag": True}, "client_flag must be false"),
    ({"ext_key_usage": ["CodeSigning"]}, "no extended key usage beyond"),
])
def test_roles_breaking_the_signer_policy_are_refused(change, message):
    with pytest.raises(MtlsError) as caught:
        vault_pki.check_role(_Mount(), "server", "fleet-server", dict(GOOD_ROLE, **change))
    assert message in caught.value.message


def test_missing_role_is_named():
    with pytest.raises(MtlsError, match="PKI role fleet-client \\(profile client\\) does not exist on mount pki"):
        vault_pki.check_role(_Mount(), "client", "fleet-client", None)


def test_role_definition_per_profile():
    both = vault_pki.role_definition("server_client", {"allowed_domains": ["example.com"]})
    assert (both["server_flag"], both["client_flag"], both["use_csr_sans"]) == (True, True, False)
    assert both["allowed_domains"] == ["example.com"]
    with pytest.raises(MtlsError, match="unknown PKI role settings allow_everything"):
        vault_pki.role_definition("server", {"allow_everything": True})


def test_engine_durations_compare_in_either_form():
    assert vault_pki._differences({"max_ttl": "2160h", "not_before_duration": "300s"},
                                  {"max_ttl": 7776000, "not_before_duration": 300}) == []
    assert vault_pki._differences({"allowed_domains": ["a", "b"]}, {"allowed_domains": ["b", "a"]}) == []
    assert vault_pki._differences({"allow_ip_sans": True}, {"allow_ip_sans": False}) == ["allow_ip_sans"]


def test_connection_settings_from_the_environment(monkeypatch):
    monkeypatch.setenv("BAO_ADDR", "https://127.0.0.1:8200")
    monkeypatch.setenv("BAO_TOKEN", "env-token")
    monkeypatch.delenv("VAULT_ADDR", raising=False)
    monkeypatch.delenv("VAULT_TOKEN", raising=False)
    pki = vault_pki.connect({})
    assert pki.urls == ["https://127.0.0.1:8200"] and pki.mount == "pki"
    approle = vault_pki.connect({"role_id": "r", "secret_id": "s"})
    assert approle._token is None


@pytest.mark.parametrize("settings, message", [
    ({"urls": []}, "no OpenBao/Vault URL"),
    ({"urls": "127.0.0.1:8200"}, "must start with https://"),
    ({"mount": "/pki/"}, "invalid PKI mount"),
    ({"token": None}, "no OpenBao/Vault credentials"),
    ({"retries": -1}, "retries must be a whole number of at least 0"),
])
def test_bad_connection_settings(settings, message):
    arguments = dict({"urls": "https://127.0.0.1:8200", "token": "t"}, **settings)
    with pytest.raises(MtlsError, match=message):
        vault_pki.VaultPKI(**arguments)


def test_concurrency_is_bounded():
    with pytest.raises(MtlsError, match="concurrency must be between 1 and 64"):
        vault_pki.sign_requests(None, [], concurrency=0)


def test_a_duplicate_identity_is_refused_like_the_local_signer_before_the_engine_is_asked():
    # issuance.check_batch_names for both signers: the same message as test_issuance's.
    requests = [{"identity": "web", "host": "h1", "csr": csr_pem()}, {"identity": "db", "csr": csr_pem()},
                {"identity": "web", "host": "h1", "csr": csr_pem()}]
    with pytest.raises(MtlsError, match=r"request 3 \(identity web on host h1\) duplicates request 1"):
        vault_pki.sign_requests(None, requests)


def test_module_spec_shares_the_connection_options_and_the_approle_rule():
    spec = vault_pki.module_spec({"requests": {"type": "list"}})
    assert set(vault_pki.connection_spec()) < set(spec["argument_spec"]) and "requests" in spec["argument_spec"]
    assert spec["required_together"] == [("role_id", "secret_id")] and spec["supports_check_mode"] is True
    assert spec["argument_spec"]["retries"]["default"] == vault_pki.DEFAULT_RETRIES
    assert vault_pki.roles_spec()["options"]["server"]["default"] == vault_pki.DEFAULT_ROLES["server"]


def test_role_policy_turns_days_and_minutes_into_role_fields():
    policy = vault_pki.role_policy(None)
    assert policy["max_ttl"] == "2160h" and policy["not_before_duration"] == "300s"
    assert "max_validity_days" not in policy and policy["allow_subdomains"] is True
    with pytest.raises(MtlsError, match="max_validity_days must be positive"):
        vault_pki.role_policy({"max_validity_days": 0, "backdate_minutes": 5})
    with pytest.raises(MtlsError, match="needs import_ca_path and import_ca_passphrase"):
        vault_pki.import_material(None, "x")


# --- credentials_for: which credentials a playbook hands over for each purpose ------------------

def test_rotation_credentials_prefer_the_rotation_token_then_its_approle_then_the_signing_ones():
    signing = {"mtls_vault_token": "s.sign", "mtls_vault_role_id": "r", "mtls_vault_secret_id": "x"}
    assert vault_pki.credentials_for("rotation", dict(signing, mtls_vault_rotation_token="s.rot")) == {
        "token": "s.rot"}
    assert vault_pki.credentials_for("rotation", dict(signing, mtls_vault_rotation_role_id="rr",
                                                      mtls_vault_rotation_secret_id="rx")) == {
        "role_id": "rr", "secret_id": "rx"}
    assert vault_pki.credentials_for("rotation", signing) == {"token": "s.sign"}
    assert vault_pki.credentials_for("rotation", {"mtls_vault_role_id": "r", "mtls_vault_secret_id": "x"}) == {
        "role_id": "r", "secret_id": "x"}
    assert vault_pki.credentials_for("signing", dict(signing, mtls_vault_rotation_token="s.rot")) == {
        "token": "s.sign"}


def test_no_credential_variable_leaves_the_environment_to_the_modules():
    assert vault_pki.credentials_for("rotation", {}) == {}
    assert vault_pki.credentials_for("signing", {"mtls_vault_token": "", "mtls_vault_role_id": None}) == {}


@pytest.mark.parametrize("variables, message", [
    ({"mtls_vault_rotation_role_id": "rr"},
     "mtls_vault_rotation_role_id is set but mtls_vault_rotation_secret_id is not"),
    ({"mtls_vault_rotation_secret_id": "rx", "mtls_vault_token": "s.sign"},
     "mtls_vault_rotation_secret_id is set but mtls_vault_rotation_role_id is not"),
    ({"mtls_vault_role_id": "r"}, "mtls_vault_role_id is set but mtls_vault_secret_id is not"),
])
def test_half_an_approle_pair_names_the_missing_variable(variables, message):
    with pytest.raises(MtlsError) as caught:
        vault_pki.credentials_for("rotation", variables)
    assert message in caught.value.message


def test_an_unknown_purpose_is_refused():
    with pytest.raises(MtlsError, match="unknown vault credential purpose 'admin'"):
        vault_pki.credentials_for("admin", {})
