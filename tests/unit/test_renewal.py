# -*- coding: utf-8 -*-
"""The renewal decision: every reason, their precedence and the edges of the time windows."""

from __future__ import annotations

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ansible_collections.fleet.mtls.plugins.module_utils import renewal
from ansible_collections.fleet.mtls.plugins.module_utils.errors import MtlsError
from ansible_collections.fleet.mtls.plugins.module_utils.renewal import Expected, needs_issue

UTC = datetime.timezone.utc
NOW = datetime.datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
DAY = datetime.timedelta(days=1)
EKU = {
    "server": [ExtendedKeyUsageOID.SERVER_AUTH],
    "client": [ExtendedKeyUsageOID.CLIENT_AUTH],
    "server_client": [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
}


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _sign(builder, key):
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(key, algorithm)


def make_ca(cn="test issuing CA", key=None):
    key = key or ec.generate_private_key(ec.SECP256R1())
    builder = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(NOW - 365 * DAY).not_valid_after(NOW + 365 * DAY)
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True))
    return _sign(builder, key), key


def make_leaf(ca, key=None, cn="web1.example.net", sans=("DNS:web1.example.net",), profile="server",
              not_before=NOW - 10 * DAY, not_after=NOW + 80 * DAY):
    ca_cert, ca_key = ca
    key = key or ec.generate_private_key(ec.SECP256R1())
    builder = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(ca_cert.subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(not_before).not_valid_after(not_after))
    general_names = []
    for san in sans:
        kind, value = san.split(":", 1)
        general_names.append(x509.DNSName(value) if kind == "DNS" else x509.UniformResourceIdentifier(value))
    if general_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(general_names), critical=False)
    if profile:
        builder = builder.add_extension(x509.ExtendedKeyUsage(EKU[profile]), critical=False)
    return _sign(builder, ca_key), key


@pytest.fixture(scope="module")
def ca():
    return make_ca()


def expected(ca_cert, **overrides):
    values = dict(common_name="web1.example.net", sans=["DNS:web1.example.net"], profile="server",
                  key_type="ec_p256", trusted_issuers=[ca_cert])
    values.update(overrides)
    return Expected(**values)


def test_valid_certificate_needs_nothing(ca):
    cert, key = make_leaf(ca)
    decision = needs_issue(cert, key, expected(ca[0]), now=NOW)
    assert decision == (False, "valid")
    assert decision.needs is False and decision.reason == "valid"
    assert decision.days_left == pytest.approx(80.0)
    assert decision.not_after == NOW + 80 * DAY


def test_missing_certificate():
    assert needs_issue(None, None, Expected(), now=NOW) == (True, "missing")


