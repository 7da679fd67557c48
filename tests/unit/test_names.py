# -*- coding: utf-8 -*-
from __future__ import annotations

import ipaddress

import pytest
from cryptography import x509

from ansible_collections.fleet.mtls.plugins.module_utils import names
from ansible_collections.fleet.mtls.plugins.module_utils.errors import MtlsError


@pytest.mark.parametrize("entry, canonical", [
    ("DNS:Web1.Example.COM.", "DNS:web1.example.com"),
    ("web1.example.com", "DNS:web1.example.com"),
    ("*.apps.example.com", "DNS:*.apps.example.com"),
    ("IP:192.0.2.1", "IP:192.0.2.1"),
    ("10.0.0.1", "IP:10.0.0.1"),
    ("[2001:db8::1]", "IP:2001:db8::1"),
    ("ip:2001:DB8:0:0::1", "IP:2001:db8::1"),
    ("URI:spiffe://example.org/ns/web", "URI:spiffe://example.org/ns/web"),
    ("https://example.org/id", "URI:https://example.org/id"),
    ("email:ops@Example.org", "email:ops@example.org"),
    ("ops@example.org", "email:ops@example.org"),
    ("localhost", "DNS:localhost"),
])
def test_canonical_san(entry, canonical):
    assert names.canonical_san(entry) == canonical


@pytest.mark.parametrize("entry, message", [
    ("DNS:192.0.2.1", "is an IP address, not a DNS name"),
    ("DNS:bad_label.example.com", "invalid DNS name"),
    ("DNS:-lead.example.com", "invalid DNS name"),
    ("DNS:" + "a" * 64 + ".example.com", "invalid DNS name"),
    ("DNS:" + ".".join(["abcdefgh"] * 30), "longer than 253"),
    ("DNS:*.com", "at least two labels"),
    ("DNS:", "empty DNS name"),
    ("IP:300.1.1.1", "invalid IP address"),
    ("URI:no scheme", "empty or contains whitespace"),
    ("URI:example", "needs a scheme"),
    ("URI:spiffe://Example.org/x", "trust domain must be lower-case"),
    ("URI:spiffe://example.org/a//b", "path segment"),
    ("URI:spiffe://example.org/a?q=1", "query and fragment"),
    ("email:two@@example.org", "invalid email address"),
    ("email:a b@example.org", "bad local part"),
    ("dirName:/CN=x", "unsupported subject alternative name type"),
    ("RID:1.2.3", "unsupported subject alternative name type"),
    ("foo:bar", "unknown subject alternative name type"),
    ("   ", "empty entry"),
])
def test_bad_san(entry, message):
    with pytest.raises(MtlsError, match=message):
        names.canonical_san(entry)


def test_canonical_sans_dedup_and_order():
    assert names.canonical_sans(["b.example.com", "DNS:B.example.com", "IP:10.0.0.1", "a.example.com"]) == \
        ["DNS:b.example.com", "IP:10.0.0.1", "DNS:a.example.com"]
    assert names.canonical_sans(None) == []
    assert names.canonical_sans("x.example.com") == ["DNS:x.example.com"]


def test_wildcard_can_be_refused():
    with pytest.raises(MtlsError, match="wildcard DNS name"):
        names.validate_dns_name("*.example.com", allow_wildcard=False)


def test_general_name_round_trip():
    canon = ["DNS:a.example.com", "IP:192.0.2.9", "URI:spiffe://example.org/x", "email:a@example.org"]
    general = [names.san_to_general_name(c) for c in canon]
    assert general[1] == x509.IPAddress(ipaddress.ip_address("192.0.2.9"))
    assert names.general_names_to_sans(general) == canon


