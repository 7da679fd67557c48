# -*- coding: utf-8 -*-
"""fleet.mtls.csr through ansible: key custody, the renewal decision, check mode, idempotence."""

from __future__ import annotations

import os
import stat
import threading
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from host_pki import (
    DAY, HostPki, file_mode, install_files, now, public_key_of, public_key_of_key_file, snapshot)

CN = "web1.example.net"
SANS = ["DNS:web1.example.net", "IP:192.0.2.10"]


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return HostPki(str(tmp_path_factory.mktemp("pki")))


@pytest.fixture
def etc(tmp_path):
    return str(tmp_path / "etc-mtls")


def args(etc, **extra):
    values = {"name": "web", "dir": etc, "common_name": CN, "sans": SANS}
    values.update(extra)
    return values


def paths(etc, name="web"):
    return {"key": os.path.join(etc, "private", name + ".key"),
            "staged": os.path.join(etc, "private", name + ".key.new"),
            "crt": os.path.join(etc, "certs", name + ".crt"),
            "csr": os.path.join(etc, "certs", name + ".csr")}


def read(path):
    with open(path, "rb") as handle:
        return handle.read()


def install_cert(etc, cert_pem, name="web"):
    install_files(etc, name, cert_pem)


def assert_no_secret(run, *key_paths):
    for path in key_paths:
        if os.path.exists(path):
            body = read(path).decode().splitlines()[1]  # a line of base64 key material
            assert body not in run.output
            assert "PRIVATE KEY" not in run.output


def test_first_run_makes_key_and_csr(ansible_module, etc):
    run = ansible_module("csr", args(etc))
    assert not run.get("failed"), run.get("msg")
    p = paths(etc)
    assert run["changed"] is True
    assert (run["needs_issue"], run["reason"]) == (True, "missing")
    assert run["key_created"] is True and run["key_staged"] is False
    assert run["key_path"] == p["key"]
    assert run["serial"] is None and run["days_left"] is None
    assert file_mode(p["key"]) == 0o600
    assert file_mode(os.path.join(etc, "private")) == 0o711
    assert read(p["csr"]).decode() == run["csr"]
    csr = x509.load_pem_x509_csr(run["csr"].encode())
    assert csr.is_signature_valid
    assert public_key_of(run["csr"]) == public_key_of_key_file(p["key"])
    assert csr.subject.rfc4514_string() == "CN=" + CN
    sans = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(str(v) for v in sans.get_values_for_type(x509.DNSName)) == [CN]
    assert_no_secret(run, p["key"])


def test_rerun_without_certificate_reuses_key_and_csr(ansible_module, etc):
    first = ansible_module("csr", args(etc))
    before = snapshot(etc)
    second = ansible_module("csr", args(etc))
    assert second["changed"] is False
    assert (second["needs_issue"], second["reason"]) == (True, "missing")
    assert second["csr"] == first["csr"]
    assert second["key_created"] is False
    assert snapshot(etc) == before


def test_check_mode_writes_nothing(ansible_module, etc):
    run = ansible_module("csr", args(etc), check=True, diff=True)
    assert not run.get("failed"), run.get("msg")
    assert run["changed"] is True and run["needs_issue"] is True and run["reason"] == "missing"
    assert run["csr"] is None
    assert not os.path.exists(etc)
    assert "web.key" in run["diff"]["after"]


def test_valid_certificate_is_left_alone(ansible_module, etc, pki):
    first = ansible_module("csr", args(etc))
    cert_pem, dummy = pki.sign(first["csr"])
    install_cert(etc, cert_pem)
    before = snapshot(etc)
    for check in (True, False):
        run = ansible_module("csr", args(etc, trust_bundle=pki.trust_bundle_path), check=check)
        assert run["changed"] is False
        assert (run["needs_issue"], run["reason"]) == (False, "valid")
        assert run["csr"] is None and run["key_path"] is None
        assert run["serial"] == "%x" % x509.load_pem_x509_certificate(cert_pem.encode()).serial_number
        assert 89 < run["days_left"] <= 90
        assert snapshot(etc) == before


