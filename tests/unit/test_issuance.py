# -*- coding: utf-8 -*-
from __future__ import annotations

import datetime
import ipaddress
import os
import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from ansible_collections.fleet.mtls.plugins.module_utils import ca_store, issuance
from ansible_collections.fleet.mtls.plugins.module_utils.compat import not_valid_after, not_valid_before, utcnow
from ansible_collections.fleet.mtls.plugins.module_utils.errors import MtlsError
from ansible_collections.fleet.mtls.plugins.module_utils.keys import load_private_key, same_public_key

from issuance_helpers import ISSUING_PASS, make_csr, make_hostile_csr, make_pki, openssl_verify, pkilint, tree_digest


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


def private_copy(store_path, tmp_path, name="issuing"):
    """A private copy of a store (tests write its index) and its signer."""
    import shutil
    path = str(tmp_path / name)
    shutil.copytree(store_path, path)
    store = ca_store.CAStore(path)
    return store, store.load(ISSUING_PASS)


@pytest.fixture
def issuing(pki, tmp_path):
    return private_copy(pki[1], tmp_path)


def ext(cert, cls):
    return cert.extensions.get_extension_for_class(cls)


def pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _batch(store, signer, requests, **kwargs):
    return [leaf.as_dict() for leaf in issuance.sign_batch(signer, store, requests, **kwargs)]


@pytest.mark.parametrize("key_type, profile", [
    ("ec_p256", "server"), ("ec_p384", "client"), ("rsa2048", "server_client"), ("ed25519", "client")])
def test_leaf_verifies_with_openssl_and_lints_clean(pki, issuing, tmp_path, key_type, profile):
    store, signer = issuing
    result = _batch(store, signer, [{"identity": "svc", "host": "h1", "profile": profile,
                                     "common_name": "svc.example.com",
                                     "csr": make_csr("svc.example.com", key_type=key_type),
                                     # pkilint's URI check knows web schemes only (it flags spiffe://), so lint an https URI.
                                     "sans": ["svc.example.com", "IP:192.0.2.7", "URI:https://svc.example.com/id"]}])[0]
    purpose = "sslclient" if profile == "client" else "sslserver"
    proc = openssl_verify(os.path.join(pki[0], "ca.crt"), os.path.join(pki[1], "ca.crt"), result["certificate"],
                          tmp_path, purpose=purpose)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert pkilint(result["certificate"], tmp_path) == ""
    cert = x509.load_pem_x509_certificate(result["certificate"].encode())
    basic = ext(cert, x509.BasicConstraints)
    assert basic.critical and basic.value.ca is False
    usage = ext(cert, x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature
    assert usage.value.key_encipherment is key_type.startswith("rsa")
    assert not usage.value.key_cert_sign
    eku = set(ext(cert, x509.ExtendedKeyUsage).value)
    assert (ExtendedKeyUsageOID.SERVER_AUTH in eku) is (profile != "client")
    assert (ExtendedKeyUsageOID.CLIENT_AUTH in eku) is (profile != "server")
    assert ext(cert, x509.AuthorityKeyIdentifier).value.key_identifier == \
        ext(signer.certificate, x509.SubjectKeyIdentifier).value.digest
    assert ext(cert, x509.SubjectKeyIdentifier).value.digest == \
        x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest
    san = ext(cert, x509.SubjectAlternativeName)
    assert not san.critical
    assert san.value.get_values_for_type(x509.DNSName) == ["svc.example.com"]
    assert san.value.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("192.0.2.7")]
    assert 0 < cert.serial_number < 2 ** 159
    assert result["serial"] == "%x" % cert.serial_number
    assert result["chain"] == result["certificate"] + pem(signer.certificate)
    assert cert.subject.rfc4514_string() == "CN=svc.example.com"


