"""Inspection library: loading, describing, path validation and CRL checks on real certificates."""

from __future__ import annotations

import datetime
import os
import sys

import pytest
from cryptography.hazmat.primitives import hashes

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pki_factory import Pki, certs_pem, crl_pem, make_certificate, make_crl, now  # noqa: E402

from ansible_collections.fleet.mtls.plugins.module_utils import x509_info  # noqa: E402
from ansible_collections.fleet.mtls.plugins.module_utils.errors import MtlsError  # noqa: E402

DAY = datetime.timedelta(days=1)


@pytest.fixture(scope="module")
def pki():
    return Pki()


# --- loading -------------------------------------------------------------------------------------

def test_load_bundle_keeps_every_certificate_in_order(pki):
    bundle = certs_pem(pki.root.cert, pki.issuing.cert, pki.foreign_root.cert)
    loaded = x509_info.load_certificates(bundle, "bundle.pem")
    assert [c.subject for c in loaded] == [pki.root.cert.subject, pki.issuing.cert.subject,
                                           pki.foreign_root.cert.subject]


def test_load_accepts_text_and_der(pki):
    from cryptography.hazmat.primitives import serialization
    assert len(x509_info.load_certificates(pki.root.cert_pem.decode(), "text")) == 1
    der = pki.root.cert.public_bytes(serialization.Encoding.DER)
    assert x509_info.load_certificates(der, "der")[0].serial_number == pki.root.cert.serial_number


@pytest.mark.parametrize("data, message", [
    (b"", "/x/empty.pem is empty"),
    (b"  \n", "/x/empty.pem is empty"),
    (b"hello world, not a certificate", "/x/empty.pem is not a PEM certificate or bundle"),
])
def test_load_rejects_empty_and_garbage_naming_the_source(data, message):
    with pytest.raises(MtlsError) as raised:
        x509_info.load_certificates(data, "/x/empty.pem")
    assert message in str(raised.value)


def test_load_names_what_was_found_instead_of_a_certificate(pki):
    with pytest.raises(MtlsError) as raised:
        x509_info.load_certificates(pki.root.key_pem(), "ca.key")
    assert str(raised.value) == "ca.key holds no certificate (found only PRIVATE KEY)"


def test_load_reports_which_block_is_damaged(pki):
    good = pki.root.cert_pem
    lines = pki.issuing.cert_pem.splitlines(True)
    damaged = b"".join(lines[:2] + [b"AAAA" + lines[2][4:]] + lines[3:])
    damaged = damaged.replace(lines[3], b"!!!!" + lines[3][4:])
    with pytest.raises(MtlsError) as raised:
        x509_info.load_certificates(good + damaged, "chain.pem")
    assert "chain.pem: certificate #2 is damaged" in str(raised.value)


def test_load_crls_rejects_certificates(pki):
    with pytest.raises(MtlsError, match="crl.pem holds no CRL"):
        x509_info.load_crls(pki.root.cert_pem, "crl.pem")


# --- describe ------------------------------------------------------------------------------------

def test_describe_server_leaf(pki):
    leaf = pki.server("web.test", sans=("DNS:Web.Test", "IP:127.0.0.1", "URI:spiffe://fleet/web"),
                      days=90)
    info = x509_info.describe_certificate(leaf.cert)
    assert info["subject"] == "CN=web.test,O=fleet-mtls tests"
    assert info["common_name"] == "web.test"
    assert info["sans"] == ["DNS:web.test", "IP:127.0.0.1", "URI:spiffe://fleet/web"]
    assert info["issuer"] == "CN=Test Issuing CA,O=fleet-mtls tests"
    assert info["serial"] == format(leaf.cert.serial_number, "x")
    assert info["serial"] == info["serial"].lower() and ":" not in info["serial"]
    assert info["not_before"].endswith("Z") and info["not_after"].endswith("Z")
    assert info["lifetime_days"] == 90.0
    assert 89.9 <= info["days_left"] <= 90.0
    assert 0.99 < info["fraction_left"] <= 1.0
    assert info["eku"] == ["serverAuth"]
    assert info["profile"] == "server"
    assert info["is_ca"] is False
    assert info["key_type"] == "ec_p256"
    expected_fp = ":".join("%02x" % b for b in leaf.cert.fingerprint(hashes.SHA256()))
    assert info["fingerprint_sha256"] == expected_fp
    assert info["aki"] == x509_info.describe_certificate(pki.issuing.cert)["ski"]
    assert info["ski"] and info["ski"] != info["aki"]