def test_renewal_stages_a_new_key_and_reuses_it_after_an_interrupted_run(ansible_module, etc, pki):
    first = ansible_module("csr", args(etc))
    p = paths(etc)
    start = now() - 70 * DAY
    cert_pem, dummy = pki.sign(first["csr"], not_before=start, not_after=start + 90 * DAY)
    install_cert(etc, cert_pem)
    live_key = read(p["key"])

    run = ansible_module("csr", args(etc))
    assert (run["needs_issue"], run["reason"], run["changed"]) == (True, "renewal_window", True)
    assert "days left" in run["detail"] and 19 < run["days_left"] <= 20
    assert run["key_staged"] is True and run["key_created"] is True and run["key_path"] == p["staged"]
    assert file_mode(p["staged"]) == 0o600
    assert read(p["key"]) == live_key, "the live key must never be replaced by csr"
    assert public_key_of(run["csr"]) == public_key_of_key_file(p["staged"])
    staged = read(p["staged"])

    # Same run again: nothing new.
    again = ansible_module("csr", args(etc))
    assert again["changed"] is False and again["csr"] == run["csr"] and read(p["staged"]) == staged

    # Interrupted before the CSR was kept: the staged key is reused, not replaced.
    os.unlink(p["csr"])
    resumed = ansible_module("csr", args(etc))
    assert resumed["changed"] is True and resumed["key_created"] is False
    assert read(p["staged"]) == staged
    assert public_key_of(resumed["csr"]) == public_key_of_key_file(p["staged"])
    assert sorted(os.listdir(os.path.join(etc, "private"))) == ["web.key", "web.key.new"]
    assert_no_secret(resumed, p["key"], p["staged"])


def test_leftover_staged_copy_of_the_live_key_is_not_reused(ansible_module, etc, pki):
    """A promotion interrupted after the rename but before the cleanup leaves key.new == key:
    reusing it would renew without a new key."""
    p = paths(etc)
    start = now() - 70 * DAY
    _issued(ansible_module, etc, pki, not_before=start, not_after=start + 90 * DAY)
    with open(p["staged"], "wb") as handle:
        handle.write(read(p["key"]))
    os.chmod(p["staged"], 0o600)
    run = ansible_module("csr", args(etc))
    assert run["reason"] == "renewal_window" and run["key_staged"] is True and run["key_created"] is True
    assert public_key_of_key_file(p["staged"]) != public_key_of_key_file(p["key"])
    assert public_key_of(run["csr"]) == public_key_of_key_file(p["staged"])


def test_renewal_keeps_the_live_key_when_asked(ansible_module, etc, pki):
    first = ansible_module("csr", args(etc))
    start = now() - 80 * DAY
    install_cert(etc, pki.sign(first["csr"], not_before=start, not_after=start + 90 * DAY)[0])
    run = ansible_module("csr", args(etc, new_key_on_renew=False))
    assert run["reason"] == "renewal_window" and run["key_staged"] is False
    assert public_key_of(run["csr"]) == public_key_of_key_file(paths(etc)["key"])
    assert not os.path.exists(paths(etc)["staged"])


def _issued(ansible_module, etc, pki, **sign_options):
    """An identity as csr would expect it, laid out without running the module."""
    pki.provision(etc, "web", CN, SANS, **sign_options)


@pytest.mark.parametrize("change, reason", [
    ({"sans": ["DNS:web1.example.net", "DNS:www.example.net"]}, "sans_changed"),
    ({"common_name": "web2.example.net", "sans": ["DNS:web2.example.net"]}, "subject_changed"),
    ({"profile": "server_client"}, "profile_changed"),
    ({"key_type": "ec_p384"}, "key_type_changed"),
    ({"force": True}, "forced"),
    ({"renew_days": 100}, "renewal_window"),
])
def test_reasons_for_changed_expectations(ansible_module, etc, pki, change, reason):
    _issued(ansible_module, etc, pki)
    run = ansible_module("csr", args(etc, **change))
    assert not run.get("failed"), run.get("msg")
    assert (run["needs_issue"], run["reason"]) == (True, reason)
    assert run["key_staged"] is True
    if reason == "key_type_changed":
        staged = serialization.load_pem_private_key(read(paths(etc)["staged"]), None)
        assert isinstance(staged, ec.EllipticCurvePrivateKey) and staged.curve.name == "secp384r1"