def test_build_subject():
    name = names.build_subject("web", {"O": "Example", "countryName": "DE", "OU": ""})
    assert name.rfc4514_string() == "CN=web,O=Example,C=DE"
    assert names.common_name_of(name) == "web"
    assert names.build_subject(None, {"CN": "from dict"}).rfc4514_string() == "CN=from dict"
    assert names.build_subject("wins", {"CN": "loses"}).rfc4514_string() == "CN=wins"
    assert names.common_name_of(names.build_subject(None, {"O": "only org"})) is None


@pytest.mark.parametrize("common_name, subject, message", [
    (None, None, "the subject is empty"),
    ("", {}, "the subject is empty"),
    ("x", {"Colour": "red"}, "unknown subject attribute 'Colour'"),
    ("x", {"C": "DEU"}, "two-letter code"),
    ("x" * 65, None, "longer than 64 characters"),
])
def test_bad_subject(common_name, subject, message):
    with pytest.raises(MtlsError, match=message):
        names.build_subject(common_name, subject)


# Strict SAN syntax (issue 15): every entry below was once copied into a certificate.
@pytest.mark.parametrize("entry, canonical", [
    ("DNS:example.com.", "DNS:example.com"),
    ("DNS:bücher.example", "DNS:xn--bcher-kva.example"),
    ("DNS:Bücher.Example.", "DNS:xn--bcher-kva.example"),
    ("DNS:xn--bcher-kva.example", "DNS:xn--bcher-kva.example"),
    ("DNS:*.example.co.uk", "DNS:*.example.co.uk"),
    ("DNS:web1", "DNS:web1"),
    ("URI:https://[2001:db8::1]:8443/id", "URI:https://[2001:db8::1]:8443/id"),
    ("URI:https://192.0.2.1/", "URI:https://192.0.2.1/"),
    ("URI:https://svc.example.com/a%20b?x=1#f", "URI:https://svc.example.com/a%20b?x=1#f"),
    ("URI:spiffe://example.org", "URI:spiffe://example.org"),
    ("email:ops@bücher.example", "email:ops@xn--bcher-kva.example"),
    ("email:first.last+tag@example.org", "email:first.last+tag@example.org"),
    ("email:root@localhost", "email:root@localhost"),
])
def test_strict_san_accepts(entry, canonical):
    assert names.canonical_san(entry) == canonical


STRICT_BAD_SANS = [
    ("DNS:*", "bare wildcard"),
    ("*", "bare wildcard"),
    ("DNS:evil..example", "empty label"),
    ("DNS:.example.com", "empty label"),
    ("DNS:example.com..", "empty label"),
    ("DNS:.", "only the root"),
    ("DNS:a b.example", "whitespace at position 1"),
    ("DNS:a\tb.example", "control character (U+0009)"),
    ("DNS:a\x00b.example", "control character (U+0000) at position 1"),
    ("DNS:*.co.uk", "public suffix 'co.uk'"),
    ("DNS:*.com.au", "public suffix 'com.au'"),
    ("DNS:*.com", "at least two labels"),
    ("DNS:*.localhost", "at least two labels"),
    ("DNS:a.*.example.com", "whole leftmost label"),
    ("DNS:*web.example.com", "whole leftmost label"),
    ("DNS:w*b.example.com", "whole leftmost label"),
    ("DNS:10.0.0.256", "last label is all digits"),
    ("DNS:xn--zz.example", "not a valid IDNA A-label"),
    ("DNS:faß.example", "not stable under IDNA mapping" if not names.HAS_IDNA else None),
    ("DNS:ＡＢＣ.example", "not stable under IDNA mapping"),
    ("URI:https://a\x00b.example/", "control character (U+0000 at position 9)"),
    ("URI:https://bücher.example/", "non-ASCII characters"),
    ("URI:spiffe://example.org/bücher", "non-ASCII characters"),
    ("URI:https://a.example/<x>", "must be percent-encoded"),
    ("URI:https://a.example/%zz", "percent-encoding of two hex digits"),
    ("URI:urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66", "needs an authority"),
    ("URI:https:///path", "the host is empty"),
    ("URI:https://evil..example/", "bad host: invalid DNS name"),
    ("URI:https://*.example.com/", "bad host: wildcard"),
    ("URI:https://a.example:99999/", "port '99999'"),
    ("URI:https://[2001:db8::1/", "unterminated IPv6 literal"),
    ("URI:spiffe://example.org:443/x", "trust domain must be lower-case"),
    ("URI:spiffe://user@example.org/x", "trust domain must be lower-case"),
    ("URI:spiffe://example.org/", "path segment ''"),
    ("email:a..b@example.org", "bad local part"),
    ("email:.a@example.org", "bad local part"),
    ("email:ü@example.org", "bad local part"),
    ("email:root@evil..example", "bad domain: invalid DNS name"),
    ("email:root@*.example.org", "bad domain: wildcard"),
    ("email:root@local\x00host", "control character (U+0000)"),
]


