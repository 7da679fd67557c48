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
