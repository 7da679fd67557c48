# -*- coding: utf-8 -*-
from __future__ import annotations

import multiprocessing
import os
import stat
import time

import pytest

from ansible_collections.fleet.mtls.plugins.module_utils import fsutil
from ansible_collections.fleet.mtls.plugins.module_utils.errors import MtlsError


def mode_of(path):
    return stat.S_IMODE(os.stat(str(path)).st_mode)


def test_atomic_write_mode_from_birth(tmp_path, monkeypatch):
    target = tmp_path / "secret.key"
    seen = []
    real_write = os.write

    def spy(fd, data):
        seen.append(stat.S_IMODE(os.fstat(fd).st_mode))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", spy)
    fsutil.atomic_write(str(target), b"KEY", 0o600)
    monkeypatch.undo()
    assert seen and set(seen) == {0o600}
    assert target.read_bytes() == b"KEY" and mode_of(target) == 0o600
    fsutil.atomic_write(str(target), "text", 0o640)
    assert target.read_text() == "text" and mode_of(target) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["secret.key"]


def test_atomic_write_missing_directory(tmp_path):
    with pytest.raises(MtlsError, match="does not exist"):
        fsutil.atomic_write(str(tmp_path / "nope" / "f"), b"x")


@pytest.mark.parametrize("batch_sync", [False, True])
def test_staged_files_all_or_nothing(tmp_path, batch_sync):
    (tmp_path / "a").write_text("old-a")
    with pytest.raises(RuntimeError):
        with fsutil.StagedFiles(batch_sync=batch_sync) as staged:
            staged.stage(str(tmp_path / "a"), b"new-a")
            staged.stage(str(tmp_path / "b"), b"new-b")
            raise RuntimeError("boom before commit")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]
    assert (tmp_path / "a").read_text() == "old-a"
    with fsutil.StagedFiles(batch_sync=batch_sync) as staged:
        for n in range(40):
            staged.stage(str(tmp_path / ("f%d" % n)), b"%d" % n, 0o600)
        staged.commit()
    assert (tmp_path / "f39").read_bytes() == b"39" and mode_of(tmp_path / "f7") == 0o600
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_read_file(tmp_path):
    assert fsutil.read_file(str(tmp_path / "missing")) is None
    (tmp_path / "x").write_bytes(b"data")
    assert fsutil.read_file(str(tmp_path / "x")) == b"data"
    with pytest.raises(MtlsError, match="cannot read trust bundle"):
        fsutil.read_file(str(tmp_path), "trust bundle")


def test_ensure_dir(tmp_path):
    target = tmp_path / "a" / "b"
    assert fsutil.ensure_dir(str(target), 0o700) is True
    assert mode_of(target) == 0o700
    assert fsutil.ensure_dir(str(target), 0o700) is False
    (tmp_path / "file").write_text("x")
    with pytest.raises(MtlsError, match="exists and is not a directory"):
        fsutil.ensure_dir(str(tmp_path / "file"))


@pytest.mark.parametrize("value, expected", [(None, 0o644), ("", 0o644), ("0600", 0o600), ("640", 0o640),
                                             (0o700, 0o700)])
def test_parse_mode(value, expected):
    assert fsutil.parse_mode(value, 0o644) == expected


def test_parse_mode_rejects_garbage():
    with pytest.raises(MtlsError, match="invalid file mode 'rw-r--r--'"):
        fsutil.parse_mode("rw-r--r--", 0o644)


def test_owner_and_group_resolution():
    assert fsutil.resolve_uid(None) == -1 and fsutil.resolve_uid("root") == 0 and fsutil.resolve_uid("0") == 0
    assert fsutil.resolve_gid("root") == 0
    with pytest.raises(MtlsError, match="unknown owner 'no-such-user-x'"):
        fsutil.resolve_uid("no-such-user-x")
    with pytest.raises(MtlsError, match="unknown group 'no-such-group-x'"):
        fsutil.resolve_gid("no-such-group-x")


def test_file_attributes_differ(tmp_path):
    path = tmp_path / "f"
    assert fsutil.file_attributes_differ(str(path), 0o600) is False
    fsutil.atomic_write(str(path), b"x", 0o644)
    assert fsutil.file_attributes_differ(str(path), 0o600) is True
    fsutil.set_file_attributes(str(path), 0o600, "root", "root")
    assert fsutil.file_attributes_differ(str(path), 0o600, "root", "root") is False


def _hold_lock(lock_path, marker, hold_seconds, lock="file_lock"):
    with getattr(fsutil, lock)(lock_path):
        with open(marker, "a") as handle:
            handle.write("in %f\n" % time.time())
        time.sleep(hold_seconds)
        with open(marker, "a") as handle:
            handle.write("out %f\n" % time.time())


def test_file_lock_excludes_other_processes(tmp_path):
    lock = str(tmp_path / "lock")
    marker = str(tmp_path / "marker")
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_hold_lock, args=(lock, marker, 0.2)) for dummy in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    events = [line.split()[0] for line in open(marker).read().splitlines()]
    assert events == ["in", "out"] * 3
    assert mode_of(lock) == 0o600