def test_issuer_untrusted_during_ca_rotation(ansible_module, etc, pki):
    _issued(ansible_module, etc, pki)
    rotated = ansible_module("csr", args(etc, trusted_issuers=pki.root.cert.public_bytes(
        serialization.Encoding.PEM).decode()))
    assert rotated["reason"] == "issuer_untrusted"
    trusted = ansible_module("csr", args(etc, trusted_issuers=pki.trust_bundle.decode()))
    assert trusted["reason"] == "valid"
    missing_bundle = ansible_module("csr", args(etc, trust_bundle=os.path.join(etc, "nope.pem")))
    assert missing_bundle["reason"] == "issuer_untrusted"


@pytest.mark.parametrize("window, reason", [
    ((-100, -1), "expired"),
    ((2, 92), "not_yet_valid"),
])
def test_time_reasons(ansible_module, etc, pki, window, reason):
    start = now() + window[0] * DAY
    _issued(ansible_module, etc, pki, not_before=start, not_after=now() + window[1] * DAY)
    assert ansible_module("csr", args(etc))["reason"] == reason


def test_unreadable_certificate_and_lost_key(ansible_module, etc, pki):
    _issued(ansible_module, etc, pki)
    p = paths(etc)
    cert = read(p["crt"])
    install_cert(etc, "garbage\n")
    run = ansible_module("csr", args(etc))
    assert run["reason"] == "unreadable" and run["key_staged"] is False
    with open(p["crt"], "wb") as handle:
        handle.write(cert)
    os.unlink(p["key"])
    lost = ansible_module("csr", args(etc))
    assert lost["reason"] == "key_missing" and lost["key_created"] is True and lost["key_staged"] is False
    assert file_mode(p["key"]) == 0o600


def test_key_mode_owner_group_and_drift(ansible_module, etc):
    run = ansible_module("csr", args(etc, mode="0640", group="root", owner="root"))
    p = paths(etc)
    st = os.stat(p["key"])
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o640, 0, 0)
    assert run["changed"]
    os.chmod(p["key"], 0o644)
    fixed = ansible_module("csr", args(etc))
    assert fixed["changed"] is True and file_mode(p["key"]) == 0o600
    assert ansible_module("csr", args(etc))["changed"] is False


def test_key_is_never_world_readable_whatever_the_umask(ansible_module, etc):
    """Watch the private directory while the key is written under umask 000: no file in it
    (temporary or final) may ever be readable by others."""
    private = os.path.join(etc, "private")
    seen = {}
    stop = threading.Event()

    def watch():
        deadline = time.monotonic() + 120
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                names = os.listdir(private)
            except OSError:
                continue
            for name in names:
                try:
                    seen[name] = seen.get(name, 0) | stat.S_IMODE(os.stat(os.path.join(private, name)).st_mode)
                except OSError:
                    pass

    watcher = threading.Thread(target=watch)
    old_umask = os.umask(0)
    watcher.start()
    try:
        run = ansible_module("csr", args(etc))
    finally:
        stop.set()
        watcher.join()
        os.umask(old_umask)
    assert not run.get("failed"), run.get("msg")
    assert "web.key" in seen
    for name, modes in seen.items():
        assert modes & 0o077 == 0, "%s was seen with mode bits %o" % (name, modes)
    assert file_mode(os.path.join(etc, "certs", "web.csr")) == 0o644


def _write(path, data, mode=0o600):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(data)
    os.chmod(path, mode)


ENCRYPTED_KEY = ec.generate_private_key(ec.SECP256R1()).private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
    serialization.BestAvailableEncryption(b"not-for-hosts"))