@pytest.mark.parametrize("entry, message", [b for b in STRICT_BAD_SANS if b[1]],
                         ids=[repr(b[0]) for b in STRICT_BAD_SANS if b[1]])
def test_strict_san_refuses(entry, message):
    with pytest.raises(MtlsError) as info:
        names.canonical_san(entry)
    assert message in info.value.message


def test_public_suffix_list_refuses_private_suffixes():
    if not names.HAS_PUBLICSUFFIXLIST:
        pytest.skip("publicsuffixlist is not installed")
    with pytest.raises(MtlsError, match="public suffix 'github.io'"):
        names.canonical_san("DNS:*.github.io")
    assert names.canonical_san("DNS:*.project.github.io") == "DNS:*.project.github.io"


def test_conservative_public_suffix_rule_without_the_list(monkeypatch):
    monkeypatch.setattr(names, "HAS_PUBLICSUFFIXLIST", False)
    for wildcard, suffix in (("*.co.uk", "co.uk"), ("*.com.au", "com.au"), ("*.ac.jp", "ac.jp")):
        with pytest.raises(MtlsError, match="public suffix %r" % suffix):
            names.validate_dns_name(wildcard)
    assert names.validate_dns_name("*.example.co.uk") == "*.example.co.uk"
    assert names.validate_dns_name("*.apps.example.com") == "*.apps.example.com"


@pytest.mark.parametrize("has_idna", [True, False])
def test_idna_with_and_without_the_idna_package(monkeypatch, has_idna):
    if has_idna and not names.HAS_IDNA:
        pytest.skip("idna is not installed")
    monkeypatch.setattr(names, "HAS_IDNA", has_idna)
    assert names.validate_dns_name("Bücher.example") == "xn--bcher-kva.example"
    assert names.validate_dns_name("*.bücher.example") == "*.xn--bcher-kva.example"
    with pytest.raises(MtlsError, match="not stable under IDNA mapping"):
        names.validate_dns_name("ＡＢＣ.example")
    if not has_idna:  # IDNA 2003 maps ß to ss: refused rather than silently changed
        with pytest.raises(MtlsError, match="not stable under IDNA mapping"):
            names.validate_dns_name("faß.example")


def test_subject_refuses_control_characters():
    with pytest.raises(MtlsError, match="subject CN 'app\\\\x00' has a control character"):
        names.build_subject("app\x00")


# Name constraints of a CA and their check.
def _ca_with(constraints):
    """A stand-in CA certificate for the checker: what it reads is the subject and the extension."""
    from pki_factory import make_certificate
    return make_certificate("Constrained CA", ca=True, name_constraints=constraints).cert


