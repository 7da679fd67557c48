# -*- coding: utf-8 -*-
"""CRL library: revocation through the index, CRLNumber, AKI, the refresh decision, and what the
real openssl binary makes of the result."""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ansible_collections.fleet.mtls.plugins.module_utils import crl as crl_lib
from ansible_collections.fleet.mtls.plugins.module_utils.ca_store import CAStore, create_intermediate, create_root
from ansible_collections.fleet.mtls.plugins.module_utils.compat import crl_next_update, isoformat, revocation_date
from ansible_collections.fleet.mtls.plugins.module_utils.errors import MtlsError
from ansible_collections.fleet.mtls.plugins.module_utils.issuance import sign_batch

PASS = "correct horse battery"
DAY = datetime.timedelta(days=1)


def _files(directory):
    state = {}
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if os.path.isfile(path) and name != "index.lock" and name != "crl.lock":
            with open(path, "rb") as handle:
                state[name] = hashlib.sha256(handle.read()).hexdigest()
    return state


@pytest.fixture
def pki(tmp_path):
    root = str(tmp_path / "root")
    issuing = str(tmp_path / "issuing")
    create_root(root, PASS, common_name="CRL Test Root")
    create_intermediate(issuing, PASS, root, PASS, common_name="CRL Test Issuing")
    store = CAStore(issuing)
    signer = store.load(PASS)
    requests = [{"identity": "web", "host": "h1", "common_name": "web1.example.net", "profile": "server"},
                {"identity": "web", "host": "h2", "common_name": "web2.example.net", "profile": "server"},
                {"identity": "mqtt", "host": "h1", "common_name": "sensor", "profile": "client"}]
    issued = sign_batch(signer, store, requests, generate_keys=True, key_dir=str(tmp_path / "keys"))
    leaves = [leaf.as_dict() for leaf in issued]
    files = {"root": os.path.join(root, "ca.crt"), "issuing": os.path.join(issuing, "ca.crt")}
    for leaf in leaves:
        path = str(tmp_path / ("%s-%s.crt" % (leaf["identity"], leaf["host"])))
        with open(path, "w") as handle:
            handle.write(leaf["certificate"])
        files[(leaf["identity"], leaf["host"])] = path
    return {"store": issuing, "root": root, "leaves": leaves, "files": files, "tmp": tmp_path}


def publish(pki, revocations=(), **options):
    return crl_lib.revoke_and_publish(pki["store"], PASS, revocations, **options)


def load_crl(result):
    return x509.load_pem_x509_crl(result["crl"].encode())