def test_read_without_following_links(tmp_path):
    target = tmp_path / "target"
    target.write_bytes(b"secret")
    link = tmp_path / "link"
    link.symlink_to(target)
    assert fsutil.read_file(str(link)) == b"secret"  # public inputs may be links
    with pytest.raises(MtlsError, match="private key %s is a symbolic link" % link):
        fsutil.read_file(str(link), "private key", follow_symlinks=False)
    assert fsutil.read_file(str(target), follow_symlinks=False) == b"secret"
    assert fsutil.read_file(str(tmp_path / "missing"), follow_symlinks=False) is None
    os.mkfifo(str(tmp_path / "fifo"))
    with pytest.raises(MtlsError, match="is not a regular file"):
        fsutil.read_file(str(tmp_path / "fifo"), follow_symlinks=False)


def test_attributes_are_never_set_through_a_link(tmp_path):
    target = tmp_path / "target"
    target.write_bytes(b"x")
    os.chmod(str(target), 0o644)
    link = tmp_path / "link"
    link.symlink_to(target)
    with pytest.raises(MtlsError, match="is a symbolic link"):
        fsutil.set_file_attributes(str(link), 0o600, "root", "root")
    with pytest.raises(MtlsError, match="is a symbolic link"):
        fsutil.file_attributes_differ(str(link), 0o600)
    assert mode_of(target) == 0o644


def test_real_directory_and_ensure_dir_without_links(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert fsutil.real_directory(str(tmp_path / "real")) is True
    assert fsutil.real_directory(str(tmp_path / "missing")) is False
    with pytest.raises(MtlsError, match="is a symbolic link"):
        fsutil.real_directory(str(tmp_path / "link"))
    with pytest.raises(MtlsError, match="is a symbolic link"):
        fsutil.ensure_dir(str(tmp_path / "link"), 0o711, follow_symlinks=False)
    assert fsutil.ensure_dir(str(tmp_path / "link"), 0o711) is False  # followed when allowed
    created = []
    assert fsutil.ensure_dir(str(tmp_path / "a" / "b" / "c"), 0o700, created=created) is True
    assert created == [str(tmp_path / "a"), str(tmp_path / "a" / "b"), str(tmp_path / "a" / "b" / "c")]
    fsutil.remove_created_dirs(created)
    assert not (tmp_path / "a").exists()


def test_failed_rename_discards_the_rest_and_says_what_was_replaced(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(MtlsError, match="cannot rename .*/d into place: .*already replaced: .*/a"):
        with fsutil.StagedFiles() as staged:
            staged.stage(str(tmp_path / "a"), b"a")
            staged.stage(str(tmp_path / "d" / "x"), b"x")
            os.rename(str(tmp_path / "d"), str(tmp_path / "d2"))  # the temp of d/x vanishes with d
            os.mkdir(str(tmp_path / "d"))
            staged._staged[1] = (staged._staged[1][0], str(tmp_path / "d"))
            staged.commit()
    assert (tmp_path / "a").read_bytes() == b"a"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_transient_lock_excludes_and_leaves_no_file(tmp_path):
    lock = str(tmp_path / ".web.lock")
    marker = str(tmp_path / "marker")
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_hold_lock, args=(lock, marker, 0.1, "transient_lock")) for dummy in range(6)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert [worker.exitcode for worker in workers] == [0] * 6
    assert [line.split()[0] for line in open(marker).read().splitlines()] == ["in", "out"] * 6
    assert not os.path.lexists(lock)


def test_transient_lock_times_out_and_refuses_links(tmp_path):
    lock = str(tmp_path / "l")
    with fsutil.transient_lock(lock):
        with pytest.raises(MtlsError, match="another run still holds"):
            with fsutil.transient_lock(lock, "identity web", timeout=0.2):
                pass
    os.symlink(str(tmp_path / "elsewhere"), lock)
    with pytest.raises(MtlsError, match="lock file .* is a symbolic link"):
        with fsutil.transient_lock(lock):
            pass
    assert not (tmp_path / "elsewhere").exists()


def test_remove_stale_temporaries_only_ours_and_only_older(tmp_path):
    old = time.time() - 10
    for name in (".web.key.abcd1234", ".web.key.new.abcd1234", ".web.keyXabcd1234", ".web.key.abcd12345"):
        (tmp_path / name).write_bytes(b"x")
        os.utime(str(tmp_path / name), (old, old))
    (tmp_path / ".web.key.young123").write_bytes(b"x")
    (tmp_path / ".web.key.linkabcd").symlink_to(tmp_path / ".web.key.abcd12345")
    removed = fsutil.remove_stale_temporaries(str(tmp_path), ["web.key"], time.time() - 5)
    assert removed == [str(tmp_path / ".web.key.abcd1234")]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".web.key.abcd12345", ".web.key.linkabcd", ".web.key.new.abcd1234", ".web.key.young123", ".web.keyXabcd1234"]
    assert fsutil.remove_stale_temporaries(str(tmp_path / "missing"), ["web.key"], time.time()) == []
