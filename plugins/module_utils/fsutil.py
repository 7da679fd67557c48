# -*- coding: utf-8 -*-
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filesystem primitives: every write is atomic and every file is born with its final mode.

A file is written to a temporary sibling created with O_EXCL and the final mode/owner/group set
before the first byte, fsynced, then renamed over the target. Several related files are written
with ``StagedFiles`` so a failure before ``commit()`` leaves every target untouched.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import concurrent.futures
import contextlib
import errno
import fcntl
import grp
import os
import pwd
import shutil
import stat
import tempfile

from ansible_collections.fleet.mtls.plugins.module_utils.errors import MtlsError


def resolve_uid(owner):
    if owner is None or owner == "":
        return -1
    if isinstance(owner, int) or str(owner).isdigit():
        return int(owner)
    try:
        return pwd.getpwnam(owner).pw_uid
    except KeyError:
        raise MtlsError("unknown owner %r: no such user on this host" % (owner,))


def resolve_gid(group):
    if group is None or group == "":
        return -1
    if isinstance(group, int) or str(group).isdigit():
        return int(group)
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise MtlsError("unknown group %r: no such group on this host" % (group,))


def parse_mode(mode, default):
    """Accept 0o600, '0600' or '600'; None means ``default``."""
    if mode is None or mode == "":
        return default
    if isinstance(mode, int):
        return mode
    try:
        return int(str(mode), 8)
    except ValueError:
        raise MtlsError("invalid file mode %r: expected octal like '0600'" % (mode,))


def read_file(path, what="file"):
    """Bytes of ``path``, or None when it does not exist. Other errors name the file."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except (IOError, OSError) as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise MtlsError("cannot read %s %s: %s" % (what, path, exc.strerror or exc))


def ensure_dir(path, mode=0o755, owner=None, group=None):
    """Create ``path`` (and parents) if missing; returns True when something was created."""
    if os.path.isdir(path):
        return False
    if os.path.exists(path):
        raise MtlsError("%s exists and is not a directory" % path)
    parent = os.path.dirname(os.path.abspath(path))
    if parent and not os.path.isdir(parent):
        ensure_dir(parent, 0o755)
    try:
        os.mkdir(path, mode)
        os.chmod(path, mode)  # umask-proof
        uid, gid = resolve_uid(owner), resolve_gid(group)
        if uid != -1 or gid != -1:
            os.chown(path, uid, gid)
    except OSError as exc:
        if exc.errno != errno.EEXIST:
            raise MtlsError("cannot create directory %s: %s" % (path, exc.strerror or exc))
    return True


def file_attributes_differ(path, mode, owner=None, group=None):
    """True when ``path`` exists but its mode/owner/group differ from what is asked."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    if stat.S_IMODE(st.st_mode) != mode:
        return True
    uid, gid = resolve_uid(owner), resolve_gid(group)
    return (uid != -1 and st.st_uid != uid) or (gid != -1 and st.st_gid != gid)


def set_file_attributes(path, mode, owner=None, group=None):
    uid, gid = resolve_uid(owner), resolve_gid(group)
    if uid != -1 or gid != -1:
        os.chown(path, uid, gid)
    os.chmod(path, mode)


def _write_temp(path, data, mode, uid, gid, sync=True):
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise MtlsError("directory %s does not exist (for %s)" % (directory, path))
    fd, temp_path = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), dir=directory)
    try:
        # mkstemp creates 0600; settle the final attributes before any byte lands.
        if uid != -1 or gid != -1:
            os.fchown(fd, uid, gid)
        os.fchmod(fd, mode)
        if isinstance(data, str):
            data = data.encode("utf-8")
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        if sync:
            os.fsync(fd)
    except Exception:
        os.close(fd)
        os.unlink(temp_path)
        raise
    os.close(fd)
    return temp_path