def test_describe_time_fields_follow_now(pki):
    start = now() - 10 * DAY
    leaf = pki.client(not_before=start, not_after=start + 40 * DAY)
    halfway = x509_info.describe_certificate(leaf.cert, now=start + 20 * DAY)
    assert halfway["days_left"] == 20.0 and halfway["fraction_left"] == 0.5
    after = x509_info.describe_certificate(leaf.cert, now=start + 50 * DAY)
    assert after["days_left"] == -10.0 and after["fraction_left"] == 0.0
    assert x509_info.describe_certificate(leaf.cert, now=start - DAY)["fraction_left"] == 1.0


def test_describe_ca_and_other_key_types(pki):
    info = x509_info.describe_certificate(pki.root.cert)
    assert info["is_ca"] is True and info["profile"] is None and info["eku"] == []
    assert info["aki"] == info["ski"]
    rsa_leaf = pki.issuing.issue("rsa.test", key_type="rsa2048", eku=["serverAuth", "clientAuth"])
    rsa_info = x509_info.describe_certificate(rsa_leaf.cert)
    assert rsa_info["key_type"] == "rsa2048" and rsa_info["profile"] == "server_client"
    assert x509_info.describe_certificate(pki.issuing.issue("ed.test", key_type="ed25519").cert)[
        "key_type"] == "ed25519"


# --- verify_chain: success -----------------------------------------------------------------------

def test_chain_through_untrusted_intermediate_to_root(pki):
    leaf = pki.server()
    ok, reason, path = x509_info.verify_chain(leaf.cert, [pki.issuing.cert], [pki.root.cert],
                                              purpose="serverAuth")
    assert (ok, reason) == (True, None)
    assert [c.subject for c in path] == [leaf.cert.subject, pki.issuing.cert.subject, pki.root.cert.subject]


def test_intermediate_in_the_bundle_is_an_anchor(pki):
    leaf = pki.client()
    ok, reason, path = x509_info.verify_chain(leaf.cert, [], [pki.root.cert, pki.issuing.cert])
    assert ok and reason is None and len(path) == 2


@pytest.mark.parametrize("key_type", ["rsa2048", "ec_p384", "ed25519"])
def test_signatures_of_every_issuer_key_type(key_type):
    root = make_certificate("Root %s" % key_type, ca=True, key_type=key_type, days=100)
    issuing = root.issue("Issuing %s" % key_type, ca=True, key_type=key_type, days=50)
    leaf = issuing.issue("leaf", eku=["clientAuth"])
    assert x509_info.verify_chain(leaf.cert, [issuing.cert], [root.cert], purpose="clientAuth")[0]
    assert x509_info.issued_by(leaf.cert, issuing.cert)
    assert not x509_info.issued_by(leaf.cert, root.cert)


def test_ca_rotation_same_names_picks_the_right_key(pki):
    """Two CA generations with the same names: key identifiers or backtracking find the signer."""
    for with_key_ids in (True, False):
        old_root = make_certificate("Rotating Root", ca=True, days=100, with_key_ids=with_key_ids)
        new_root = make_certificate("Rotating Root", ca=True, days=100, with_key_ids=with_key_ids)
        new_issuing = new_root.issue("Rotating Issuing", ca=True, with_key_ids=with_key_ids)
        old_issuing = old_root.issue("Rotating Issuing", ca=True, with_key_ids=with_key_ids)
        leaf = new_issuing.issue("rotated.test", with_key_ids=with_key_ids)
        ok, reason, path = x509_info.verify_chain(leaf.cert, [old_issuing.cert, new_issuing.cert],
                                                  [old_root.cert, new_root.cert])
        assert (ok, reason) == (True, None), with_key_ids
        assert path[1] is new_issuing.cert and path[2] is new_root.cert


