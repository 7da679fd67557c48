# -*- coding: utf-8 -*-
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Issuance index of a CA store (index.json), only read-modified-written under index.lock.

API: ``IssuanceIndex(index_path, lock_path)`` (or ``CAStore(path).index()``):
``record(entries, redraw=None)`` appends a batch in one locked read-modify-write; serial uniqueness is
re-checked under the lock against the whole index and the batch, and a colliding entry is handed to
``redraw(entry) -> entry`` (issuance re-signs with a fresh serial) or, without it, fails.
``entries()``, ``find_by_serial(serial)``, ``find_by_identity(identity, host=None)``,
``find_by_host(host)`` read a snapshot. ``revoke(serial=None, identity=None, host=None, reason,
when=None, dry_run=False)`` marks matching valid entries revoked and returns the entries it changed.
Revoking an entry that is already revoked with the SAME reason changes nothing (so a playbook can be
re-run); with a different reason it fails with "already revoked". ``revoked_entries()`` lists
revoked entries (what the CRL holds). Serials are lower-case hex strings without separators
(``serials.serial_hex``/``serials.serial_int`` convert).
The index and its lock are never used through a symbolic link. Every write first removes the
temporaries of index.json a killed writer left (``.index.json.`` plus 8 characters, up to the size of
the index), under the lock, so none of them is a live write.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import json
import os

from ansible_collections.fleet.mtls.plugins.module_utils.compat import isoformat, utcnow
from ansible_collections.fleet.mtls.plugins.module_utils.errors import MtlsError
from ansible_collections.fleet.mtls.plugins.module_utils.fsutil import (
    atomic_write, file_lock, read_file, remove_leftovers, temporaries_pattern)
from ansible_collections.fleet.mtls.plugins.module_utils.serials import MAX_REDRAWS, serial_hex, serial_int

INDEX_FORMAT = 1
# CRL reason codes (RFC 5280 5.3.1) by the names cryptography's ReasonFlags use.
REVOCATION_REASONS = ("unspecified", "keyCompromise", "cACompromise", "affiliationChanged", "superseded",
                      "cessationOfOperation", "certificateHold", "privilegeWithdrawn", "aACompromise")
_REASON_ALIASES = dict((name.lower().replace("_", ""), name) for name in REVOCATION_REASONS)


def canonical_reason(reason):
    if reason is None or reason == "":
        return "unspecified"
    name = _REASON_ALIASES.get(str(reason).lower().replace("_", "").replace(" ", ""))
    if name is None:
        raise MtlsError("unknown revocation reason %r: use one of %s" % (reason, ", ".join(REVOCATION_REASONS)))
    return name


def new_entry(serial, identity, host, subject, sans, profile, not_before, not_after, issued_at=None):
    return {"serial": serial_hex(serial), "identity": identity, "host": host, "subject": subject,
            "sans": list(sans), "profile": profile, "not_before": isoformat(not_before),
            "not_after": isoformat(not_after), "issued_at": isoformat(issued_at or utcnow()),
            "status": "valid", "revoked_at": None, "reason": None}