def test_validity_backdate_and_index(issuing):
    store, signer = issuing
    before = utcnow()
    result = _batch(store, signer, [{"identity": "svc", "common_name": "svc.example.com",
                                     "csr": make_csr("svc.example.com")}])[0]
    cert = x509.load_pem_x509_certificate(result["certificate"].encode())
    backdated = before - not_valid_before(cert)
    assert datetime.timedelta(minutes=4) < backdated <= datetime.timedelta(minutes=5, seconds=1) \
        or not_valid_before(cert) == signer.not_before
    lifetime = not_valid_after(cert) - utcnow()
    assert datetime.timedelta(days=89, hours=23) < lifetime <= datetime.timedelta(days=90)
    entries = store.index().entries()
    assert len(entries) == 1
    recorded = entries[0]
    assert recorded["serial"] == result["serial"] and recorded["status"] == "valid"
    assert recorded["sans"] == ["DNS:svc.example.com"] and recorded["profile"] == "server"
    assert recorded["subject"] == "CN=svc.example.com" and recorded["host"] is None


def test_cn_is_added_to_server_sans(issuing):
    store, signer = issuing
    result = _batch(store, signer, [
        {"identity": "a", "common_name": "a.example.com", "sans": ["alt.example.com"], "csr": make_csr("x")},
        {"identity": "b", "common_name": "b.example.com", "csr": make_csr("b.example.com"), "sans": ["IP:10.0.0.1"]},
        {"identity": "c", "common_name": "10.0.0.9", "csr": make_csr("10.0.0.9")},
        {"identity": "d", "common_name": "Device D", "csr": make_csr("Device D"), "profile": "client"},
    ])
    assert result[0]["sans"] == ["DNS:alt.example.com", "DNS:a.example.com"]
    assert result[1]["sans"] == ["IP:10.0.0.1", "DNS:b.example.com"]
    assert result[2]["sans"] == ["IP:10.0.0.9"]
    assert result[3]["sans"] == [] and result[3]["subject"] == "CN=Device D"


def test_common_name_defaults(issuing):
    store, signer = issuing
    result = _batch(store, signer, [
        {"identity": "x", "csr": make_csr("csr-cn.example.com"), "common_name": "override.example.com"},
        {"identity": "y", "csr": make_csr("y.example.com")},
    ])
    assert result[0]["subject"] == "CN=override.example.com"
    assert "DNS:override.example.com" in result[0]["sans"]
    # Never the CSR's CN: without a declared common name the identity name is the CN.
    assert result[1]["subject"] == "CN=y" and result[1]["sans"] == ["DNS:y"]


def test_truncate_to_issuer(issuing):
    store, signer = issuing
    too_long = (signer.not_after - utcnow()).days + 10
    with pytest.raises(MtlsError, match="after the issuing CA expires"):
        _batch(store, signer, [{"identity": "svc", "csr": make_csr("svc.example.com"), "validity_days": too_long}])
    result = _batch(store, signer, [{"identity": "svc", "csr": make_csr("svc.example.com")}],
                    validity_days=too_long, truncate_to_issuer=True)[0]
    cert = x509.load_pem_x509_certificate(result["certificate"].encode())
    assert not_valid_after(cert) == signer.not_after


def test_batch_results_in_request_order_with_unique_serials(issuing):
    store, signer = issuing
    requests = [{"identity": "id%d" % n, "host": "h%d" % (n % 7), "common_name": "n%d.example.com" % n,
                 "csr": make_csr("n%d.example.com" % n)} for n in range(60)]
    results = _batch(store, signer, requests)
    assert [r["identity"] for r in results] == ["id%d" % n for n in range(60)]
    assert [r["sans"] for r in results] == [["DNS:n%d.example.com" % n] for n in range(60)]
    assert len(set(r["serial"] for r in results)) == 60
    assert sorted(e["serial"] for e in store.index().entries()) == sorted(r["serial"] for r in results)


