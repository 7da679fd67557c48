# -*- coding: utf-8 -*-
"""Batch signing split over worker processes, and the index appended in place.

The parallel path must give the same results as the serial one: every leaf signed by the CA,
results in request order, one index update, the first bad request named, nothing written on
failure, central keys born 0600, and no worker process left behind.
"""
from __future__ import annotations

import json
import os
import shutil
import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from ansible_collections.fleet.mtls.plugins.module_utils import ca_store, issuance
from ansible_collections.fleet.mtls.plugins.module_utils.errors import MtlsError
from ansible_collections.fleet.mtls.plugins.module_utils.index import IssuanceIndex
from ansible_collections.fleet.mtls.plugins.module_utils.keys import load_private_key, same_public_key

from issuance_helpers import ISSUING_PASS, make_csr, make_pki, tree_digest


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def csrs():
    return [make_csr("host%02d.example.com" % n, sans=["host%02d.example.com" % n]) for n in range(12)]


@pytest.fixture
def issuing(pki, tmp_path):
    path = str(tmp_path / "issuing")
    shutil.copytree(pki[1], path)
    store = ca_store.CAStore(path)
    return store, store.load(ISSUING_PASS)


def _requests(csrs):
    return [{"identity": "web", "host": "host%02d" % n, "csr": csr} for n, csr in enumerate(csrs)]


def _children():
    """Pids of this process's children (workers must all be reaped when a batch returns)."""
    path = "/proc/self/task/%d/children" % os.getpid()
    with open(path) as handle:
        return handle.read().split()


def test_parallel_batch_matches_serial_contract(issuing, csrs):
    store, signer = issuing
    issued = issuance.sign_batch(signer, store, _requests(csrs), workers=3)
    results = [leaf.as_dict() for leaf in issued]
    assert [r["host"] for r in results] == ["host%02d" % n for n in range(len(csrs))]
    issuer_key = signer.certificate.public_key()
    for result, csr_pem in zip(results, csrs):
        cert = x509.load_pem_x509_certificate(result["certificate"].encode())
        csr = x509.load_pem_x509_csr(csr_pem.encode())
        issuer_key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
        assert same_public_key(cert.public_key(), csr.public_key())
        assert result["serial"] == "%x" % cert.serial_number
        assert result["sans"] == ["DNS:%s" % result["subject"][3:]]
    entries = store.index().entries()
    assert [e["serial"] for e in entries] == [r["serial"] for r in results]
    assert len(set(r["serial"] for r in results)) == len(csrs)
    assert _children() == []


def test_first_bad_request_is_named_and_nothing_is_written(issuing, csrs):
    store, signer = issuing
    requests = _requests(csrs)
    # Request 6 is in the second share, request 10 in the third: the error names request 6.
    requests[5]["profile"] = "bogus"
    requests[9]["csr"] = csrs[9].replace("MII", "MIJ", 1)
    before = tree_digest(store.path)
    with pytest.raises(MtlsError) as error:
        issuance.sign_batch(signer, store, requests, workers=3)
    assert error.value.message.startswith("request 6 (identity web on host host05)")
    assert error.value.details["request"] == 6
    assert tree_digest(store.path) == before
    assert _children() == []


def test_duplicates_across_shares_are_refused(issuing, csrs):
    store, signer = issuing
    requests = _requests(csrs)
    requests[11]["host"] = "host00"
    before = tree_digest(store.path)
    with pytest.raises(MtlsError, match="request 12 .* duplicates request 1"):
        issuance.sign_batch(signer, store, requests, workers=2)
    assert tree_digest(store.path) == before


