# -*- coding: utf-8 -*-
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Revocation and the CRL of a CA store.

``revoke_and_publish(store_path, passphrase, revocations, ...)`` marks certificates revoked in the
store's issuance index and (re)builds ``crl.pem`` when ``needs_crl_refresh()`` says so:

* the CRL's issuer is the CA subject, it is signed by the CA key and carries the Authority Key
  Identifier and a CRLNumber;
* the CRLNumber is kept in ``crl.json`` and only ever grows: a deleted ``crl.pem`` does not reset
  it, a deleted ``crl.json`` resumes after the number in ``crl.pem``; both files are written in
  one staged commit, ``crl.json`` first;
* thisUpdate is now minus ``backdate_minutes`` (hosts with a slow clock would otherwise reject a
  CRL "not yet valid"), nextUpdate ``next_update_days`` later;
* the reason code extension is left out for ``unspecified`` (RFC 5280 5.3.1: SHOULD be absent).

No CRL or state file is read through a symbolic link, and a run that may write first removes the
temporaries of crl.pem/crl.json a killed run left, under crl.lock.

Revoking is idempotent per serial: the same serial with the same reason again changes nothing;
with another reason it fails (the index keeps the first reason, as a published CRL did).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import datetime
import hashlib
import json
import os

from ansible_collections.fleet.mtls.plugins.module_utils.ca_store import CAStore
from ansible_collections.fleet.mtls.plugins.module_utils.compat import (
    crl_last_update, crl_next_update, isoformat, parse_isoformat, pem_blocks, utcnow)
from ansible_collections.fleet.mtls.plugins.module_utils.errors import MtlsError
from ansible_collections.fleet.mtls.plugins.module_utils.fsutil import (
    StagedFiles, file_lock, read_file, remove_leftovers, temporaries_pattern)
from ansible_collections.fleet.mtls.plugins.module_utils.index import canonical_reason
from ansible_collections.fleet.mtls.plugins.module_utils.serials import serial_hex, serial_int

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    HAS_CRYPTOGRAPHY = True
except ImportError:
    HAS_CRYPTOGRAPHY = False

DEFAULT_NEXT_UPDATE_DAYS = 7
DEFAULT_REFRESH_DAYS = 2
DEFAULT_BACKDATE_MINUTES = 1
CRL_STATE_FORMAT = 1
# Serializes CRL number allocation between concurrent runs (index.lock guards only the index).
CRL_LOCK_NAME = "crl.lock"
# Temporaries of crl.pem/crl.json a killed run left (fsutil's mkstemp names), removed under crl.lock.
_CRL_TEMPS = temporaries_pattern(("crl.pem", "crl.json"))

# Reasons needs_crl_refresh() gives (stable: modules return them).
REFRESH_MISSING = "missing"
REFRESH_UNREADABLE = "unreadable"
REFRESH_ISSUER_CHANGED = "issuer_changed"
REFRESH_REVOKED_CHANGED = "revoked_changed"
REFRESH_WINDOW = "refresh_window"
REFRESH_FORCED = "forced"
CURRENT = "current"


