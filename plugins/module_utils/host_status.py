# -*- coding: utf-8 -*-
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Everything a maintenance run could have to do on one host, answered by one read-only call.

``host_status(params, warn)`` is what ``fleet.mtls.host_status`` does. It decides nothing itself;
it asks the functions the writing modules use, in check mode, and gathers their answers:

- each identity: ``host_identity.request_identity`` in check mode (the csr module's path, so
  ``renewal.needs_issue`` makes the one renewal decision, and key file attributes that the csr
  module would fix count as due too);
- trust bundle and CRL: ``host_identity.install_identity`` in check mode with what the CA publishes
  (the install_identity module's path: same verification, same comparison);
- reloads a service still owes: ``loaded_state`` against the record its reload handler wrote;
- with ``record_manifest`` (the identity role's own check), whether recording the identities and the
  declared consumers would change the host's manifest (``manifest.records_change``).

Nothing is written, nothing is locked. The answer is ``due`` and the reasons, one line each.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.fleet.mtls.plugins.module_utils.consumers import consumer_records
from ansible_collections.fleet.mtls.plugins.module_utils.errors import MtlsError
from ansible_collections.fleet.mtls.plugins.module_utils.host_identity import install_identity, request_identity
from ansible_collections.fleet.mtls.plugins.module_utils.identity_plan import expand_default_sans, needs_host_facts
from ansible_collections.fleet.mtls.plugins.module_utils.loaded_state import (
    RECORDS_DIR, fingerprints, pending_paths, read_record)
from ansible_collections.fleet.mtls.plugins.module_utils.manifest import read_manifest, records_change, with_recorded
from ansible_collections.fleet.mtls.plugins.module_utils.role_inputs import identity_problems

# The options of an identity entry handed to the csr path; a central key is checked without the key
# file settings, as the identity role's check does (the key lives on the host only once issued).
IDENTITY_OPTIONS = ("name", "key_type", "common_name", "sans", "profile", "owner", "group", "mode",
                    "renew_fraction", "renew_days", "new_key_on_renew")
CENTRAL_KEY_SKIPS = ("owner", "group", "mode", "new_key_on_renew")


def _number(kind, name):
    def convert(value):
        if isinstance(value, bool):
            raise ValueError(value)
        return kind(value)
    convert.__name__ = name
    return convert


def _boolean(value):
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0"):
        return False
    raise ValueError(value)


_boolean.__name__ = "a boolean"
# Options the csr module's argument spec would convert; entries here come as role data.
COERCE = (("renew_fraction", _number(float, "a number")), ("renew_days", _number(int, "a whole number of days")),
          ("new_key_on_renew", _boolean))


def _identity_params(entry, directory, trusted_issuers, force):
    skip = CENTRAL_KEY_SKIPS if entry.get("central_key") else ()
    params = dict((key, entry.get(key)) for key in IDENTITY_OPTIONS if key not in skip and entry.get(key) is not None)
    for key, kind in COERCE:
        if key in params:
            try:
                params[key] = kind(params[key])
            except (TypeError, ValueError):
                raise MtlsError("%s must be %s, got %r" % (key, kind.__name__, params[key]))
    if isinstance(params.get("sans"), str):
        raise MtlsError("sans must be a list, got the string %r" % (params["sans"],))
    params.update(dir=directory, trusted_issuers=trusted_issuers, force=bool(force))
    return params


def identity_status(entry, directory, trusted_issuers=None, force=False):
    """The csr module's answer for one identity (check mode): {name, due, needs_issue, reason, detail,
    days_left, not_after, serial, attributes_differ}."""
    if not isinstance(entry, dict) or not entry.get("name"):
        raise MtlsError("every entry of identities needs a name, got %r" % (entry,))
    try:
        answer = request_identity(_identity_params(entry, directory, trusted_issuers, force), check_mode=True)
    except MtlsError as exc:
        raise MtlsError("identity %s: %s" % (entry["name"], exc.message))
    return {
        "name": entry["name"], "due": bool(answer["needs_issue"] or answer["changed"]),
        "needs_issue": answer["needs_issue"], "reason": answer["reason"], "detail": answer["detail"],
        "days_left": answer["days_left"], "not_after": answer["not_after"], "serial": answer["serial"],
        # changed without needs_issue: key file owner/group/mode the csr module would fix.
        "attributes_differ": bool(answer["changed"] and not answer["needs_issue"]),
    }


def trust_status(directory, trust_bundle_content, crl_content, warn=None):
    """install_identity's answer (check mode) for the published trust bundle and CRLs:
    {trust_bundle, crl, attributes} each True when the installed file would change."""
    params = {"dir": directory, "trust_bundle_content": trust_bundle_content}
    if crl_content:
        params["crl_content"] = crl_content
    try:
        answer = install_identity(params, check_mode=True, warn=warn)
    except MtlsError as exc:
        raise MtlsError("trust bundle and CRLs in %s: %s" % (directory, exc.message))
    changes = answer["changes"]
    return {"trust_bundle": changes["trust_bundle"], "crl": changes["crl"],
            "attributes": bool(answer["changed"] and not (changes["trust_bundle"] or changes["crl"]))}


def reload_status(state_file):
    """The files a service read at its last reload (per its record) whose contents changed since;
    every recorded file's path when there is no usable record. (record_found, pending paths)."""
    recorded = read_record(state_file)
    if recorded is None:
        return False, []
    return pending_paths(fingerprints(sorted(recorded)), state_file)


def host_status(params, warn=None, read_facts=None):
    """Answer for one host: ``due`` (anything to do), ``reasons`` (one line each), ``identities``
    (per identity, in order), ``trust`` (None when no publication was given), ``reloads``,
    ``identity_list`` (the entries checked: the declared ones, then the recorded ones, default SANs
    made), ``manifest`` (as read) and ``manifest_outdated`` (with record_manifest: the manifest would
    change).

    params: dir; identities (entries with the csr module's options plus central_key); trusted_issuers
    (PEM of the signing CA, or None); force; trust_bundle_content and crl_content (what the CA
    publishes, None when not known); loaded_state_files ({service: record path}); consumer_records_dir
    (where the records of the consumers the host's manifest holds are); record_manifest and consumers
    (the declared consumers): a manifest that recording them would change counts as due.

    The identities the host's manifest (manifest.py) holds and the inventory does not declare are
    checked too, with their recorded settings, and so are the owed changes of its recorded consumers.

    The identities are checked as the identity role checks mtls_identities (role_inputs); default
    SANs left to the host (identity_plan.DEFAULT_SANS_ON_HOST) are made from ``read_facts()``
    ({fqdn, hostname, default_ipv4}), called only when an identity needs them.
    """
    directory = params["dir"]
    manifest = read_manifest(directory)
    declared = params.get("identities") or []
    problems = identity_problems(declared)
    if problems:
        raise MtlsError("; ".join(problems))
    # What the host holds but the inventory does not declare (a user's own play made it) is kept alive too.
    identities = with_recorded(declared, manifest["identities"])
    if needs_host_facts(identities):
        if read_facts is None:
            raise MtlsError("the default SANs are to be read on the host, but no way to read its facts was given")
        identities = expand_default_sans(identities, **read_facts())
    reasons = []
    checked = []
    for entry in identities:
        answer = identity_status(entry, directory, params.get("trusted_issuers"), params.get("force", False))
        checked.append(answer)
        if answer["needs_issue"]:
            reasons.append("identity %s: %s (%s)" % (answer["name"], answer["reason"], answer["detail"])
                           if answer["detail"] else "identity %s: %s" % (answer["name"], answer["reason"]))
        elif answer["attributes_differ"]:
            reasons.append("identity %s: key file owner, group or mode differs" % answer["name"])

    trust = None
    if params.get("trust_bundle_content") and identities:
        trust = trust_status(directory, params["trust_bundle_content"], params.get("crl_content"), warn)
        if trust["trust_bundle"]:
            reasons.append("trust bundle differs from what the CA publishes")
        if trust["crl"]:
            reasons.append("CRLs differ from what the CA publishes")
        if trust["attributes"]:
            reasons.append("trust bundle or CRL file owner, group or mode differs")

    reloads = {}
    records = dict(consumer_records(manifest["consumers"], params.get("consumer_records_dir") or RECORDS_DIR))
    records.update(params.get("loaded_state_files") or {})
    for service in sorted(records):
        state_file = records[service]
        found, pending = reload_status(state_file)
        reloads[service] = {"record_found": found, "pending_paths": pending, "owed": not found or bool(pending)}
        if not found:
            reasons.append("%s: no record of the files it loaded (%s)" % (service, state_file))
        elif pending:
            reasons.append("%s: reload owed for %s" % (service, ", ".join(pending)))

    # The identity role records what it installed only for a host with identities (install.yml).
    manifest_outdated = bool(params.get("record_manifest") and identities
                             and records_change(manifest, identities, params.get("consumers") or []))
    if manifest_outdated:
        reasons.append("manifest: the identities or consumers it records differ from the declaration")

    return {"changed": False, "due": bool(reasons), "reasons": reasons, "identities": checked,
            "trust": trust, "reloads": reloads, "identity_list": identities, "manifest": manifest,
            "manifest_outdated": manifest_outdated}