def test_central_keys_from_workers_are_private_and_match(issuing, tmp_path):
    store, signer = issuing
    key_dir = tmp_path / "keys"
    requests = [{"identity": "dev%02d" % n, "host": "site%d" % (n % 3), "profile": "client"} for n in range(10)]
    issued = issuance.sign_batch(signer, store, requests, generate_keys=True, key_dir=str(key_dir), workers=2)
    for leaf in issued:
        result = leaf.as_dict()
        assert stat.S_IMODE(os.stat(result["key_path"]).st_mode) == 0o600
        with open(result["key_path"], "rb") as handle:
            key = load_private_key(handle.read(), None)
        cert = x509.load_pem_x509_certificate(result["certificate"].encode())
        assert same_public_key(key, cert.public_key())
    assert len(store.index().entries()) == 10


def test_serial_collision_in_a_worker_share_is_redrawn(issuing, csrs, monkeypatch):
    store, signer = issuing
    first = issuance.sign_batch(signer, store, _requests(csrs[:1]), workers=1)[0].as_dict()
    taken = int(first["serial"], 16)
    serials = iter([taken] + [taken + n for n in range(1, 100)])
    # The worker forks with a copy of this generator, so both shares draw the same serials: the
    # first of each collides with the index, the second ones with each other.
    monkeypatch.setattr(issuance, "random_serial", lambda: next(serials))
    requests = [dict(r, identity="api") for r in _requests(csrs[:4])]
    issued = [leaf.as_dict() for leaf in issuance.sign_batch(signer, store, requests, workers=2)]
    assert first["serial"] not in [r["serial"] for r in issued]
    for result, csr_pem in zip(issued, csrs[:4]):
        cert = x509.load_pem_x509_certificate(result["certificate"].encode())
        assert result["serial"] == "%x" % cert.serial_number
        # A redrawn leaf is the same request signed again, not another request's.
        assert same_public_key(cert.public_key(), x509.load_pem_x509_csr(csr_pem.encode()).public_key())
    serials_in_index = [e["serial"] for e in store.index().entries()]
    assert serials_in_index == [first["serial"]] + [r["serial"] for r in issued]
    assert len(set(serials_in_index)) == 5


def test_small_batches_stay_in_process_and_workers_is_checked(issuing, csrs):
    assert issuance._worker_count(issuance.PARALLEL_MIN_REQUESTS - 1, None) == 1
    assert issuance._worker_count(3, 8) == 3
    store, signer = issuing
    with pytest.raises(MtlsError, match="workers must be a positive number"):
        issuance.sign_batch(signer, store, _requests(csrs[:2]), workers=0)


def _entry(serial):
    return {"serial": serial, "identity": "web", "host": None, "subject": "CN=web", "sans": [],
            "profile": "server", "not_before": "2026-01-01T00:00:00Z", "not_after": "2026-04-01T00:00:00Z",
            "issued_at": "2026-01-01T00:00:00Z", "status": "valid", "revoked_at": None, "reason": None}


def test_index_append_keeps_old_lines_and_equals_a_full_write(tmp_path):
    index = IssuanceIndex(str(tmp_path / "index.json"), str(tmp_path / "index.lock"))
    index.record([_entry("01"), _entry("02")])
    before = (tmp_path / "index.json").read_bytes()
    index.record([_entry("03")])
    after = (tmp_path / "index.json").read_bytes()
    assert after.startswith(before[:-len(b"\n]}\n")])
    full = IssuanceIndex(str(tmp_path / "full.json"), str(tmp_path / "full.lock"))
    full._write([_entry("01"), _entry("02"), _entry("03")])
    assert after == (tmp_path / "full.json").read_bytes()


@pytest.mark.parametrize("content", [
    {"format": 1, "entries": []},
    {"format": 1, "entries": [_entry("01")], "note": "hand edited"},
])
def test_index_in_another_form_is_rewritten_in_full(tmp_path, content):
    path = tmp_path / "index.json"
    path.write_text(json.dumps(content, indent=2))
    index = IssuanceIndex(str(path), str(tmp_path / "index.lock"))
    index.record([_entry("0a")])
    document = json.loads(path.read_text())
    assert [e["serial"] for e in document["entries"]] == [e["serial"] for e in content["entries"]] + ["0a"]
    assert set(document) == {"format", "entries"}
