# -*- coding: utf-8 -*-
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filesystem primitives: every write is atomic and every file is born with its final mode.

A file is written to a temporary sibling created with O_EXCL and the final mode/owner/group set
before the first byte, fsynced, then renamed over the target. Several related files are written
with ``StagedFiles`` so a failure before ``commit()`` leaves every target untouched.

Symbolic links: a file read with ``follow_symlinks=False`` (keys, certificates, CSRs of the on-host
layout, every CA store file) is opened with O_NOFOLLOW and must be a regular file; attributes are
set through such a descriptor (``set_file_attributes``), so a link planted at a key path never
redirects a chmod or chown. A rename replaces a link itself, never its target. ``real_directory``
refuses a directory that is a link (the identity's ``private/`` and ``certs/``).
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
import re
import shutil
import stat
import tempfile
import time

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


def symlink_refused(path, what="file"):
    return MtlsError("%s %s is a symbolic link: refusing to follow it (fleet.mtls never follows links for "
                     "key, certificate, CSR, lock and CA store files; replace it with the regular file itself)"
                     % (what, path))


def _open_nofollow(path, flags, what):
    """Descriptor of the regular file ``path`` itself (ELOOP/FIFO/device -> MtlsError)."""
    fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise MtlsError("%s %s is not a regular file" % (what, path))
    except Exception:
        os.close(fd)
        raise
    return fd


def read_file(path, what="file", follow_symlinks=True):
    """Bytes of ``path``, or None when it does not exist. Other errors name the file.

    With ``follow_symlinks=False`` (every key, certificate, CSR and CA store file) the file is opened
    with O_NOFOLLOW: a link at ``path`` is refused, never followed, and only a regular file is read; a
    FIFO or device is refused without blocking on it (O_NONBLOCK until fstat says what it is).
    """
    try:
        if follow_symlinks:
            with open(path, "rb") as handle:
                return handle.read()
        fd = _open_nofollow(path, os.O_RDONLY, what)
        try:
            return read_all(fd)
        finally:
            os.close(fd)
    except (IOError, OSError) as exc:
        if exc.errno == errno.ENOENT:
            return None
        if exc.errno == errno.ELOOP and not follow_symlinks:
            raise symlink_refused(path, what)
        raise MtlsError("cannot read %s %s: %s" % (what, path, exc.strerror or exc))


def real_directory(path, what="directory"):
    """True when ``path`` is a directory that is not a symbolic link, False when it is missing."""
    try:
        st = os.lstat(path)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return False
        raise MtlsError("cannot inspect %s %s: %s" % (what, path, exc.strerror or exc))
    if stat.S_ISLNK(st.st_mode):
        raise MtlsError("%s %s is a symbolic link: fleet.mtls never follows links into key and certificate "
                        "directories; make it a real directory" % (what, path))
    if not stat.S_ISDIR(st.st_mode):
        raise MtlsError("%s exists and is not a directory" % path)
    return True


def ensure_dir(path, mode=0o755, owner=None, group=None, follow_symlinks=True, created=None):
    """Create ``path`` (and parents) if missing; returns True when something was created.

    With ``follow_symlinks=False`` an existing ``path`` that is a link is refused. Every directory
    made is appended to the list ``created`` (parents first), so a failed run can remove them.
    """
    if not follow_symlinks:
        if real_directory(path):
            return False
    elif os.path.isdir(path):
        return False
    if os.path.lexists(path):
        raise MtlsError("%s exists and is not a directory" % path)
    parent = os.path.dirname(os.path.abspath(path))
    if parent and not os.path.isdir(parent):
        ensure_dir(parent, 0o755, created=created)
    try:
        os.mkdir(path, mode)
    except OSError as exc:
        if exc.errno == errno.EEXIST:  # made by a concurrent run meanwhile
            ensure_dir(path, mode, owner, group, follow_symlinks)
            return False
        raise MtlsError("cannot create directory %s: %s" % (path, exc.strerror or exc))
    if created is not None:
        created.append(path)
    try:
        os.chmod(path, mode)  # umask-proof
        uid, gid = resolve_uid(owner), resolve_gid(group)
        if uid != -1 or gid != -1:
            os.chown(path, uid, gid)
    except OSError as exc:
        raise MtlsError("cannot set the mode/owner of directory %s: %s" % (path, exc.strerror or exc))
    return True


def remove_created_dirs(created):
    """Undo ``ensure_dir(created=...)``: remove those directories, newest first, if still empty."""
    for path in reversed(created or []):
        try:
            os.rmdir(path)
        except OSError:
            pass


def file_attributes_differ(path, mode, owner=None, group=None):
    """True when ``path`` exists but its mode/owner/group differ from what is asked (a link is refused)."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    if stat.S_ISLNK(st.st_mode):
        raise symlink_refused(path)
    if stat.S_IMODE(st.st_mode) != mode:
        return True
    uid, gid = resolve_uid(owner), resolve_gid(group)
    return (uid != -1 and st.st_uid != uid) or (gid != -1 and st.st_gid != gid)


def set_file_attributes(path, mode, owner=None, group=None):
    """chown/chmod the regular file ``path`` itself, through an O_NOFOLLOW descriptor."""
    uid, gid = resolve_uid(owner), resolve_gid(group)
    try:
        fd = _open_nofollow(path, os.O_RDONLY, "file")
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise symlink_refused(path)
        raise MtlsError("cannot open %s to set its mode/owner: %s" % (path, exc.strerror or exc))
    try:
        if uid != -1 or gid != -1:
            os.fchown(fd, uid, gid)
        os.fchmod(fd, mode)
    except OSError as exc:
        raise MtlsError("cannot set the mode/owner of %s: %s" % (path, exc.strerror or exc))
    finally:
        os.close(fd)


# What mkstemp/mkdtemp append to a temporary's prefix: 8 characters drawn from [a-z0-9_]. The host
# side matches exactly that (MKSTEMP_SUFFIX: /etc/mtls is shared with other software's dotfiles); the
# CA store side, a directory of its own, any 8 of [A-Za-z0-9_] (TEMP_SUFFIX).
MKSTEMP_SUFFIX = r"[a-z0-9_]{8}"
TEMP_SUFFIX = r"[A-Za-z0-9_]{8}"


def temp_prefix(path):
    """Temporaries of ``path`` are ``.<basename>.<8 random characters>`` beside it (mkstemp)."""
    return ".%s." % os.path.basename(path)


def temporaries_pattern(basenames, suffix=TEMP_SUFFIX):
    """Regex of the temporaries ``atomic_write``/``StagedFiles`` make for files named ``basenames``."""
    return re.compile("(?:%s)%s" % ("|".join(re.escape(temp_prefix(name)) for name in basenames), suffix))


def remove_stale_temporaries(directory, basenames, older_than):
    """Host side of ``remove_leftovers``: our own temporaries of ``basenames`` in the real directory
    ``directory`` (a link there is refused), only regular files last modified before ``older_than``
    (epoch seconds; pass the time a lock was taken, so a temporary of the lock holder's own run is
    never touched). Links and anything else are left alone. Returns the paths removed."""
    if not real_directory(directory):
        return []
    removed = remove_leftovers(directory, temporaries_pattern(basenames, MKSTEMP_SUFFIX), older_than=older_than,
                               regular_files_only=True)
    return [os.path.join(directory, name) for name in removed]


def _write_temp(path, data, mode, uid, gid, sync=True):
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise MtlsError("directory %s does not exist (for %s)" % (directory, path))
    fd, temp_path = tempfile.mkstemp(prefix=temp_prefix(path), dir=directory)
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
        done = []
        for temp_path, path in self._staged:
            try:
                os.rename(temp_path, path)
            except OSError as exc:
                self._staged = self._staged[len(done):]
                self.discard()
                raise MtlsError("cannot rename %s into place: %s%s" % (
                    path, exc.strerror or exc, "; already replaced: %s" % ", ".join(done) if done else ""))
            done.append(path)
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


def _open_lock(path):
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise symlink_refused(path, "lock file")
        raise MtlsError("cannot open lock file %s: %s" % (path, exc.strerror or exc))


@contextlib.contextmanager
def file_lock(path):
    """Exclusive advisory lock on ``path`` (created 0600 if missing, never through a link), held for the block."""
    fd = _open_lock(path)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def read_all(fd):
    """Every byte from an open descriptor to its end."""
    chunks = []
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def remove_leftovers(directory, pattern, older_than=None, regular_files_only=False):
    """Remove entries of ``directory`` whose whole name matches ``pattern`` (a compiled regex).

    The one leftover cleanup, CA store side and host side (``remove_stale_temporaries``). For
    temporaries a killed run left behind: call it only under the lock that guards the writes that
    make such names, so no live temporary is removed; with ``older_than`` (epoch seconds) only entries
    last modified before it go. Nothing is ever followed: a symbolic link is removed itself (or, with
    ``regular_files_only``, left alone like any other non-regular entry); a directory is removed with
    ``shutil.rmtree``, which does not follow links inside. A missing directory has no leftovers.
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
            st = os.lstat(path)
            if regular_files_only and not stat.S_ISREG(st.st_mode):
                continue
            if older_than is not None and st.st_mtime >= older_than:
                continue
            if stat.S_ISDIR(st.st_mode):
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


@contextlib.contextmanager
def transient_lock(path, what="lock", timeout=600.0, poll=0.05):
    """Exclusive lock on ``path`` that leaves no file behind: the holder removes it on release.

    Safe because a waiter, once it holds the flock, checks that the file it locked is still the one
    at ``path`` (else its previous holder removed it and the waiter starts over on the new one).
    Yields the time (epoch seconds) the lock was taken. Waits at most ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        fd = _open_lock(path)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except (IOError, OSError) as exc:
                    if exc.errno not in (errno.EAGAIN, errno.EACCES):
                        raise MtlsError("cannot lock %s: %s" % (path, exc.strerror or exc))
                if time.monotonic() > deadline:
                    raise MtlsError("%s: another run still holds %s after %d seconds" % (what, path, timeout))
                time.sleep(poll)
            locked = os.fstat(fd)
            try:
                current = os.lstat(path)
            except OSError:
                current = None
        except Exception:
            os.close(fd)
            raise
        if current is not None and (current.st_dev, current.st_ino) == (locked.st_dev, locked.st_ino):
            break
        os.close(fd)
    try:
        yield time.time()
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass
        os.close(fd)