@pytest.mark.parametrize("prepare, extra, message", [
    (lambda p: _write(p["key"], b"this is no key\n"), {}, "private key {key} is not a readable PEM private key"),
    (lambda p: _write(p["key"], ENCRYPTED_KEY), {}, "{key} is encrypted"),
    (lambda p: _write(p["staged"], b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), {},
     "staged private key {staged}"),
    (None, {"sans": ["DNS:bad..name"]}, "invalid DNS name 'bad..name'"),
    (None, {"name": "../escape"}, "invalid identity name '../escape'"),
    (None, {"trusted_issuers": "not a certificate"}, "trusted_issuers is not a PEM certificate"),
    (None, {"owner": "no-such-user-here"}, "unknown owner 'no-such-user-here'"),
    (None, {"renew_fraction": 1.5}, "renew_fraction 1.5"),
    (None, {"mode": "rw-------"}, "invalid file mode 'rw-------'"),
    (None, {"common_name": "Web Server One"}, "common name 'Web Server One' of a server certificate"),
], ids=["garbage-key", "encrypted-key", "garbage-staged-key", "bad-san", "bad-name", "bad-issuers",
        "unknown-owner", "bad-fraction", "bad-mode", "server-cn-not-a-name"])
def test_bad_input_fails_clearly_and_changes_nothing(ansible_module, etc, pki, prepare, extra, message):
    p = paths(etc)
    _issued(ansible_module, etc, pki)
    if prepare:
        prepare(p)
    before = snapshot(etc)
    run = ansible_module("csr", args(etc, **extra))
    assert run.get("failed") is True
    assert message.format(**p) in run["msg"]
    assert snapshot(etc) == before
    assert "PRIVATE KEY-----\nM" not in run.output
    assert "not-for-hosts" not in run.output


def test_ten_concurrent_runs_for_a_new_rsa4096_identity_hand_out_the_key_that_stays(ansible_module, etc):
    """A timer and a manual run overlapping, ten times over: every CSR handed out must belong to
    the key that is live afterwards (the runs queue on private/.web.lock and reuse key and CSR)."""
    results = [None] * 10

    def one(slot):
        results[slot] = ansible_module("csr", args(etc, key_type="rsa4096"))

    threads = [threading.Thread(target=one, args=(slot,)) for slot in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(600)
    p = paths(etc)
    live = public_key_of_key_file(p["key"])
    for run in results:
        assert run is not None and not run.get("failed"), run and run.get("msg")
        assert run["reason"] == "missing" and run["key_path"] == p["key"]
        assert public_key_of(run["csr"]) == live
    assert sum(1 for run in results if run["key_created"]) == 1
    assert len(set(run["csr"] for run in results)) == 1
    assert sorted(os.listdir(os.path.join(etc, "private"))) == ["web.key"]
    assert sorted(os.listdir(os.path.join(etc, "certs"))) == ["web.csr"]


def test_chain_left_behind_by_a_killed_install_is_reported_and_repaired(ansible_module, etc, pki):
    """The state the issue found: new leaf beside the old chain.pem. csr must not say valid."""
    _issued(ansible_module, etc, pki)
    old_chain = read(os.path.join(etc, "certs", "web.chain.pem"))
    key = serialization.load_pem_private_key(read(paths(etc)["key"]), None)
    new_cert, dummy = pki.sign_key(key, CN, SANS)
    install_cert(etc, new_cert)
    with open(os.path.join(etc, "certs", "web.chain.pem"), "wb") as handle:
        handle.write(old_chain)
    run = ansible_module("csr", args(etc, trust_bundle=pki.trust_bundle_path))
    assert (run["needs_issue"], run["reason"]) == (True, "files_inconsistent")
    assert "chain file starts with another certificate" in run["detail"]
    signed, chain = pki.sign(run["csr"])
    installed = ansible_module("install_identity", {"name": "web", "dir": etc, "certificate": signed, "chain": chain,
                                                    "trust_bundle": pki.trust_bundle_path})
    assert not installed.get("failed"), installed.get("msg")
    again = ansible_module("csr", args(etc, trust_bundle=pki.trust_bundle_path))
    assert (again["needs_issue"], again["reason"]) == (False, "valid")