def test_renewed_copy_of_an_intermediate_in_the_bundle_wins(pki):
    """The chain file carries an expired copy of the intermediate; the bundle has a renewed one
    (same subject and key): the trusted copy is used."""
    expired_copy = pki.root.issue("Test Issuing CA", ca=True, key=pki.issuing.key,
                                  not_before=now() - 20 * DAY, not_after=now() - DAY)
    leaf = pki.client()
    ok, reason, path = x509_info.verify_chain(leaf.cert, [expired_copy.cert],
                                              [pki.root.cert, pki.issuing.cert])
    assert (ok, reason) == (True, None)
    assert path[1] is pki.issuing.cert


def test_leaf_without_eku_serves_any_purpose(pki):
    leaf = pki.issuing.issue("no-eku.test")
    for purpose in ("serverAuth", "clientAuth"):
        assert x509_info.verify_chain(leaf.cert, [], [pki.issuing.cert], purpose=purpose)[0]


# --- verify_chain: each failure reason -----------------------------------------------------------

def _verify(leaf, pki, purpose=None, intermediates=None, anchors=None, when=None):
    return x509_info.verify_chain(leaf.cert, intermediates if intermediates is not None else [pki.issuing.cert],
                                  anchors or [pki.root.cert], now=when, purpose=purpose)


def test_expired_leaf(pki):
    leaf = pki.client(not_before=now() - 40 * DAY, not_after=now() - DAY)
    ok, reason, path = _verify(leaf, pki)
    assert (ok, reason) == (False, "expired") and path == [leaf.cert]


def test_expired_intermediate_is_named_as_the_culprit(pki):
    issuing = pki.root.issue("Old Issuing", ca=True, not_before=now() - 40 * DAY, not_after=now() - DAY)
    leaf = issuing.issue("leaf.test", not_before=now() - 30 * DAY, days=60)
    ok, reason, path = _verify(leaf, pki, intermediates=[issuing.cert])
    assert (ok, reason) == (False, "expired") and path[-1] is issuing.cert


def test_not_yet_valid(pki):
    leaf = pki.client(not_before=now() + DAY)
    assert _verify(leaf, pki)[:2] == (False, "not yet valid")
    # ... and valid once its time has come
    assert _verify(leaf, pki, when=now() + 2 * DAY)[:2] == (True, None)


def test_unknown_issuer_foreign_ca(pki):
    rogue = pki.foreign_issuing.issue("rogue.test", eku=["clientAuth"])
    ok, reason, path = _verify(rogue, pki, intermediates=[pki.foreign_issuing.cert],
                               anchors=[pki.root.cert, pki.issuing.cert])
    assert (ok, reason) == (False, "unknown issuer")
    assert path[-1] is pki.foreign_root.cert or path[-1] is pki.foreign_issuing.cert


def test_unknown_issuer_missing_intermediate(pki):
    ok, reason, path = _verify(pki.client(), pki, intermediates=[])
    assert (ok, reason) == (False, "unknown issuer") and len(path) == 1


def test_untrusted_self_signed(pki):
    self_signed = make_certificate("self.test", eku=["serverAuth"])
    assert _verify(self_signed, pki)[:2] == (False, "unknown issuer")


def test_bad_signature(pki):
    impostor_key = make_certificate("throwaway").key
    forged = pki.issuing.issue("forged.test", signer_key=impostor_key)
    ok, reason, path = _verify(forged, pki)
    assert (ok, reason) == (False, "bad signature") and path == [forged.cert]
    assert not x509_info.issued_by(forged.cert, pki.issuing.cert)


def test_issuer_is_not_a_ca(pki):
    not_a_ca = pki.issuing.issue("plain-leaf.test", eku=["serverAuth", "clientAuth"])
    child = not_a_ca.issue("child.test")
    ok, reason, path = _verify(child, pki, intermediates=[pki.issuing.cert, not_a_ca.cert])
    assert (ok, reason) == (False, "issuer is not a CA") and path[-1] is not_a_ca.cert