@pytest.mark.parametrize("garbage", [b"", b"not a certificate\n",
                                     b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"])
def test_unreadable_certificate_bytes(garbage):
    needs, reason = needs_issue(garbage, None, Expected(), now=NOW)
    assert (needs, reason) == (True, "unreadable")


def test_pem_bytes_are_parsed(ca):
    cert, key = make_leaf(ca)
    pem = cert.public_bytes(serialization.Encoding.PEM)
    assert needs_issue(pem, key, expected(ca[0]), now=NOW) == (False, "valid")


def test_key_missing_and_mismatch(ca):
    cert, dummy = make_leaf(ca)
    other_key = ec.generate_private_key(ec.SECP256R1())
    assert needs_issue(cert, None, expected(ca[0]), now=NOW) == (True, "key_missing")
    assert needs_issue(cert, other_key, expected(ca[0]), now=NOW) == (True, "key_mismatch")


def test_expired_and_edges(ca):
    not_after = NOW + 5 * DAY
    cert, key = make_leaf(ca, not_before=NOW - 85 * DAY, not_after=not_after)
    exp = expected(ca[0])
    # RFC 5280: the validity period includes notAfter itself.
    assert needs_issue(cert, key, exp, now=not_after)[1] == "renewal_window"
    decision = needs_issue(cert, key, exp, now=not_after + datetime.timedelta(seconds=1))
    assert decision == (True, "expired")
    assert "ago" in decision.detail


def test_not_yet_valid_and_edge(ca):
    not_before = NOW + DAY
    cert, key = make_leaf(ca, not_before=not_before, not_after=NOW + 91 * DAY)
    exp = expected(ca[0])
    assert needs_issue(cert, key, exp, now=NOW) == (True, "not_yet_valid")
    assert needs_issue(cert, key, exp, now=not_before) == (False, "valid")


def test_issuer_untrusted_after_ca_rotation(ca):
    cert, key = make_leaf(ca)
    new_ca_cert, dummy = make_ca("next issuing CA")
    assert needs_issue(cert, key, expected(ca[0], trusted_issuers=[new_ca_cert]), now=NOW) == (
        True, "issuer_untrusted")
    # Both generations trusted (rotation phase 1): still valid.
    assert needs_issue(cert, key, expected(ca[0], trusted_issuers=[new_ca_cert, ca[0]]), now=NOW) == (
        False, "valid")
    # An empty bundle trusts nobody; None skips the check.
    assert needs_issue(cert, key, expected(ca[0], trusted_issuers=[]), now=NOW)[1] == "issuer_untrusted"
    assert needs_issue(cert, key, expected(ca[0], trusted_issuers=None), now=NOW)[1] == "valid"


def test_issuer_with_same_name_but_other_key_is_untrusted(ca):
    cert, key = make_leaf(ca)
    impostor, dummy = make_ca(cn="test issuing CA")
    assert impostor.subject == ca[0].subject
    assert needs_issue(cert, key, expected(ca[0], trusted_issuers=[impostor]), now=NOW)[1] == "issuer_untrusted"


@pytest.mark.parametrize("ca_key", [rsa.generate_private_key(public_exponent=65537, key_size=2048),
                                    ed25519.Ed25519PrivateKey.generate(),
                                    ec.generate_private_key(ec.SECP384R1())],
                         ids=["rsa", "ed25519", "p384"])
def test_issuer_check_for_every_ca_key_type(ca_key):
    issuer = make_ca("typed CA", key=ca_key)
    cert, key = make_leaf(issuer)
    assert needs_issue(cert, key, expected(issuer[0]), now=NOW) == (False, "valid")
    assert needs_issue(cert, key, expected(make_ca("typed CA")[0]), now=NOW)[1] == "issuer_untrusted"


def test_key_type_changed(ca):
    cert, key = make_leaf(ca)
    assert needs_issue(cert, key, expected(ca[0], key_type="rsa2048"), now=NOW) == (True, "key_type_changed")


def test_profile_changed(ca):
    cert, key = make_leaf(ca)
    assert needs_issue(cert, key, expected(ca[0], profile="server_client"), now=NOW) == (True, "profile_changed")
    no_eku, key2 = make_leaf(ca, profile=None)
    assert needs_issue(no_eku, key2, expected(ca[0]), now=NOW)[1] == "profile_changed"


def test_subject_changed(ca):
    cert, key = make_leaf(ca)
    decision = needs_issue(cert, key, expected(ca[0], common_name="web2.example.net"), now=NOW)
    assert decision == (True, "subject_changed")
    assert "web2.example.net" in decision.detail


def test_sans_changed_but_order_and_spelling_do_not_matter(ca):
    cert, key = make_leaf(ca, sans=("DNS:web1.example.net", "DNS:www.example.net"))
    exp = expected(ca[0], sans=["www.example.net", "DNS:WEB1.example.net"])
    assert needs_issue(cert, key, exp, now=NOW) == (False, "valid")
    assert needs_issue(cert, key, expected(ca[0], sans=["DNS:web1.example.net"]), now=NOW) == (
        True, "sans_changed")
    assert needs_issue(cert, key, expected(ca[0], sans=[]), now=NOW)[1] == "sans_changed"


def test_renewal_window_fraction_edges(ca):
    # 90 day lifetime: the default third starts at 30 days left (inclusive).
    cert, key = make_leaf(ca, not_before=NOW - 60 * DAY, not_after=NOW + 30 * DAY)
    exp = expected(ca[0])
    decision = needs_issue(cert, key, exp, now=NOW)
    assert decision == (True, "renewal_window")
    assert "30.0 days left" in decision.detail
    assert needs_issue(cert, key, exp, now=NOW - datetime.timedelta(seconds=1)) == (False, "valid")


def test_renew_days_alone_and_with_fraction(ca):
    cert, key = make_leaf(ca, not_before=NOW - 70 * DAY, not_after=NOW + 20 * DAY)
    # renew_days alone replaces the default fraction.
    assert needs_issue(cert, key, expected(ca[0], renew_days=14), now=NOW) == (False, "valid")
    assert needs_issue(cert, key, expected(ca[0], renew_days=20), now=NOW) == (True, "renewal_window")
    # Both: whichever starts first.
    assert needs_issue(cert, key, expected(ca[0], renew_days=14, renew_fraction=0.25), now=NOW)[1] == (
        "renewal_window")
    assert needs_issue(cert, key, expected(ca[0], renew_days=14, renew_fraction=0.1), now=NOW)[1] == "valid"
    # A zero fraction with no days renews only at expiry.
    assert needs_issue(cert, key, expected(ca[0], renew_fraction=0), now=NOW)[1] == "valid"


def test_forced_only_when_nothing_else_applies(ca):
    cert, key = make_leaf(ca)
    assert needs_issue(cert, key, expected(ca[0], force=True), now=NOW) == (True, "forced")
    assert needs_issue(None, None, expected(ca[0], force=True), now=NOW) == (True, "missing")
    old, old_key = make_leaf(ca, not_before=NOW - 80 * DAY, not_after=NOW + 10 * DAY)
    assert needs_issue(old, old_key, expected(ca[0], force=True), now=NOW)[1] == "renewal_window"


def test_precedence_chain(ca):
    """Each step removes the top reason; the next one in the documented order shows up."""
    stranger, dummy = make_ca("stranger CA")
    cert, key = make_leaf(ca, cn="old-name", sans=("DNS:old.example.net",), profile="client",
                          not_before=NOW - 100 * DAY, not_after=NOW - DAY)
    wrong_key = ec.generate_private_key(ec.SECP256R1())
    exp = expected(stranger, key_type="ed25519")
    assert needs_issue(cert, None, exp, now=NOW)[1] == "key_missing"
    assert needs_issue(cert, wrong_key, exp, now=NOW)[1] == "key_mismatch"
    assert needs_issue(cert, key, exp, now=NOW)[1] == "expired"
    later_now = NOW - 50 * DAY
    assert needs_issue(cert, key, exp, now=later_now)[1] == "issuer_untrusted"
    exp = expected(ca[0], key_type="ed25519", profile="server", common_name="new-name", sans=["DNS:new.example.net"])
    assert needs_issue(cert, key, exp, now=later_now)[1] == "key_type_changed"
    exp.key_type = "ec_p256"
    assert needs_issue(cert, key, exp, now=later_now)[1] == "profile_changed"
    exp.profile = "client"
    assert needs_issue(cert, key, exp, now=later_now)[1] == "subject_changed"
    exp.common_name = "old-name"
    assert needs_issue(cert, key, exp, now=later_now)[1] == "sans_changed"
    exp.sans = ["DNS:old.example.net"]
    assert needs_issue(cert, key, exp, now=NOW - 10 * DAY)[1] == "renewal_window"
    assert needs_issue(cert, key, exp, now=later_now)[1] == "valid"
    assert renewal.REASONS[:5] == ("missing", "unreadable", "key_missing", "key_mismatch", "files_inconsistent")


def test_expected_rejects_bad_settings():
    with pytest.raises(MtlsError, match="renew_fraction"):
        Expected(renew_fraction=1.5)
    with pytest.raises(MtlsError, match="renew_days"):
        Expected(renew_days=-1)
    with pytest.raises(MtlsError, match="unknown profile"):
        Expected(profile="peer")
    with pytest.raises(MtlsError, match="unknown key type"):
        Expected(key_type="dsa")
    with pytest.raises(MtlsError, match="subject alternative name"):
        Expected(sans=["bogus:thing"])


def test_files_inconsistent_when_the_chain_does_not_start_with_the_leaf():
    ca = make_ca()
    key = ec.generate_private_key(ec.SECP256R1())
    cert, dummy = make_leaf(ca, key=key)
    other, dummy = make_leaf(ca, key=key)
    exp = Expected(common_name="web1.example.net", sans=["DNS:web1.example.net"], profile="server")
    pem = cert.public_bytes(serialization.Encoding.PEM)
    ca_pem = ca[0].public_bytes(serialization.Encoding.PEM)
    assert needs_issue(cert, key, exp, now=NOW)[1] == "valid"  # chain not passed: not checked
    assert needs_issue(cert, key, exp, now=NOW, chain=pem + ca_pem)[1] == "valid"
    for chain, detail in ((None, "missing"), (b"garbage", "unreadable"),
                          (other.public_bytes(serialization.Encoding.PEM) + ca_pem, "starts with another")):
        decision = needs_issue(cert, key, exp, now=NOW, chain=chain)
        assert (decision.needs, decision.reason) == (True, "files_inconsistent")
        assert detail in decision.detail
    # A wrong key is the more fundamental reason.
    stranger = ec.generate_private_key(ec.SECP256R1())
    assert needs_issue(cert, stranger, exp, now=NOW, chain=None)[1] == "key_mismatch"