def openssl_verify(pki, leaf_key, crl_path):
    """`openssl verify -crl_check` of a leaf: root trusted, intermediate untrusted helper."""
    proc = subprocess.run(["openssl", "verify", "-crl_check", "-CAfile", pki["files"]["root"],
                           "-untrusted", pki["files"]["issuing"], "-CRLfile", crl_path,
                           pki["files"][leaf_key]], capture_output=True, text=True, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def test_first_crl_is_signed_numbered_and_identified(pki):
    result = publish(pki)
    assert result["changed"] and result["refreshed"] and result["refresh_reason"] == "missing"
    crl = load_crl(result)
    ca = x509.load_pem_x509_certificate(open(pki["files"]["issuing"], "rb").read())
    assert crl.issuer == ca.subject
    assert crl.is_signature_valid(ca.public_key())
    assert crl_lib.crl_number_of(crl) == 1 == result["crl_number"]
    aki = crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    assert len(crl) == 0 and result["revoked"] == []
    next_update = crl_next_update(crl)
    assert datetime.timedelta(days=6, hours=23) < next_update - datetime.datetime.now(datetime.timezone.utc) <= 7 * DAY
    proc = subprocess.run(["openssl", "crl", "-in", os.path.join(pki["store"], "crl.pem"), "-noout", "-verify",
                           "-CAfile", pki["files"]["issuing"]], capture_output=True, text=True, check=False)
    assert "verify OK" in proc.stdout + proc.stderr, proc.stderr
    state = json.load(open(os.path.join(pki["store"], "crl.json")))
    assert state["crl_number"] == 1 and state["next_update"] == result["next_update"]


def test_revoked_leaf_is_rejected_by_openssl(pki):
    web_h1 = pki["leaves"][0]
    result = publish(pki, [{"serial": web_h1["serial"], "reason": "keyCompromise"}])
    assert result["revoked"] == [web_h1["serial"]]
    assert [entry["serial"] for entry in result["revoked_now"]] == [web_h1["serial"]]
    crl = load_crl(result)
    entry = crl.get_revoked_certificate_by_serial_number(int(web_h1["serial"], 16))
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == x509.ReasonFlags.key_compromise
    crl_path = os.path.join(pki["store"], "crl.pem")
    code, output = openssl_verify(pki, ("web", "h1"), crl_path)
    assert code != 0 and "certificate revoked" in output
    code, output = openssl_verify(pki, ("web", "h2"), crl_path)
    assert code == 0, output


def test_unchanged_run_keeps_the_crl_and_its_number(pki):
    publish(pki)
    before = _files(pki["store"])
    again = publish(pki)
    assert again["changed"] is False and again["refreshed"] is False and again["refresh_reason"] == "current"
    assert again["crl_number"] == 1
    assert _files(pki["store"]) == before


def test_crl_number_is_monotonic_even_when_files_are_deleted(pki):
    assert publish(pki)["crl_number"] == 1
    assert publish(pki, [{"serial": pki["leaves"][0]["serial"]}])["crl_number"] == 2
    os.unlink(os.path.join(pki["store"], "crl.pem"))
    rebuilt = publish(pki)
    assert (rebuilt["refresh_reason"], rebuilt["crl_number"]) == ("missing", 3)
    os.unlink(os.path.join(pki["store"], "crl.json"))
    assert publish(pki, force=True)["crl_number"] == 4
    with open(os.path.join(pki["store"], "crl.pem"), "w") as handle:
        handle.write("garbage\n")
    unreadable = publish(pki)
    assert (unreadable["refresh_reason"], unreadable["crl_number"]) == ("unreadable", 5)


def test_corrupt_state_is_an_error_not_a_guess(pki):
    publish(pki)
    with open(os.path.join(pki["store"], "crl.json"), "w") as handle:
        handle.write("{not json")
    before = _files(pki["store"])
    with pytest.raises(MtlsError, match="CRL state .*crl.json is corrupt"):
        publish(pki)
    assert _files(pki["store"]) == before


def test_refresh_window_edges(pki):
    first = publish(pki)
    next_update = crl_next_update(load_crl(first))
    inside = next_update - 2 * DAY
    assert publish(pki, now=inside - datetime.timedelta(seconds=1))["refreshed"] is False
    refreshed = publish(pki, now=inside)
    assert (refreshed["refresh_reason"], refreshed["crl_number"]) == ("refresh_window", 2)
    # Past nextUpdate (a missed schedule) is inside the window too.
    late = crl_next_update(load_crl(refreshed)) + DAY
    assert publish(pki, now=late)["refresh_reason"] == "refresh_window"


def test_needs_crl_refresh_reasons(pki):
    result = publish(pki)
    crl = load_crl(result)
    store = CAStore(pki["store"])
    ca = store.certificate()
    state = crl_lib.load_crl_state(store.crl_json_path)
    revoked = store.index().revoked_entries()
    assert crl_lib.needs_crl_refresh(crl, state, ca, revoked) == (False, "current")
    assert crl_lib.needs_crl_refresh(crl, state, ca, revoked, force=True) == (True, "forced")
    assert crl_lib.needs_crl_refresh(None, state, ca, revoked) == (True, "missing")
    assert crl_lib.needs_crl_refresh(crl, None, ca, revoked) == (True, "revoked_changed")
    fake = dict(revoked=[{"serial": "1f", "reason": "superseded", "revoked_at": "2026-01-01T00:00:00Z"}])
    assert crl_lib.needs_crl_refresh(crl, state, ca, fake["revoked"]) == (True, "revoked_changed")
    root_ca = CAStore(pki["root"]).certificate()
    assert crl_lib.needs_crl_refresh(crl, state, root_ca, revoked) == (True, "issuer_changed")


def test_revoke_identity_on_one_host_and_unspecified_reason(pki):
    result = publish(pki, [{"identity": "web", "host": "h2"}])
    web_h2 = pki["leaves"][1]["serial"]
    assert result["revoked"] == [web_h2]
    entry = load_crl(result).get_revoked_certificate_by_serial_number(int(web_h2, 16))
    # RFC 5280 5.3.1: reasonCode SHOULD be absent rather than unspecified.
    with pytest.raises(x509.ExtensionNotFound):
        entry.extensions.get_extension_for_class(x509.CRLReason)
    everywhere = publish(pki, [{"identity": "web", "reason": "cessationOfOperation"}])
    assert [item["serial"] for item in everywhere["revoked_now"]] == [pki["leaves"][0]["serial"]]
    assert sorted(everywhere["revoked"]) == sorted([pki["leaves"][0]["serial"], web_h2])


def test_re_revoking_same_reason_is_unchanged_other_reason_fails(pki):
    serial = pki["leaves"][2]["serial"]
    publish(pki, [{"serial": serial, "reason": "superseded"}])
    before = _files(pki["store"])
    again = publish(pki, [{"serial": serial, "reason": "superseded"}])
    assert again["changed"] is False and again["revoked_now"] == []
    assert _files(pki["store"]) == before
    with pytest.raises(MtlsError, match="serial %s is already revoked .*superseded.* keyCompromise" % serial):
        publish(pki, [{"serial": serial, "reason": "keyCompromise"}])
    assert _files(pki["store"]) == before


@pytest.mark.parametrize("revocations, message", [
    ([{"serial": "abc123"}], "no certificate with serial abc123"),
    ([{"identity": "ghost"}], "no certificate with identity ghost"),
    ([{"identity": "web", "host": "h9"}], "identity web on host h9"),
    ([{"serial": "not-hex"}], "invalid serial 'not-hex'"),
    ([{"identity": "web", "reason": "lostIt"}], "unknown revocation reason 'lostIt'"),
    ([{"identity": "web", "serial": "01"}], "exactly one of serial or identity"),
    ([{"serial": "01", "host": "h1"}], "host filters an identity"),
    ([{"identity": "web", "colour": "red"}], "unknown keys colour"),
], ids=["unknown-serial", "unknown-identity", "unknown-host", "bad-serial", "bad-reason", "both", "serial-host",
        "unknown-key"])
def test_bad_revocations_name_the_problem_and_change_nothing(pki, revocations, message):
    publish(pki)
    before = _files(pki["store"])
    # A valid request first: it must not be applied when a later one fails.
    with pytest.raises(MtlsError, match=message):
        publish(pki, [{"serial": pki["leaves"][2]["serial"], "reason": "superseded"}] + revocations)
    assert _files(pki["store"]) == before


def test_same_serial_twice_with_different_reasons_is_refused(pki):
    serial = pki["leaves"][0]["serial"]
    with pytest.raises(MtlsError, match="revoked twice with different reasons"):
        publish(pki, [{"serial": serial, "reason": "superseded"}, {"serial": serial.upper(), "reason": "keyCompromise"}])


def test_wrong_passphrase_and_bad_schedule(pki):
    publish(pki)
    before = _files(pki["store"])
    with pytest.raises(MtlsError, match="wrong passphrase"):
        crl_lib.revoke_and_publish(pki["store"], "not the passphrase", [{"serial": pki["leaves"][0]["serial"]}])
    with pytest.raises(MtlsError, match="refresh_days .* must be lower than next_update_days"):
        publish(pki, next_update_days=2, refresh_days=2)
    with pytest.raises(MtlsError, match="next_update_days must be"):
        publish(pki, next_update_days=0)
    assert _files(pki["store"]) == before


def test_check_mode_plans_without_writing(pki):
    publish(pki)
    before = _files(pki["store"])
    serial = pki["leaves"][0]["serial"]
    planned = publish(pki, [{"serial": serial, "reason": "keyCompromise"}], check_mode=True)
    assert planned["changed"] is True and planned["refreshed"] is True
    assert planned["revoked"] == [serial] and planned["crl_number"] == 2 and planned["crl"] is None
    assert "revoked: %s" % serial in planned["diff"]["after"]
    assert _files(pki["store"]) == before


def test_crl_uses_the_index_revocation_dates(pki):
    when = datetime.datetime(2026, 3, 1, 8, 0, tzinfo=datetime.timezone.utc)
    serial = pki["leaves"][0]["serial"]
    CAStore(pki["store"]).index().revoke(serial=serial, reason="superseded", when=when)
    crl = load_crl(publish(pki))
    entry = crl.get_revoked_certificate_by_serial_number(int(serial, 16))
    assert isoformat(revocation_date(entry)) == "2026-03-01T08:00:00Z"
    pem = crl.public_bytes(serialization.Encoding.PEM)
    text = subprocess.run(["openssl", "crl", "-noout", "-text"], input=pem, capture_output=True, check=True).stdout.decode()
    assert "Mar  1 08:00:00 2026 GMT" in text
    assert "Superseded" in text


# -- finding a revocation request in every trusted CA generation ---------------------------------------

@pytest.fixture
def generations(tmp_path):
    """A CA directory in the reissue phase of an issuing rotation: web on h1 holds a certificate of
    each generation, mqtt only one of generation 1."""
    from ansible_collections.fleet.mtls.plugins.module_utils import rotation as rot
    ca_dir = str(tmp_path / "ca")
    os.mkdir(ca_dir)
    create_root(os.path.join(ca_dir, "root-1"), PASS, common_name="Find Root")
    serials = {}
    for number in (1, 2):
        path = os.path.join(ca_dir, "issuing-%d" % number)
        create_intermediate(path, PASS, os.path.join(ca_dir, "root-1"), PASS, common_name="Find Issuing %d" % number)
        store = CAStore(path)
        requests = [{"identity": "web", "host": "h1", "common_name": "web1", "profile": "server"}]
        if number == 1:
            requests.append({"identity": "mqtt", "host": "h1", "common_name": "sensor", "profile": "client"})
        issued = sign_batch(store.load(PASS), store, requests, generate_keys=True, key_dir=str(tmp_path / "keys"))
        for leaf in issued:
            serials[(leaf.as_dict()["identity"], number)] = leaf.as_dict()["serial"]
    state_file = rot.StateFile(ca_dir)
    state_file.transition(lambda s: rot.begin(s, "issuing"))
    state_file.transition(lambda s: rot.complete(s, "trust"))
    state_file.transition(rot.advance)
    return ca_dir, serials


def test_find_an_identity_in_every_trusted_generation(generations):
    ca_dir, serials = generations
    matches = crl_lib.find_in_trusted_generations(ca_dir, identity="web", host="h1", reason="keycompromise")
    assert [(m["store"], m["serials"]) for m in matches] == [
        ("issuing-1", [serials[("web", 1)]]), ("issuing-2", [serials[("web", 2)]])]
    assert matches[0]["ca_path"] == os.path.join(ca_dir, "issuing-1")
    assert matches[1]["revoke"] == [{"serial": serials[("web", 2)], "reason": "keyCompromise"}]


def test_find_a_serial_in_any_of_its_spellings(generations):
    ca_dir, serials = generations
    serial = serials[("mqtt", 1)]
    colons = ":".join(serial[i:i + 2] for i in range(0, len(serial), 2))
    for spelling in (serial, "0x" + serial.upper(), colons):
        matches = crl_lib.find_in_trusted_generations(ca_dir, serial=spelling)
        assert [(m["store"], m["serials"]) for m in matches] == [("issuing-1", [serial])]


@pytest.mark.parametrize("request_, message", [
    ({"serial": "0xdeadbeef"}, r"No certificate with serial 0xdeadbeef was issued by a trusted CA generation "
                               r"\(issuing-1, issuing-2\)\."),
    ({"identity": "nobody", "host": "h1"}, r"No certificate of identity nobody on host h1 was issued by a "
                                           r"trusted CA generation \(issuing-1, issuing-2\)\."),
    ({"identity": "web", "host": "h2"}, r"of identity web on host h2"),
    ({"serial": "zz"}, r"invalid serial 'zz'"),
    ({}, r"either a serial or an identity"),
    ({"serial": "01", "identity": "web", "host": "h1"}, r"either a serial or an identity"),
    ({"identity": "web"}, r"needs the host"),
])
def test_find_names_what_matched_nothing(generations, request_, message):
    with pytest.raises(MtlsError, match=message):
        crl_lib.find_in_trusted_generations(generations[0], **request_)