def test_build_name_constraints():
    assert names.build_name_constraints() is None
    assert names.build_name_constraints([], None) is None
    built = names.build_name_constraints([".Example.COM", "example.com", "corp.example.net"], "example.org")
    assert built.permitted_subtrees == [x509.DNSName("example.com"), x509.DNSName("corp.example.net"),
                                        x509.UniformResourceIdentifier("example.org")]
    assert built.excluded_subtrees is None
    with pytest.raises(MtlsError, match="permitted DNS suffix '\\*.example.com'"):
        names.build_name_constraints(["*.example.com"])
    with pytest.raises(MtlsError, match="permitted DNS suffix '.'"):
        names.build_name_constraints(["."])
    with pytest.raises(MtlsError, match="trust domain must be lower-case"):
        names.build_name_constraints(None, "Example.org")


CONSTRAINED = [
    # (sans, common_name, outcome: None = allowed, else message fragment)
    (["DNS:example.com"], "example.com", None),
    (["DNS:web1.example.com", "DNS:*.apps.example.com", "IP:192.0.2.1"], "web1.example.com", None),
    (["URI:spiffe://example.org/ns/web"], "app2", None),
    (["URI:https://example.org/id"], "app2", None),
    ([], "app2", None),
    ([], "app2.example.com", None),
    (["email:ops@example.org"], "app2", None),
    (["DNS:web1.example.com.evil.net"], "x", "DNS:web1.example.com.evil.net is outside the name constraints"),
    (["DNS:notexample.com"], "x", "DNS:notexample.com is outside"),
    (["DNS:web1"], "web1", "DNS:web1 is outside"),
    (["URI:spiffe://evil.org/ns/web"], "app2", "URI:spiffe://evil.org/ns/web is outside"),
    (["URI:spiffe://sub.example.org/x"], "app2", "URI:spiffe://sub.example.org/x is outside"),
    ([], "app2.evil.net", "DNS:app2.evil.net is outside"),
]


@pytest.mark.parametrize("sans, common_name, outcome", CONSTRAINED)
def test_check_name_constraints(sans, common_name, outcome):
    ca = _ca_with(names.build_name_constraints(["example.com"], "example.org"))
    subject = names.build_subject(common_name)
    if outcome is None:
        names.check_name_constraints([ca], subject, common_name, sans)
    else:
        with pytest.raises(MtlsError) as info:
            names.check_name_constraints([ca], subject, common_name, sans)
        assert outcome in info.value.message
        assert "CN=Constrained CA" in info.value.message
        assert ("permitted: URI:example.org" if "URI:" in outcome else "permitted: DNS:example.com") in info.value.message


def test_check_name_constraints_excluded_ip_and_directory_subtrees():
    import ipaddress as ip
    constraints = x509.NameConstraints(
        permitted_subtrees=[x509.IPAddress(ip.ip_network("10.0.0.0/8")),
                            x509.DirectoryName(names.build_subject(None, {"O": "Fleet"}))],
        excluded_subtrees=[x509.DNSName("secret.example.com"), x509.RFC822Name("example.org")])
    ca = _ca_with(constraints)
    fleet = names.build_subject("app", {"O": "Fleet"})
    names.check_name_constraints([ca], fleet, "app", ["IP:10.1.2.3", "DNS:www.example.com"])
    cases = [
        (fleet, ["IP:192.0.2.1"], "IP:192.0.2.1 is outside"),
        (fleet, ["IP:2001:db8::1"], "IP:2001:db8::1 is outside"),  # one name form for v4 and v6
        (fleet, ["DNS:a.secret.example.com"], "DNS:a.secret.example.com is excluded by"),
        (fleet, ["email:ops@example.org"], "email:ops@example.org is excluded by"),
        (names.build_subject("app"), [], "CN=app is outside"),
    ]
    for subject, sans, message in cases:
        with pytest.raises(MtlsError) as info:
            names.check_name_constraints([ca], subject, "app", sans)
        assert message in info.value.message
    # The chain counts as a whole: an unconstrained signing CA below a constrained one is constrained.
    unconstrained = _ca_with(None)
    with pytest.raises(MtlsError, match="IP:192.0.2.1 is outside"):
        names.check_name_constraints([unconstrained, ca], fleet, "app", ["IP:192.0.2.1"])