def test_central_key_generation(issuing, tmp_path):
    store, signer = issuing
    key_dir = tmp_path / "keys"
    results = _batch(store, signer, [
        {"identity": "sensor1", "host": "dev1", "profile": "client"},
        {"identity": "sensor2", "host": "dev1", "profile": "client", "key_type": "rsa2048"},
        {"identity": "gw", "profile": "server", "sans": ["gw.example.com"]},
    ], generate_keys=True, key_dir=str(key_dir))
    assert results[0]["key_path"] == str(key_dir / "dev1" / "sensor1.key")
    assert results[2]["key_path"] == str(key_dir / "gw.key")
    assert stat.S_IMODE(os.stat(str(key_dir / "dev1")).st_mode) == 0o700
    for result in results:
        assert "PRIVATE" not in repr(result)
        assert stat.S_IMODE(os.stat(result["key_path"]).st_mode) == 0o600
        key = load_private_key(open(result["key_path"], "rb").read())
        cert = x509.load_pem_x509_certificate(result["certificate"].encode())
        assert same_public_key(key, cert.public_key())
    assert [name for name in os.listdir(str(key_dir / "dev1")) if name.startswith(".")] == []


def test_central_keys_not_written_when_batch_fails(issuing, tmp_path):
    store, signer = issuing
    before = tree_digest(store.path)
    with pytest.raises(MtlsError, match="request 2 .*unknown key type 'rsa1024'"):
        _batch(store, signer, [{"identity": "ok", "host": "d1", "profile": "client"},
                               {"identity": "bad", "host": "d1", "profile": "client", "key_type": "rsa1024"}],
               generate_keys=True, key_dir=str(tmp_path / "keys"))
    assert not (tmp_path / "keys").exists()
    assert tree_digest(store.path) == before


def test_check_mode_signs_nothing(issuing):
    store, signer = issuing
    before = tree_digest(store.path)
    results = _batch(store, signer, [{"identity": "svc", "common_name": "svc.example.com",
                                      "csr": make_csr("svc.example.com")}], check_mode=True)
    assert results[0]["certificate"] is None and results[0]["sans"] == ["DNS:svc.example.com"]
    assert tree_digest(store.path) == before


def test_sign_leaf_single(issuing):
    dummy, signer = issuing
    cert = issuance.sign_leaf(signer, make_csr("one.example.com"), profile="server", validity_days=10, serial=0x1234)
    assert cert.serial_number == 0x1234
    assert (not_valid_after(cert) - not_valid_before(cert)).days in (10,)


def _tampered_csr():
    text = make_csr("tamper.example.com")
    der = x509.load_pem_x509_csr(text.encode()).public_bytes(serialization.Encoding.DER)
    # Flip a byte of the subject CN inside the signed part: still parses, signature no longer matches.
    position = der.index(b"tamper")
    der = der[:position] + b"T" + der[position + 1:]
    import base64
    body = base64.encodebytes(der).decode().replace("\n", "")
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return "-----BEGIN CERTIFICATE REQUEST-----\n%s\n-----END CERTIFICATE REQUEST-----\n" % "\n".join(lines)


GOOD_CSR = None


def good_csr():
    global GOOD_CSR
    if GOOD_CSR is None:
        GOOD_CSR = make_csr("good.example.com")
    return GOOD_CSR


BAD_REQUESTS = [
    ("malformed CSR", {"csr": "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"},
     {}, "CSR is malformed"),
    ("not a CSR", {"csr": "hello"}, {}, "not a PEM certificate signing request"),
    ("tampered CSR", {"csr": "TAMPERED"}, {}, "CSR signature is invalid"),
    ("unknown profile", {"profile": "superuser"}, {}, "unknown profile 'superuser'"),
    ("invalid SAN syntax", {"sans": ["DNS:bad_label!.example.com"]}, {}, "invalid DNS name"),
    ("IP in DNS SAN", {"sans": ["DNS:192.0.2.1"]}, {}, "is an IP address, not a DNS name"),
    ("unknown SAN type", {"sans": ["dirName:/CN=x"]}, {}, "unsupported subject alternative name type"),
    ("zero validity", {"validity_days": 0}, {}, "validity_days must be a positive"),
    ("validity past issuer", {"validity_days": 5000}, {}, "after the issuing CA expires"),
    ("key type not allowed", {"csr": "RSA"}, {"allowed_key_types": ["ec_p256", "ec_p384"]},
     "key type rsa2048 is not allowed"),
    ("server CN not a name", {"common_name": "Web Server #1"}, {}, "is not a DNS name or IP address"),
    ("missing CSR", {"csr": None}, {}, "csr is missing"),
    ("bad identity", {"identity": "../etc/passwd"}, {}, "invalid identity name"),
    ("bad host", {"host": "a/b"}, {}, "invalid host 'a/b'"),
    ("unknown request key", {"colour": "red"}, {}, "unknown request keys colour"),
    ("wrong type", {"sans": "DNS:a.example.com"}, {}, "sans must be a list of strings"),
    ("key_type with CSR", {"key_type": "ec_p384"}, {}, "key_type applies only with generate_keys"),
    ("negative backdate", {}, {"backdate_minutes": -1}, "backdate_minutes must be 0 or more"),
]


