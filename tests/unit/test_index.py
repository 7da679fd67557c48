# -*- coding: utf-8 -*-
from __future__ import annotations

import json
import multiprocessing
import os
import time

import pytest

from ansible_collections.fleet.mtls.plugins.module_utils import ca_store, issuance
from ansible_collections.fleet.mtls.plugins.module_utils.compat import utcnow
from ansible_collections.fleet.mtls.plugins.module_utils.errors import MtlsError
from ansible_collections.fleet.mtls.plugins.module_utils.index import IssuanceIndex, canonical_reason, new_entry

from issuance_helpers import ISSUING_PASS, make_csr, make_pki

WORKERS = 50
CSRS_PER_WORKER = 4


@pytest.fixture
def index(tmp_path):
    path = tmp_path / "index.json"
    path.write_text('{"format": 1, "entries": [\n]}\n')
    return IssuanceIndex(str(path), str(tmp_path / "index.lock"))


def entry(serial, identity="web", host="h1"):
    now = utcnow()
    return new_entry(serial, identity, host, "CN=%s" % identity, ["DNS:%s.example.com" % identity], "server", now, now)


def test_record_and_find(index):
    index.record([entry(0x10), entry(0x11, "api"), entry(0x12, "web", "h2")])
    assert index.find_by_serial(0x11)["identity"] == "api"
    assert index.find_by_serial("0x11")["identity"] == "api"
    assert index.find_by_serial("00:11")["identity"] == "api"
    assert index.find_by_serial(0x99) is None
    assert [e["serial"] for e in index.find_by_identity("web")] == ["10", "12"]
    assert [e["serial"] for e in index.find_by_identity("web", host="h2")] == ["12"]
    assert [e["serial"] for e in index.find_by_host("h1")] == ["10", "11"]
    document = json.load(open(index.index_path))
    assert document["format"] == 1
    assert set(document["entries"][0]) == {"serial", "identity", "host", "subject", "sans", "profile", "not_before",
                                           "not_after", "issued_at", "status", "revoked_at", "reason"}


def test_duplicate_serial_without_redraw_fails_and_writes_nothing(index):
    index.record([entry(0x10)])
    before = open(index.index_path, "rb").read()
    with pytest.raises(MtlsError, match="serial 10 is already in the issuance index"):
        index.record([entry(0x20), entry(0x10)])
    assert open(index.index_path, "rb").read() == before
    with pytest.raises(MtlsError, match="serial 30 is already"):
        index.record([entry(0x30), entry(0x30, "api")])


def test_collision_is_redrawn(index):
    index.record([entry(0x10)])
    redrawn = index.record([entry(0x10, "api")], redraw=lambda e: dict(e, serial="77"))
    assert redrawn[0]["serial"] == "77"
    assert sorted(e["serial"] for e in index.entries()) == ["10", "77"]


def test_revoke_by_serial_and_rerevoke(index):
    index.record([entry(0x10), entry(0x11, "api")])
    changed = index.revoke(serial="10", reason="key_compromise")
    assert [e["serial"] for e in changed] == ["10"]
    revoked = index.revoked_entries()
    assert len(revoked) == 1 and revoked[0]["reason"] == "keyCompromise" and revoked[0]["revoked_at"]
    # same reason again: no change, nothing rewritten
    before = open(index.index_path, "rb").read()
    assert index.revoke(serial=0x10, reason="keyCompromise") == []
    assert open(index.index_path, "rb").read() == before
    with pytest.raises(MtlsError, match="already revoked .*keyCompromise"):
        index.revoke(serial=0x10, reason="superseded")


def test_revoke_by_identity(index):
    index.record([entry(0x10), entry(0x11, "web", "h2"), entry(0x12, "api")])
    changed = index.revoke(identity="web", host="h2", reason="superseded")
    assert [e["serial"] for e in changed] == ["11"]
    changed = index.revoke(identity="web")
    assert [e["serial"] for e in changed] == ["10"]
    assert index.revoke(identity="web") == []
    assert index.find_by_serial(0x12)["status"] == "valid"


def test_revoke_dry_run_writes_nothing(index):
    index.record([entry(0x10)])
    before = open(index.index_path, "rb").read()
    assert len(index.revoke(serial=0x10, dry_run=True)) == 1
    assert open(index.index_path, "rb").read() == before


@pytest.mark.parametrize("kwargs, message", [
    (dict(serial="zz"), "invalid serial 'zz'"),
    (dict(serial=0x99), "no certificate with serial 99"),
    (dict(identity="nobody"), "no certificate with identity nobody"),
    (dict(), "needs a serial or an identity"),
    (dict(serial=0x10, reason="because"), "unknown revocation reason 'because'"),
])
def test_revoke_errors(index, kwargs, message):
    index.record([entry(0x10)])
    with pytest.raises(MtlsError, match=message):
        index.revoke(**kwargs)


def test_reason_names():
    assert canonical_reason(None) == "unspecified"
    assert canonical_reason("cessation_of_operation") == "cessationOfOperation"
    assert canonical_reason("CA compromise") == "cACompromise"


@pytest.mark.parametrize("content, message", [
    ("{oops", "is corrupt"),
    ('{"format": 1}', "no 'entries' list"),
    ('{"format": 2, "entries": []}', "has format 2"),
])
def test_corrupt_index(index, content, message):
    open(index.index_path, "w").write(content)
    with pytest.raises(MtlsError, match=message):
        index.entries()
    with pytest.raises(MtlsError, match=message):
        index.record([entry(1)])
    assert open(index.index_path).read() == content


def _sign_worker(issuing, csrs, start_barrier, queue):
    try:
        start_barrier.wait(60)
        store = ca_store.CAStore(issuing)
        signer = store.load(ISSUING_PASS)
        issued = issuance.sign_batch(signer, store, [
            {"identity": "id%d" % n, "host": "host-%d" % os.getpid(), "csr": csr, "profile": "client"}
            for n, csr in enumerate(csrs)])
        queue.put([leaf.as_dict()["serial"] for leaf in issued])
    except Exception as exc:  # reported to the parent, which fails the test
        queue.put("error: %r" % (exc,))


def test_fifty_concurrent_signers_lose_nothing(tmp_path):
    dummy, issuing = make_pki(tmp_path)
    csrs = [make_csr("client%d" % n) for n in range(CSRS_PER_WORKER)]
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(WORKERS)
    queue = context.Queue()
    workers = [context.Process(target=_sign_worker, args=(issuing, csrs, barrier, queue)) for dummy in range(WORKERS)]
    started = time.monotonic()
    for worker in workers:
        worker.start()
    results = [queue.get(timeout=240) for dummy in workers]
    for worker in workers:
        worker.join(timeout=60)
    assert all(not isinstance(r, str) for r in results), [r for r in results if isinstance(r, str)]
    returned = [serial for batch in results for serial in batch]
    entries = ca_store.CAStore(issuing).index().entries()
    assert len(returned) == WORKERS * CSRS_PER_WORKER
    assert len(entries) == WORKERS * CSRS_PER_WORKER
    assert len(set(e["serial"] for e in entries)) == len(entries)
    assert sorted(e["serial"] for e in entries) == sorted(returned)
    assert len(set((e["host"], e["identity"]) for e in entries)) == len(entries)
    assert time.monotonic() - started < 240