def check_schedule(next_update_days, refresh_days, backdate_minutes=0):
    for name, value, minimum in (("next_update_days", next_update_days, 1), ("refresh_days", refresh_days, 0),
                                 ("backdate_minutes", backdate_minutes, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise MtlsError("%s must be a whole number of at least %d, got %r" % (name, minimum, value))
    if refresh_days >= next_update_days:
        raise MtlsError("refresh_days (%d) must be lower than next_update_days (%d), or every run would "
                        "rebuild the CRL" % (refresh_days, next_update_days))


def revoked_digest(entries):
    """Digest of what a CRL lists (serial, reason, date): a change of any means a new CRL."""
    lines = sorted("%s %s %s" % (entry["serial"], entry.get("reason"), entry.get("revoked_at"))
                   for entry in entries)
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


def crl_number_of(crl):
    try:
        return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    except x509.ExtensionNotFound:
        return None


def load_crl_state(path):
    """crl.json as a dict, or None when missing; a corrupt file is an error (never guess a number)."""
    data = read_file(path, "CRL state", follow_symlinks=False)
    if data is None:
        return None
    try:
        state = json.loads(data.decode("utf-8"))
    except ValueError as exc:
        raise MtlsError("CRL state %s is corrupt (%s): repair it or remove it to resume numbering after "
                        "the number in crl.pem" % (path, exc))
    if not isinstance(state, dict) or not isinstance(state.get("crl_number"), int):
        raise MtlsError("CRL state %s is corrupt: no integer crl_number; repair it or remove it to resume "
                        "numbering after the number in crl.pem" % path)
    return state


def load_published_crl(path):
    """The CRL in ``path``: (crl, None), or (None, reason) when missing or unreadable."""
    data = read_file(path, "CRL", follow_symlinks=False)
    if data is None:
        return None, REFRESH_MISSING
    blocks = pem_blocks(data, "X509 CRL")
    if not blocks:
        return None, REFRESH_UNREADABLE
    try:
        return x509.load_pem_x509_crl(blocks[0]), None
    except ValueError:
        return None, REFRESH_UNREADABLE


def needs_crl_refresh(crl, state, ca_certificate, revoked_entries, now=None, refresh_days=DEFAULT_REFRESH_DAYS,
                      force=False, unreadable=False):
    """The one decision whether to (re)build a CA's CRL -> (bool, reason).

    Reasons, first match wins: "missing" (no CRL), "unreadable" (not a CRL), "issuer_changed" (not
    named for or not signed by ``ca_certificate``), "revoked_changed" (the revoked set differs from
    the one the CRL was built from), "refresh_window" (at most ``refresh_days`` before nextUpdate,
    or past it), "forced"; otherwise (False, "current").
    """
    now = now or utcnow()
    if crl is None:
        return True, REFRESH_UNREADABLE if unreadable else REFRESH_MISSING
    if crl.issuer != ca_certificate.subject or not crl.is_signature_valid(ca_certificate.public_key()):
        return True, REFRESH_ISSUER_CHANGED
    if state is None or state.get("revoked_serials_digest") != revoked_digest(revoked_entries) \
            or state.get("crl_number") != crl_number_of(crl):
        return True, REFRESH_REVOKED_CHANGED
    next_update = crl_next_update(crl)
    if next_update is None or next_update - now <= datetime.timedelta(days=refresh_days):
        return True, REFRESH_WINDOW
    if force:
        return True, REFRESH_FORCED
    return False, CURRENT


def next_crl_number(state, crl):
    """One more than any number seen in crl.json or crl.pem."""
    seen = [0]
    if state is not None:
        seen.append(state["crl_number"])
    if crl is not None and crl_number_of(crl) is not None:
        seen.append(crl_number_of(crl))
    return max(seen) + 1


def build_crl(signer, revoked_entries, crl_number, now=None, next_update_days=DEFAULT_NEXT_UPDATE_DAYS,
              backdate_minutes=DEFAULT_BACKDATE_MINUTES):
    now = now or utcnow()
    this_update = now - datetime.timedelta(minutes=backdate_minutes)
    builder = (x509.CertificateRevocationListBuilder()
               .issuer_name(signer.certificate.subject)
               .last_update(this_update)
               .next_update(now + datetime.timedelta(days=next_update_days))
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(signer.ski),
                              critical=False)
               .add_extension(x509.CRLNumber(crl_number), critical=False))
    for entry in sorted(revoked_entries, key=lambda item: serial_int(item["serial"])):
        revoked = (x509.RevokedCertificateBuilder()
                   .serial_number(serial_int(entry["serial"]))
                   .revocation_date(parse_isoformat(entry["revoked_at"]) if entry.get("revoked_at") else this_update))
        reason = canonical_reason(entry.get("reason"))
        if reason != "unspecified":
            revoked = revoked.add_extension(x509.CRLReason(_reason_flag(reason)), critical=False)
        builder = builder.add_revoked_certificate(revoked.build())
    return builder.sign(signer.key, signer.hash_algorithm)


def _reason_flag(reason):
    # ReasonFlags values are the RFC 5280 names ("keyCompromise", "cACompromise"...).
    return x509.ReasonFlags(reason)


def _check_revocations(revocations):
    """Validate every request before the index is touched; returns normalized requests."""
    normalized = []
    reasons_by_serial = {}
    for position, request in enumerate(revocations or [], 1):
        if not isinstance(request, dict):
            raise MtlsError("revocation %d must be a mapping with serial or identity, got %r" % (position, request))
        unknown = sorted(set(request) - set(("serial", "identity", "host", "reason")))
        if unknown:
            raise MtlsError("revocation %d has unknown keys %s: use serial, identity, host, reason"
                            % (position, ", ".join(unknown)))
        serial, identity = request.get("serial"), request.get("identity")
        if (serial is None) == (not identity):
            raise MtlsError("revocation %d needs exactly one of serial or identity" % position)
        if serial is not None and request.get("host"):
            raise MtlsError("revocation %d: host filters an identity, it cannot go with serial %s" % (position, serial))
        try:
            reason = canonical_reason(request.get("reason"))
        except MtlsError as exc:
            raise MtlsError("revocation %d: %s" % (position, exc))
        if serial is not None:
            serial = serial_hex(serial_int(serial))
            if reasons_by_serial.get(serial, reason) != reason:
                raise MtlsError("serial %s is asked to be revoked twice with different reasons (%s, %s)"
                                % (serial, reasons_by_serial[serial], reason))
            reasons_by_serial[serial] = reason
        normalized.append({"serial": serial, "identity": identity, "host": request.get("host") or None,
                           "reason": reason})
    return normalized


def _summary(entry):
    return dict((key, entry.get(key)) for key in ("serial", "identity", "host", "reason", "revoked_at"))


def revoke_and_publish(store_path, passphrase, revocations=(), next_update_days=DEFAULT_NEXT_UPDATE_DAYS,
                       refresh_days=DEFAULT_REFRESH_DAYS, backdate_minutes=DEFAULT_BACKDATE_MINUTES,
                       force=False, check_mode=False, now=None):
    """Revoke, then rebuild the CRL when needed. Returns a dict for the module (no secrets)."""
    check_schedule(next_update_days, refresh_days, backdate_minutes)
    requests = _check_revocations(revocations)
    store = CAStore(store_path)
    signer = store.load(passphrase)
    index = store.index()
    now = now or utcnow()
    # A dry run of every request first: an unknown serial in request 3 must not leave 1 and 2 done,
    # and a refused request must not leave even a lock file behind.
    planned = []
    for request in requests:
        planned.extend(index.revoke(serial=request["serial"], identity=request["identity"], host=request["host"],
                                    reason=request["reason"], when=now, dry_run=True))
    # Check mode only reads, and must not even create the lock file.
    lock = contextlib.nullcontext() if check_mode else file_lock(os.path.join(store.path, CRL_LOCK_NAME))
    with lock:
        if not check_mode:
            remove_leftovers(store.path, _CRL_TEMPS)
        newly_revoked = planned
        if not check_mode and planned:
            newly_revoked = []
            for request in requests:
                newly_revoked.extend(index.revoke(serial=request["serial"], identity=request["identity"],
                                                  host=request["host"], reason=request["reason"], when=now))
        revoked = index.revoked_entries()
        if check_mode:
            already = set(entry["serial"] for entry in revoked)
            revoked = revoked + [entry for entry in planned if entry["serial"] not in already]

        state = load_crl_state(store.crl_json_path)
        crl, problem = load_published_crl(store.crl_path)
        refresh, reason = needs_crl_refresh(crl, state, signer.certificate, revoked, now, refresh_days, force,
                                            unreadable=problem == REFRESH_UNREADABLE)
        result = {
            "changed": bool(newly_revoked) or refresh,
            "refreshed": refresh,
            "refresh_reason": reason,
            "revoked_now": [_summary(entry) for entry in newly_revoked],
            "revoked": sorted((entry["serial"] for entry in revoked), key=serial_int),
            "path": store.crl_path,
            "crl": None, "crl_number": None, "this_update": None, "next_update": None,
            "diff": {"before": _describe(crl), "after": _describe(crl)},
        }
        if refresh and check_mode:
            planned_number = next_crl_number(state, crl)
            result["crl_number"] = planned_number
            result["diff"]["after"] = "crl_number: %d\nrevoked: %s\n" % (
                planned_number, ", ".join(result["revoked"]) or "none")
            return result
        if refresh:
            number = next_crl_number(state, crl)
            crl = build_crl(signer, revoked, number, now, next_update_days, backdate_minutes)
            new_state = {"format": CRL_STATE_FORMAT, "crl_number": number,
                         "this_update": isoformat(crl_last_update(crl)), "next_update": isoformat(crl_next_update(crl)),
                         "revoked_serials_digest": revoked_digest(revoked)}
            with StagedFiles() as staged:
                # crl.json first: once a number is used for a CRL on disk, it is recorded.
                staged.stage(store.crl_json_path, (json.dumps(new_state, indent=2, sort_keys=True) + "\n").encode(),
                             0o644)
                staged.stage(store.crl_path, crl.public_bytes(serialization.Encoding.PEM), 0o644)
                staged.commit()
            result["diff"]["after"] = _describe(crl)
        result.update(crl=crl.public_bytes(serialization.Encoding.PEM).decode("ascii"), crl_number=crl_number_of(crl),
                      this_update=isoformat(crl_last_update(crl)), next_update=isoformat(crl_next_update(crl)))
        return result


def find_in_trusted_generations(ca_dir, serial=None, identity=None, host=None, reason="unspecified"):
    """Where a revocation request applies: the issuing store of every trusted CA generation whose
    issuance index lists a certificate with ``serial``, or of ``identity`` on ``host`` (any status:
    revoking again with the same reason changes nothing). During a CA rotation an identity can hold
    certificates from two generations.

    Returns ``[{"store", "ca_path", "serials", "revoke": [{"serial", "reason"}]}]`` in generation
    order; a request that matches nothing fails, naming the stores searched.
    """
    from ansible_collections.fleet.mtls.plugins.module_utils.rotation import StateFile

    if bool(serial) == bool(identity):
        raise MtlsError("name what to revoke: either a serial or an identity (with its host), not both")
    if identity and not host:
        raise MtlsError("revoking identity %s needs the host it was issued for" % identity)
    reason = canonical_reason(reason)
    state_file = StateFile(ca_dir)
    searched, matches = [], []
    for generation in state_file.read().trusted_generations():
        name = generation["issuing"]
        searched.append(name)
        index = CAStore(state_file.store_path(name)).index()
        if serial:
            entry = index.find_by_serial(serial)
            found = [entry] if entry else []
        else:
            found = index.find_by_identity(identity, host)
        serials = [entry["serial"] for entry in found]
        if serials:
            matches.append({"store": name, "ca_path": state_file.store_path(name), "serials": serials,
                            "revoke": [{"serial": value, "reason": reason} for value in serials]})
    if not matches:
        raise MtlsError("No certificate %s was issued by a trusted CA generation (%s)." % (
            ("with serial %s" % serial) if serial else ("of identity %s on host %s" % (identity, host)),
            ", ".join(searched)))
    return matches


def _describe(crl):
    if crl is None:
        return "no CRL\n"
    serials = sorted(serial_hex(item.serial_number) for item in crl)
    return "crl_number: %s\nthis_update: %s\nnext_update: %s\nrevoked: %s\n" % (
        crl_number_of(crl), isoformat(crl_last_update(crl)), isoformat(crl_next_update(crl)),
        ", ".join(serials) or "none")