@pytest.mark.parametrize("what, change, options, message", BAD_REQUESTS, ids=[b[0] for b in BAD_REQUESTS])
def test_bad_request_fails_whole_batch_and_store_is_unchanged(issuing, what, change, options, message):
    store, signer = issuing
    _batch(store, signer, [{"identity": "seed", "csr": good_csr()}])  # a non-empty index to protect
    before = tree_digest(store.path)
    bad = {"identity": "web", "host": "h9", "csr": good_csr()}
    bad.update(change)
    if bad.get("csr") == "TAMPERED":
        bad["csr"] = _tampered_csr()
    if bad.get("csr") == "RSA":
        bad["csr"] = make_csr("good.example.com", key_type="rsa2048")
    bad = dict((k, v) for k, v in bad.items() if v is not None)
    requests = [{"identity": "first", "csr": good_csr()}, bad, {"identity": "last", "csr": good_csr()}]
    with pytest.raises(MtlsError, match=message) as info:
        _batch(store, signer, requests, **options)
    if "backdate" not in what:
        assert str(info.value).startswith("request 2 (identity %s" % bad["identity"])
    assert tree_digest(store.path) == before


def test_duplicate_identities_in_batch(issuing):
    store, signer = issuing
    before = tree_digest(store.path)
    with pytest.raises(MtlsError, match=r"request 3 \(identity web on host h1\) duplicates request 1"):
        _batch(store, signer, [{"identity": "web", "host": "h1", "csr": good_csr()},
                               {"identity": "web", "host": "h2", "csr": good_csr()},
                               {"identity": "web", "host": "h1", "csr": good_csr()}])
    assert tree_digest(store.path) == before


def test_server_without_any_san(issuing):
    store, signer = issuing
    with pytest.raises(MtlsError, match="is not a DNS name or IP address"):
        _batch(store, signer, [{"identity": "svc", "common_name": "no dns name", "csr": make_csr("svc.example.com")}])


def test_empty_batch_and_missing_key_dir(issuing):
    store, signer = issuing
    with pytest.raises(MtlsError, match="no certificate requests given"):
        issuance.sign_batch(signer, store, [])
    with pytest.raises(MtlsError, match="generate_keys needs key_dir"):
        issuance.sign_batch(signer, store, [{"identity": "a"}], generate_keys=True)
    with pytest.raises(MtlsError, match="would let others read private keys"):
        issuance.sign_batch(signer, store, [{"identity": "a"}], generate_keys=True, key_dir="/tmp/x", key_mode="0644")


def test_expired_issuer_is_refused(issuing):
    dummy, signer = issuing
    later = signer.not_after + datetime.timedelta(seconds=1)
    with pytest.raises(MtlsError, match="expired on"):
        issuance.LeafSigner(signer, now=later)


# Names come from the request, never from the CSR (issue 15).
HOSTILE_NAMES = [("URI", "spiffe://example.org/admin"), ("DNS", "*"), ("email", "root@localhost"),
                 ("DNS", "evil..example"), ("DNS", "a b.example"), ("URI", "https://a\x00b.example/"),
                 ("DNS", "*.co.uk"), ("URI", "https://bücher.example/")]


