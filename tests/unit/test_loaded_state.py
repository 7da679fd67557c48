# -*- coding: utf-8 -*-
from __future__ import annotations

import json
import os
import stat

from ansible_collections.fleet.mtls.plugins.module_utils import loaded_state


def make_files(tmp_path):
    files = {name: tmp_path / name for name in ("site.conf", "web.chain.pem", "web.key", "crl.pem")}
    for name, path in files.items():
        path.write_text("contents of %s\n" % name)
    return [str(path) for path in files.values()], files


# The module hashes the files once per call and hands the digests to both functions; so do these.
def pending_now(paths, state):
    return loaded_state.pending_paths(loaded_state.fingerprints(paths), state)


def record_now(paths, state, check_mode=False):
    return loaded_state.record_loaded(loaded_state.fingerprints(paths), state, check_mode=check_mode)


def test_without_a_record_everything_is_pending(tmp_path):
    paths = make_files(tmp_path)[0]
    found, pending = pending_now(paths, str(tmp_path / "state" / "nginx.json"))
    assert not found and pending == paths


def test_recorded_files_are_not_pending_until_one_changes(tmp_path):
    paths, files = make_files(tmp_path)
    state = str(tmp_path / "state" / "nginx.json")
    assert record_now(paths, state) is True
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o644
    assert pending_now(paths, state) == (True, [])
    assert record_now(paths, state) is False  # same contents: nothing to write

    files["crl.pem"].write_text("a newer CRL\n")
    assert pending_now(paths, state) == (True, [str(files["crl.pem"])])
    files["web.key"].unlink()
    assert pending_now(paths, state) == (True, [str(files["web.key"]), str(files["crl.pem"])])


def test_record_holds_digests_never_contents(tmp_path):
    paths, files = make_files(tmp_path)
    state = tmp_path / "nginx.json"
    record_now(paths, str(state))
    text = state.read_text()
    assert "contents of web.key" not in text
    record = json.loads(text)
    assert record["format"] == loaded_state.RECORD_FORMAT
    assert all(len(digest) == 64 for digest in record["files"].values())


def test_a_missing_file_is_recorded_as_missing_and_its_arrival_is_pending(tmp_path):
    paths, files = make_files(tmp_path)
    files["crl.pem"].unlink()
    state = str(tmp_path / "nginx.json")
    record_now(paths, state)
    assert pending_now(paths, state) == (True, [])
    files["crl.pem"].write_text("first CRL\n")
    assert pending_now(paths, state) == (True, [str(files["crl.pem"])])


def test_a_file_added_to_the_list_is_pending(tmp_path):
    paths = make_files(tmp_path)[0]
    state = str(tmp_path / "nginx.json")
    record_now(paths[:-1], state)
    assert pending_now(paths, state) == (True, [paths[-1]])


def test_a_damaged_record_means_a_reload_is_owed(tmp_path):
    paths = make_files(tmp_path)[0]
    state = tmp_path / "nginx.json"
    for damage in (b"{not json", b"\xff\xfe", b"[]", json.dumps({"format": 99, "files": {}}).encode()):
        state.write_bytes(damage)
        assert pending_now(paths, str(state)) == (False, paths)
    assert record_now(paths, str(state)) is True
    assert pending_now(paths, str(state)) == (True, [])


def test_check_mode_writes_nothing(tmp_path):
    paths = make_files(tmp_path)[0]
    state = tmp_path / "state" / "nginx.json"
    assert record_now(paths, str(state), check_mode=True) is True
    assert not (tmp_path / "state").exists()