class IssuanceIndex:
    def __init__(self, index_path, lock_path):
        self.index_path = index_path
        self.lock_path = lock_path

    # -- reading ---------------------------------------------------------------------------------

    def _read(self):
        return self._read_document()[0]["entries"]

    def _read_document(self):
        """(document, raw bytes or None); the document always has an 'entries' list."""
        data = read_file(self.index_path, "issuance index", follow_symlinks=False)
        if data is None:
            return {"format": INDEX_FORMAT, "entries": []}, None
        try:
            document = json.loads(data.decode("utf-8"))
        except ValueError as exc:
            raise MtlsError("issuance index %s is corrupt: %s" % (self.index_path, exc))
        if not isinstance(document, dict) or not isinstance(document.get("entries"), list):
            raise MtlsError("issuance index %s is corrupt: no 'entries' list" % self.index_path)
        if document.get("format") != INDEX_FORMAT:
            raise MtlsError("issuance index %s has format %r; this version reads format %d"
                            % (self.index_path, document.get("format"), INDEX_FORMAT))
        return document, data

    @staticmethod
    def _line(entry):
        return json.dumps(entry, sort_keys=True, separators=(",", ":"))

    def _write(self, entries):
        # One entry per line: diffable by eye, and far cheaper to dump than indented JSON.
        lines = ",\n".join(self._line(entry) for entry in entries)
        self._replace('{"format": %d, "entries": [\n%s\n]}\n' % (INDEX_FORMAT, lines))

    def _append(self, document, data, new_entries):
        """Write the index read as (``document``, ``data``) plus ``new_entries``.

        When the file is in the form ``_write`` makes (only 'format' and 'entries', the last entry on
        the last line), the new lines are spliced in before the closing bracket: a large index is not
        dumped again entry by entry for every batch. Any other form is rewritten in full.
        """
        existing = document["entries"]
        tail = "\n]}\n"
        last_line = self._line(existing[-1]) if existing and isinstance(existing[-1], dict) else None
        if last_line is not None and set(document) == {"format", "entries"} \
                and data.endswith(("\n%s%s" % (last_line, tail)).encode("utf-8")):
            lines = ",\n".join(self._line(entry) for entry in new_entries)
            self._replace(data[:-len(tail)] + (",\n%s%s" % (lines, tail)).encode("utf-8"))
        else:
            self._write(existing + new_entries)

    def _replace(self, text):
        if isinstance(text, str):
            text = text.encode("utf-8")
        mode = 0o644
        try:
            mode = os.lstat(self.index_path).st_mode & 0o7777
        except OSError:
            pass
        atomic_write(self.index_path, text, mode)

    @contextlib.contextmanager
    def _locked(self):
        with file_lock(self.lock_path):
            yield

    def _remove_leftovers(self):
        """Temporaries of index.json killed writers left; call only under the lock."""
        name = os.path.basename(self.index_path)
        return remove_leftovers(os.path.dirname(os.path.abspath(self.index_path)), temporaries_pattern([name]))

    def entries(self):
        with self._locked():
            return self._read()

    def find_by_serial(self, serial):
        wanted = serial_hex(serial_int(serial))
        for entry in self.entries():
            if entry.get("serial") == wanted:
                return entry
        return None

    def find_by_identity(self, identity, host=None):
        return [entry for entry in self.entries()
                if entry.get("identity") == identity and (host is None or entry.get("host") == host)]

    def find_by_host(self, host):
        return [entry for entry in self.entries() if entry.get("host") == host]

    def revoked_entries(self):
        return [entry for entry in self.entries() if entry.get("status") == "revoked"]

    # -- writing ---------------------------------------------------------------------------------

    def record(self, entries, redraw=None):
        """Append ``entries`` in one locked update; returns the entries as recorded (in order)."""
        entries = list(entries)
        if not entries:
            return []
        with self._locked():
            self._remove_leftovers()
            document, data = self._read_document()
            taken = set(entry.get("serial") for entry in document["entries"])
            recorded = []
            for entry in entries:
                attempts = 0
                while entry["serial"] in taken:
                    attempts += 1
                    if redraw is None or attempts > MAX_REDRAWS:
                        raise MtlsError("serial %s is already in the issuance index %s"
                                        % (entry["serial"], self.index_path))
                    entry = redraw(entry)
                taken.add(entry["serial"])
                recorded.append(entry)
            self._append(document, data, recorded)
        return recorded

    def revoke(self, serial=None, identity=None, host=None, reason="unspecified", when=None, dry_run=False):
        """Mark entries revoked by serial, or every valid entry of an identity (optionally on one host).

        Returns the entries this call revoked ([] when everything asked was already revoked for the
        same reason).
        """
        if serial is None and not identity:
            raise MtlsError("revoke needs a serial or an identity")
        reason = canonical_reason(reason)
        when = isoformat(when or utcnow())
        wanted = serial_hex(serial_int(serial)) if serial is not None else None
        with self._locked():
            if not dry_run:
                self._remove_leftovers()
            entries = self._read()
            if wanted is not None:
                matches = [e for e in entries if e.get("serial") == wanted]
                target = "serial %s" % wanted
            else:
                matches = [e for e in entries if e.get("identity") == identity
                           and (host is None or e.get("host") == host)]
                target = "identity %s%s" % (identity, " on host %s" % host if host else "")
            if not matches:
                raise MtlsError("no certificate with %s in the issuance index %s" % (target, self.index_path))
            changed = []
            for entry in matches:
                if entry.get("status") == "revoked":
                    if wanted is not None and entry.get("reason") != reason:
                        raise MtlsError("serial %s is already revoked (reason %s, at %s); it cannot be "
                                        "revoked again with reason %s"
                                        % (entry["serial"], entry.get("reason"), entry.get("revoked_at"), reason))
                    continue
                entry["status"] = "revoked"
                entry["revoked_at"] = when
                entry["reason"] = reason
                changed.append(entry)
            if changed and not dry_run:
                self._write(entries)
        return changed
