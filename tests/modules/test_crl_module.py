# -*- coding: utf-8 -*-
"""fleet.mtls.crl through ansible: revocation, CRL publication, openssl's verdict, check mode,
idempotence, and bad requests that must leave the store byte-identical."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from host_pki import REPO, snapshot

PASSPHRASE = "store passphrase 7f3a"

# The store is made once with the collection's own library (in a child interpreter that sees the
# working tree as fleet.mtls), then copied for each test.
MAKE_STORE = r"""
import json, sys
from ansible_collections.fleet.mtls.plugins.module_utils.ca_store import CAStore, create_intermediate, create_root
from ansible_collections.fleet.mtls.plugins.module_utils.issuance import sign_batch
root, issuing, keys, passphrase = sys.argv[1:5]
create_root(root, passphrase, common_name="Module Test Root")
create_intermediate(issuing, passphrase, root, passphrase, common_name="Module Test Issuing")
store = CAStore(issuing)
requests = [{"identity": "web", "host": "h1", "common_name": "web1.example.net", "profile": "server"},
            {"identity": "web", "host": "h2", "common_name": "web2.example.net", "profile": "server"},
            {"identity": "sensor", "host": "h3", "common_name": "sensor", "profile": "client"}]
leaves = sign_batch(store.load(passphrase), store, requests, generate_keys=True, key_dir=keys)
print(json.dumps([leaf.as_dict() for leaf in leaves]))
"""


@pytest.fixture(scope="module")
def made_store(tmp_path_factory):
    base = tmp_path_factory.mktemp("crl-store")
    tree = base / "collections" / "ansible_collections" / "fleet"
    tree.mkdir(parents=True)
    (tree / "mtls").symlink_to(REPO)
    env = dict(os.environ, PYTHONPATH=str(base / "collections"))
    proc = subprocess.run([sys.executable, "-c", MAKE_STORE, str(base / "root"), str(base / "issuing"),
                           str(base / "keys"), PASSPHRASE], capture_output=True, text=True, env=env, check=True)
    return base, json.loads(proc.stdout)


@pytest.fixture
def pki(made_store, tmp_path):
    base, leaves = made_store
    for name in ("root", "issuing"):
        shutil.copytree(str(base / name), str(tmp_path / name), symlinks=True)
    leaf_files = {}
    for leaf in leaves:
        path = tmp_path / ("%s-%s.crt" % (leaf["identity"], leaf["host"]))
        path.write_text(leaf["certificate"])
        leaf_files[leaf["host"]] = str(path)
    return {"store": str(tmp_path / "issuing"), "root": str(tmp_path / "root"), "leaves": leaves,
            "files": leaf_files, "tmp": tmp_path}


def crl_args(pki, **extra):
    values = {"ca_path": pki["store"], "ca_passphrase": PASSPHRASE}
    values.update(extra)
    return values


def assert_no_secret(run):
    assert PASSPHRASE not in run.output
    assert "PRIVATE KEY" not in run.output


def openssl_verify(pki, host, crl_pem):
    crl_path = pki["tmp"] / "published-crl.pem"
    crl_path.write_text(crl_pem)
    proc = subprocess.run(["openssl", "verify", "-crl_check", "-CAfile", os.path.join(pki["root"], "ca.crt"),
                           "-untrusted", os.path.join(pki["store"], "ca.crt"), "-CRLfile", str(crl_path),
                           pki["files"][host]], capture_output=True, text=True, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def test_revoke_publish_and_openssl_rejects_the_revoked_leaf(ansible_module, pki):
    serial = pki["leaves"][0]["serial"]
    run = ansible_module("crl", crl_args(pki, revoke=[{"serial": serial, "reason": "keyCompromise"}]))
    assert not run.get("failed"), run.get("msg")
    assert run["changed"] is True and run["refreshed"] is True
    assert run["revoked"] == [serial] and run["crl_number"] == 1
    assert [(item["serial"], item["identity"], item["reason"]) for item in run["revoked_now"]] == [
        (serial, "web", "keyCompromise")]
    with open(os.path.join(pki["store"], "crl.pem")) as handle:
        assert handle.read() == run["crl"]
    verify = subprocess.run(["openssl", "crl", "-noout", "-verify", "-CAfile", os.path.join(pki["store"], "ca.crt"),
                             "-in", os.path.join(pki["store"], "crl.pem")], capture_output=True, text=True, check=False)
    assert "verify OK" in verify.stdout + verify.stderr
    code, output = openssl_verify(pki, "h1", run["crl"])
    assert code != 0 and "certificate revoked" in output
    code, output = openssl_verify(pki, "h2", run["crl"])
    assert code == 0, output
    assert_no_secret(run)

    before = snapshot(pki["store"])
    again = ansible_module("crl", crl_args(pki, revoke=[{"serial": serial, "reason": "keyCompromise"}]))
    assert again["changed"] is False and again["revoked_now"] == [] and again["crl_number"] == 1
    assert snapshot(pki["store"]) == before


def test_check_mode_and_diff_write_nothing(ansible_module, pki):
    before = snapshot(pki["store"])
    run = ansible_module("crl", crl_args(pki, revoke=[{"identity": "web", "host": "h2", "reason": "superseded"}]),
                         check=True, diff=True)
    assert not run.get("failed"), run.get("msg")
    assert run["changed"] is True and run["crl"] is None and run["crl_number"] == 1
    assert run["revoked"] == [pki["leaves"][1]["serial"]]
    assert pki["leaves"][1]["serial"] in run["diff"]["after"] and run["diff"]["before"] == "no CRL\n"
    assert snapshot(pki["store"]) == before
    assert_no_secret(run)


def test_identity_revocation_then_scheduled_refresh_is_unchanged(ansible_module, pki):
    run = ansible_module("crl", crl_args(pki, revoke=[{"identity": "web", "reason": "cessationOfOperation"}]))
    assert sorted(run["revoked"]) == sorted([pki["leaves"][0]["serial"], pki["leaves"][1]["serial"]])
    before = snapshot(pki["store"])
    scheduled = ansible_module("crl", crl_args(pki))
    assert scheduled["changed"] is False and scheduled["refresh_reason"] == "current"
    assert scheduled["crl"] == run["crl"]
    assert snapshot(pki["store"]) == before
    forced = ansible_module("crl", crl_args(pki, force=True))
    assert forced["changed"] is True and forced["crl_number"] == 2


@pytest.mark.parametrize("revoke, extra, message", [
    ([{"serial": "{h3}", "reason": "keyCompromise"}], {}, "serial {h3} is already revoked (reason superseded"),
    ([{"serial": "deadbeef01"}], {}, "no certificate with serial deadbeef01"),
    ([{"identity": "ghost"}], {}, "no certificate with identity ghost"),
    ([{"serial": "{h1}", "reason": "stolen"}], {}, "reason"),
    ([{"serial": "{h1}", "identity": "web"}], {}, "mutually exclusive"),
    ([{"serial": "{h1}"}], {"ca_passphrase": "not-the-right-one"}, "wrong passphrase for CA key"),
    ([], {"refresh_days": 7}, "refresh_days (7) must be lower than next_update_days (7)"),
    ([], {"ca_path": "/nonexistent/store"}, "CA store /nonexistent/store does not exist"),
], ids=["re-revoke-other-reason", "unknown-serial", "unknown-identity", "unknown-reason", "serial-and-identity",
        "wrong-passphrase", "bad-schedule", "missing-store"])
def test_bad_requests_fail_clearly_and_leave_the_store_alone(ansible_module, pki, revoke, extra, message):
    serials = dict((leaf["host"], leaf["serial"]) for leaf in pki["leaves"])
    if "{h3}" in str(revoke):
        # Something to re-revoke: h3 is on record as superseded.
        first = ansible_module("crl", crl_args(pki, revoke=[{"serial": serials["h3"], "reason": "superseded"}]))
        assert first["changed"] is True
    before = snapshot(pki["store"])
    requests = [dict((key, value.format(**serials)) for key, value in item.items()) for item in revoke]
    run = ansible_module("crl", crl_args(pki, revoke=requests, **extra))
    assert run.get("failed") is True
    assert message.format(**serials) in run["msg"]
    assert snapshot(pki["store"]) == before
    assert_no_secret(run)


def test_find_searches_the_trusted_generations_and_names_a_miss(ansible_module, pki):
    ca_dir = pki["tmp"] / "ca"
    ca_dir.mkdir()
    os.rename(pki["root"], str(ca_dir / "root-1"))
    os.rename(pki["store"], str(ca_dir / "issuing-1"))
    before = snapshot(str(ca_dir))
    web = [leaf["serial"] for leaf in pki["leaves"] if leaf["identity"] == "web" and leaf["host"] == "h2"]
    found = ansible_module("crl", {"ca_dir": str(ca_dir), "find": {"identity": "web", "host": "h2",
                                                                   "reason": "keyCompromise"}})
    assert not found.get("failed") and not found["changed"], found.result
    assert found["matches"] == [{"store": "issuing-1", "ca_path": str(ca_dir / "issuing-1"), "serials": web,
                                 "revoke": [{"serial": web[0], "reason": "keyCompromise"}]}]
    missed = ansible_module("crl", {"ca_dir": str(ca_dir), "find": {"serial": "0xdeadbeef"}})
    assert missed.get("failed")
    assert "No certificate with serial 0xdeadbeef was issued by a trusted CA generation (issuing-1)" in missed["msg"]
    mixed = ansible_module("crl", {"ca_dir": str(ca_dir), "ca_path": str(ca_dir / "issuing-1"),
                                   "find": {"serial": web[0]}})
    assert mixed.get("failed") and "do not combine it with ca_path" in mixed["msg"]
    bare = ansible_module("crl", {"ca_path": str(ca_dir / "issuing-1")})
    assert bare.get("failed") and "missing required arguments: ca_passphrase" in bare["msg"]
    assert snapshot(str(ca_dir)) == before, "find writes nothing"