def _san_values(cert):
    try:
        return list(ext(cert, x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        return []


def test_csr_names_are_never_copied_into_a_client_certificate(issuing, tmp_path):
    store, signer = issuing
    hostile = make_hostile_csr("app1", HOSTILE_NAMES)
    # The request exactly as the identity role builds it for a client identity.
    request = {"identity": "app2", "host": "h2", "profile": "client", "sans": [], "common_name": "app2",
               "validity_days": 30, "csr": hostile}
    without_cn = dict(request)
    del without_cn["common_name"]
    without_cn["identity"] = "app3"
    without_sans = dict(without_cn, identity="app4")
    del without_sans["sans"]
    results = issuance.sign_batch(signer, store, [request, without_cn, without_sans])
    for leaf, identity in zip(results, ("app2", "app3", "app4")):
        cert = leaf.certificate
        assert cert.subject.rfc4514_string() == "CN=%s" % identity
        assert _san_values(cert) == []
        assert leaf.as_dict()["sans"] == []
    assert pkilint(results[0].as_dict()["certificate"], tmp_path) == ""  # the three differ in CN only
    assert [e["subject"] for e in store.index().entries()] == ["CN=app2", "CN=app3", "CN=app4"]
    assert [e["sans"] for e in store.index().entries()] == [[], [], []]


def test_csr_names_are_never_copied_into_a_server_certificate(issuing, tmp_path):
    store, signer = issuing
    hostile = make_hostile_csr("app1.example.com", HOSTILE_NAMES + [("DNS", "app1.example.com")])
    result = issuance.sign_batch(signer, store, [
        {"identity": "app2", "host": "h2", "profile": "server", "common_name": "app2.example.com",
         "sans": ["DNS:app2.example.com", "IP:192.0.2.2"], "csr": hostile}])[0]
    cert = result.certificate
    assert cert.subject.rfc4514_string() == "CN=app2.example.com"
    assert _san_values(cert) == [x509.DNSName("app2.example.com"), x509.IPAddress(ipaddress.ip_address("192.0.2.2"))]
    assert pkilint(result.as_dict()["certificate"], tmp_path) == ""


def test_csr_cn_of_another_identity_is_ignored(issuing):
    store, signer = issuing
    result = _batch(store, signer, [{"identity": "app2", "profile": "client", "csr": make_csr("app1")}])[0]
    assert result["subject"] == "CN=app2"
    server = _batch(store, signer, [{"identity": "app2", "csr": make_csr("app1", sans=["app1"])}])[0]
    assert server["subject"] == "CN=app2" and server["sans"] == ["DNS:app2"]


def test_csr_proof_of_possession_is_still_required(issuing):
    store, signer = issuing
    before = tree_digest(store.path)
    with pytest.raises(MtlsError, match=r"request 1 \(identity app2 on host h2\): CSR signature is invalid"):
        _batch(store, signer, [{"identity": "app2", "host": "h2", "profile": "client", "csr": _tampered_csr()}])
    assert tree_digest(store.path) == before


# Each SAN kind, issued and linted. pkilint's PKIX linter has no notion of wildcards (RFC 6125, not
# RFC 5280), of single-label names or of non-web URI schemes such as spiffe://: for those the one
# finding allowed is its syntax error on exactly that name.
SAN_KINDS = [
    ("dns", ["DNS:svc.example.com"], ["DNS:svc.example.com"], None),
    ("dns trailing dot, upper case", ["DNS:SVC.Example.com."], ["DNS:svc.example.com"], None),
    ("idna", ["DNS:bücher.example"], ["DNS:xn--bcher-kva.example"], None),
    ("ipv4", ["IP:192.0.2.10"], ["IP:192.0.2.10"], None),
    ("ipv6", ["IP:2001:db8::10"], ["IP:2001:db8::10"], None),
    ("https uri", ["URI:https://svc.example.com:8443/id"], ["URI:https://svc.example.com:8443/id"], None),
    ("email", ["email:ops@bücher.example"], ["email:ops@xn--bcher-kva.example"], None),
    ("wildcard", ["DNS:*.apps.example.com"], ["DNS:*.apps.example.com"], 'Invalid domain name syntax: "*.apps.example.com"'),
    ("spiffe", ["URI:spiffe://example.org/ns/web"], ["URI:spiffe://example.org/ns/web"],
     'Invalid URI syntax: "spiffe://example.org/ns/web"'),
    ("bare label", ["DNS:web1"], ["DNS:web1"], 'Invalid domain name syntax: "web1"'),
]


@pytest.mark.parametrize("what, sans, issued, pkilint_finding", SAN_KINDS, ids=[k[0] for k in SAN_KINDS])
def test_each_san_kind_issues_and_lints(pki, issuing, tmp_path, what, sans, issued, pkilint_finding):
    store, signer = issuing
    result = _batch(store, signer, [{"identity": "svc", "profile": "client", "common_name": "svc",
                                     "csr": make_csr("ignored.example.com"), "sans": sans}])[0]
    assert result["sans"] == issued
    findings = pkilint(result["certificate"], tmp_path)
    if pkilint_finding is None:
        assert findings == ""
    else:
        kind = "uri" if "URI" in pkilint_finding else "domain_name"
        expected = ["    pkix.invalid_%s_syntax (ERROR): %s" % (kind, pkilint_finding)]
        assert [line for line in findings.splitlines() if "(ERROR)" in line or "(WARNING)" in line] == expected
    proc = openssl_verify(os.path.join(pki[0], "ca.crt"), os.path.join(pki[1], "ca.crt"), result["certificate"],
                          tmp_path, purpose="sslclient")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_idna_name_matches_with_openssl(pki, issuing, tmp_path):
    store, signer = issuing
    result = _batch(store, signer, [{"identity": "shop", "common_name": "bücher.example", "csr": make_csr("x")}])[0]
    assert result["subject"] == "CN=bücher.example" and result["sans"] == ["DNS:xn--bcher-kva.example"]
    leaf = tmp_path / "idna.pem"
    leaf.write_text(result["certificate"])
    base = ["openssl", "verify", "-CAfile", os.path.join(pki[0], "ca.crt"), "-untrusted", os.path.join(pki[1], "ca.crt")]
    import subprocess
    good = subprocess.run(base + ["-verify_hostname", "xn--bcher-kva.example", str(leaf)], capture_output=True, text=True, check=False)
    assert good.returncode == 0, good.stdout + good.stderr
    bad = subprocess.run(base + ["-verify_hostname", "evil.example", str(leaf)], capture_output=True, text=True, check=False)
    assert bad.returncode != 0


# Name constraints of the CA, enforced at signing and carried in the CA certificate.
@pytest.fixture(scope="module")
def constrained(tmp_path_factory):
    """Root -> intermediate constrained to example.com DNS names and the example.org SPIFFE trust domain."""
    from ansible_collections.fleet.mtls.plugins.module_utils.names import build_name_constraints
    base = tmp_path_factory.mktemp("constrained")
    root = str(base / "root")
    path = str(base / "issuing")
    ca_store.create_root(root, "root-pass-1", common_name="NC Root")
    ca_store.create_intermediate(path, ISSUING_PASS, root, "root-pass-1", common_name="NC Issuing",
                                 name_constraints=build_name_constraints(["example.com"], "example.org"))
    return root, path


@pytest.fixture
def constrained_store(constrained, tmp_path):
    return private_copy(constrained[1], tmp_path, "nc-issuing")


def test_constrained_ca_certificate_lints_clean(constrained, tmp_path):
    cert = ca_store.CAStore(constrained[1]).certificate()
    extension = ext(cert, x509.NameConstraints)
    assert extension.critical
    assert extension.value.permitted_subtrees == [x509.DNSName("example.com"),
                                                  x509.UniformResourceIdentifier("example.org")]
    assert pkilint(ca_store.certificate_pem(cert).decode(), tmp_path) == ""


def test_name_constraints_allow_names_inside(constrained, constrained_store, tmp_path):
    store, signer = constrained_store
    results = _batch(store, signer, [
        {"identity": "web", "host": "web1", "common_name": "web1.example.com",
         "sans": ["DNS:*.apps.example.com", "IP:192.0.2.1"], "csr": make_csr("x")},
        {"identity": "app2", "host": "h2", "profile": "client", "sans": ["URI:spiffe://example.org/ns/app2"],
         "csr": make_csr("x")},
    ])
    for result in results:
        proc = openssl_verify(os.path.join(constrained[0], "ca.crt"), os.path.join(constrained[1], "ca.crt"),
                              result["certificate"], tmp_path)
        assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("request_names, message", [
    ({"common_name": "web1.example.net"}, "DNS:web1.example.net is outside the name constraints of CA CN=NC Issuing"),
    ({"common_name": "web1.example.com", "sans": ["DNS:web1.example.com.evil.net"]}, "DNS:web1.example.com.evil.net is outside"),
    ({"profile": "client", "sans": ["URI:spiffe://evil.org/admin"]}, "URI:spiffe://evil.org/admin is outside"),
    ({"profile": "client", "common_name": "app2.evil.net"}, "DNS:app2.evil.net is outside"),
])
def test_name_constraints_refuse_names_outside(constrained_store, request_names, message):
    store, signer = constrained_store
    before = tree_digest(store.path)
    bad = {"identity": "app2", "host": "h2", "csr": make_csr("app2.example.com")}
    bad.update(request_names)
    with pytest.raises(MtlsError) as info:
        _batch(store, signer, [{"identity": "ok", "common_name": "ok.example.com", "csr": make_csr("x")}, bad])
    assert info.value.message.startswith("request 2 (identity app2 on host h2): ")
    assert message in info.value.message
    assert info.value.details == {"request": 2, "identity": "app2", "host": "h2"}
    assert tree_digest(store.path) == before


def test_name_constraints_are_real_for_tls_peers(constrained, constrained_store, tmp_path):
    """A leaf the signer would refuse, made here by hand with the constrained CA's key, fails openssl verify."""
    dummy, signer = constrained_store
    plan = issuance.LeafPlan(1, "rogue", None, "server", "rogue.evil.net", ["DNS:rogue.evil.net"], 30,
                             public_key=signer.key.public_key(), key_type=signer.key_type)
    leaf_signer = issuance.LeafSigner(signer)
    plan.not_before, plan.not_after = leaf_signer.validity(30)
    rogue = pem(leaf_signer.sign(plan, 12345))
    proc = openssl_verify(os.path.join(constrained[0], "ca.crt"), os.path.join(constrained[1], "ca.crt"), rogue,
                          tmp_path)
    assert proc.returncode != 0 and "permitted subtree violation" in proc.stdout + proc.stderr


def test_constraints_of_a_ca_above_apply_below(tmp_path):
    from ansible_collections.fleet.mtls.plugins.module_utils.names import build_name_constraints
    root = str(tmp_path / "root")
    below = str(tmp_path / "issuing")
    ca_store.create_root(root, "root-pass-1", common_name="NC Root 2",
                         name_constraints=build_name_constraints(["corp.example"]))
    ca_store.create_intermediate(below, ISSUING_PASS, root, "root-pass-1", common_name="Unconstrained Issuing")
    store = ca_store.CAStore(below)
    signer = store.load(ISSUING_PASS)
    assert _batch(store, signer, [{"identity": "a", "common_name": "a.corp.example", "csr": make_csr("x")}])
    with pytest.raises(MtlsError, match="DNS:b.example.com is outside the name constraints of CA CN=NC Root 2"):
        _batch(store, signer, [{"identity": "b", "common_name": "b.example.com", "csr": make_csr("x")}])


def test_existing_store_with_other_constraints_is_drift(constrained):
    from ansible_collections.fleet.mtls.plugins.module_utils.names import build_name_constraints
    with pytest.raises(MtlsError, match="name constraints are"):
        ca_store.create_intermediate(constrained[1], ISSUING_PASS, constrained[0], "root-pass-1",
                                     common_name="NC Issuing",
                                     name_constraints=build_name_constraints(["other.example"]))
    same = ca_store.create_intermediate(constrained[1], ISSUING_PASS, constrained[0], "root-pass-1",
                                        common_name="NC Issuing",
                                        name_constraints=build_name_constraints(["example.com"], "example.org"))
    assert same.changed is False