def test_ca_without_key_cert_sign_is_not_a_ca(pki):
    crippled = pki.root.issue("No Signing CA", ca=True, key_cert_sign=False)
    child = crippled.issue("child.test")
    assert _verify(child, pki, intermediates=[crippled.cert])[:2] == (False, "issuer is not a CA")


def test_path_length_exceeded(pki):
    # pki.issuing has pathlen 0: it may not sign another CA that then signs leaves.
    sub = pki.issuing.issue("Sub Issuing CA", ca=True)
    leaf = sub.issue("deep.test")
    ok, reason, path = _verify(leaf, pki, intermediates=[pki.issuing.cert, sub.cert])
    assert (ok, reason) == (False, "path length exceeded") and path[-1] is pki.issuing.cert
    # The sub-CA alone is fine when it is the anchor.
    assert x509_info.verify_chain(leaf.cert, [], [sub.cert])[0]


def test_wrong_purpose(pki):
    client = pki.client()
    assert _verify(client, pki, purpose="serverAuth")[:2] == (False, "wrong purpose")
    assert _verify(client, pki, purpose="clientAuth")[:2] == (True, None)


def test_unknown_purpose_and_empty_bundle_are_errors(pki):
    with pytest.raises(MtlsError, match="unknown purpose 'server'"):
        x509_info.verify_chain(pki.client().cert, [], [pki.root.cert], purpose="server")
    with pytest.raises(MtlsError, match="trust bundle holds no certificate"):
        x509_info.verify_chain(pki.client().cert, [], [])


# --- revocation ----------------------------------------------------------------------------------

def test_revocation_good_and_revoked(pki):
    good, bad = pki.client("good.test"), pki.client("bad.test")
    crls = x509_info.load_crls(crl_pem(make_crl(pki.root), make_crl(pki.issuing, revoked=[bad.cert])),
                               "crl.pem")
    assert x509_info.check_revocation(good.cert, pki.issuing.cert, crls)["status"] == "good"
    revoked = x509_info.check_revocation(bad.cert, pki.issuing.cert, crls)
    assert revoked["status"] == "revoked"
    assert revoked["reason"] == "keyCompromise" and revoked["revoked_at"].endswith("Z")
    assert revoked["crl_next_update"].endswith("Z")


def test_revocation_without_a_crl_of_the_issuer(pki):
    crls = [make_crl(pki.root), make_crl(pki.foreign_issuing)]
    assert x509_info.check_revocation(pki.client().cert, pki.issuing.cert, crls)["status"] == "no crl for issuer"


def test_crl_signed_by_another_key_is_ignored(pki):
    impostor = make_certificate("Test Issuing CA", ca=True)  # same name, different key
    crls = [make_crl(impostor, revoked=[])]
    assert x509_info.check_revocation(pki.client().cert, pki.issuing.cert, crls)["status"] == "no crl for issuer"


def test_expired_crl(pki):
    stale = make_crl(pki.issuing, last_update=now() - 10 * DAY, next_update=now() - DAY)
    result = x509_info.check_revocation(pki.client().cert, pki.issuing.cert, [stale])
    assert result["status"] == "crl expired"


def test_newest_crl_decides(pki):
    leaf = pki.client()
    older = make_crl(pki.issuing, revoked=[leaf.cert], crl_number=4)
    newer = make_crl(pki.issuing, revoked=[], crl_number=5)
    assert x509_info.check_revocation(leaf.cert, pki.issuing.cert, [newer, older])["status"] == "good"
    assert x509_info.check_revocation(leaf.cert, pki.issuing.cert, [older])["status"] == "revoked"


def test_find_issuer(pki):
    leaf = pki.client()
    assert x509_info.find_issuer(leaf.cert, [pki.root.cert, pki.issuing.cert]) is pki.issuing.cert
    assert x509_info.find_issuer(leaf.cert, [pki.foreign_issuing.cert]) is None