def _fsync_dir(directory):
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class StagedFiles:
    """Write several files all-or-nothing (as far as a POSIX filesystem allows).

    ``stage()`` writes temporaries next to their targets; ``commit()`` renames them all in order;
    ``discard()`` (or leaving the ``with`` block on an exception) removes the temporaries.
    With ``batch_sync`` the temporaries are fsynced together, concurrently, at ``commit()``: one
    journal commit serves many files, which turns a thousand sequential fsyncs into a few.
    """

    def __init__(self, batch_sync=False):
        self._staged = []
        self._batch_sync = batch_sync

    def stage(self, path, data, mode=0o644, owner=None, group=None):
        uid, gid = resolve_uid(owner), resolve_gid(group)
        try:
            temp_path = _write_temp(path, data, mode, uid, gid, sync=not self._batch_sync)
        except OSError as exc:
            raise MtlsError("cannot write %s: %s" % (path, exc.strerror or exc))
        self._staged.append((temp_path, path))
        return path

    def _sync_staged(self):
        def sync(temp_path):
            fd = os.open(temp_path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

        with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
            list(pool.map(sync, [temp_path for temp_path, dummy in self._staged]))

    def commit(self):
        if self._batch_sync and self._staged:
            try:
                self._sync_staged()
            except OSError as exc:
                raise MtlsError("cannot flush staged files to disk: %s" % (exc.strerror or exc))
        directories = set()
        for temp_path, path in self._staged:
            os.rename(temp_path, path)
            directories.add(os.path.dirname(os.path.abspath(path)))
        self._staged = []
        for directory in directories:
            _fsync_dir(directory)

    def discard(self):
        for temp_path, dummy in self._staged:
            try:
                os.unlink(temp_path)
            except OSError:
                pass
        self._staged = []

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.discard()
        return False


def atomic_write(path, data, mode=0o644, owner=None, group=None):
    """Replace ``path`` with ``data`` atomically; the file has its final attributes from birth."""
    with StagedFiles() as staged:
        staged.stage(path, data, mode, owner, group)
        staged.commit()


@contextlib.contextmanager
def file_lock(path):
    """Exclusive advisory lock on ``path`` (created 0600 if missing), held for the block."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise MtlsError("lock file %s is a symbolic link: refusing to follow it (remove the link)" % path)
        raise MtlsError("cannot open lock file %s: %s" % (path, exc.strerror or exc))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def read_regular_file(path, what="file"):
    """Like ``read_file``, but never through a symbolic link (O_NOFOLLOW) and only a regular file.

    A FIFO or device is refused without blocking on it (O_NONBLOCK until fstat says what it is).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return None
        if exc.errno == errno.ELOOP:
            raise MtlsError("%s %s is a symbolic link: refusing to follow it (replace it with the file itself)"
                            % (what, path))
        raise MtlsError("cannot read %s %s: %s" % (what, path, exc.strerror or exc))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise MtlsError("%s %s is not a regular file" % (what, path))
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
    except OSError as exc:
        raise MtlsError("cannot read %s %s: %s" % (what, path, exc.strerror or exc))
    finally:
        os.close(fd)


def remove_leftovers(directory, pattern):
    """Remove entries of ``directory`` whose whole name matches ``pattern`` (a compiled regex).

    For temporaries a killed run left behind: call it only under the lock that guards the writes
    that make such names, so no live temporary is removed. A symbolic link is removed itself, never
    followed; a directory is removed with ``shutil.rmtree``, which does not follow links inside.
    Returns the removed names, sorted.
    """
    try:
        names = os.listdir(directory)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return []
        raise MtlsError("cannot list %s to remove leftovers: %s" % (directory, exc.strerror or exc))
    removed = []
    for name in sorted(names):
        if not pattern.fullmatch(name):
            continue
        path = os.path.join(directory, name)
        try:
            if stat.S_ISDIR(os.lstat(path).st_mode):
                shutil.rmtree(path)
            else:
                os.unlink(path)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                continue
            raise MtlsError("cannot remove %s, left by an interrupted run: %s (remove it by hand)"
                            % (path, exc.strerror or exc))
        removed.append(name)
    return removed
