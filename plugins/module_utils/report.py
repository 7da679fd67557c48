# -*- coding: utf-8 -*-
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fleet certificate report and probe summary: classification and output formats.

Pure Python on the controller (no cryptography, no Ansible): the ``fleet.mtls.report`` playbook
gathers ``cert_info`` results, PEM texts and the CA rotation state, and this module turns them into
rows, a terminal table sorted by urgency, a JSON document, a self-contained HTML page (see
``report_html``) and Prometheus text exposition for node_exporter's textfile collector (built with
prometheus_client). The ``fleet.mtls.verify`` playbook uses ``summarize_probes`` for its end-of-run
table.

Certificates are matched to CA generations by SHA-256 fingerprint of their DER encoding, computed
from the PEM text alone.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import binascii
import datetime
import hashlib
import json
import math
import re

from ansible_collections.fleet.mtls.plugins.module_utils.compat import UTC, isoformat, pem_blocks, utcnow
from ansible_collections.fleet.mtls.plugins.module_utils.errors import MtlsError
from ansible_collections.fleet.mtls.plugins.module_utils.renewal import REASONS as RENEWAL_REASONS
from ansible_collections.fleet.mtls.plugins.module_utils.renewal import VALID as RENEWAL_VALID
from ansible_collections.fleet.mtls.plugins.module_utils.rotation import GENERATION_STATES, PHASES

try:
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.core import GaugeMetricFamily
    HAS_PROMETHEUS_CLIENT = True
except ImportError:
    HAS_PROMETHEUS_CLIENT = False

# Worst first: a row gets the first status whose condition holds. ``not_inspected``: the host could
# not be inspected this run; the row is what the previous report saw there.
CERT_STATUSES = ("unreadable", "revoked", "expired", "untrusted_issuer", "not_inspected", "renew_soon", "ok")
# These come first in the table, worst first; the rest by fewest days left.
ATTENTION_FIRST = ("unreadable", "revoked", "expired", "untrusted_issuer", "not_inspected")
CRL_STATUSES = ("missing", "expired", "renew_soon", "ok")
# What the host's own renewal decision (renewal.REASONS, from cert_info's renewal_check) means for a
# certificate's status: the identity's files cannot be used as one set, it has expired, or its
# issuer is not trusted. None: nothing beyond what the report judges itself (a renewal window or a
# changed setting is rotate's business; the report warns by mtls_report_warn_days).
RENEWAL_REASON_STATUS = {
    "missing": "unreadable", "unreadable": "unreadable", "key_missing": "unreadable",
    "key_mismatch": "unreadable", "files_inconsistent": "unreadable", "not_yet_valid": "unreadable",
    "expired": "expired", "issuer_untrusted": "untrusted_issuer",
    "key_type_changed": None, "profile_changed": None, "subject_changed": None, "sans_changed": None,
    "renewal_window": None, "forced": None, RENEWAL_VALID: None,
}
SECONDS_PER_DAY = 86400.0

_PEM_BODY = re.compile(br"-----BEGIN [A-Z0-9 ]+-----\r?\n(.*?)-----END", re.DOTALL)
_ASN1_TIME = re.compile(r"^(\d{14})Z$")


# ---------------------------------------------------------------- inputs


def certificate_fingerprints(pem_text):
    """SHA-256 fingerprints (lower-case hex, no colons) of every CERTIFICATE block in ``pem_text``."""
    fingerprints = []
    for block in pem_blocks(pem_text or "", "CERTIFICATE"):
        body = _PEM_BODY.search(block).group(1)
        try:
            der = base64.b64decode(b"".join(body.split()), validate=True)
        except (binascii.Error, ValueError):
            raise MtlsError("a CERTIFICATE block is not valid base64")
        fingerprints.append(hashlib.sha256(der).hexdigest())
    return fingerprints


def _normalize_fingerprint(value):
    return str(value).replace(":", "").strip().lower()


def fingerprints_of(entry, prefix):
    """Fingerprints given as ``<prefix>_fingerprints`` (any hex form) plus those of ``<prefix>_pem``."""
    given = [_normalize_fingerprint(value) for value in entry.get(prefix + "_fingerprints") or []]
    return given + certificate_fingerprints(entry.get(prefix + "_pem"))


def parse_time(value, what="timestamp"):
    """An aware UTC datetime from ISO 8601 (``Z`` or offset), ASN.1 ``YYYYMMDDHHMMSSZ`` or epoch seconds."""
    if isinstance(value, datetime.datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, bool) or value is None or value == "":
        raise MtlsError("%s is missing" % what)
    if isinstance(value, (int, float)):
        return datetime.datetime.fromtimestamp(value, UTC)
    text = str(value).strip()
    asn1 = _ASN1_TIME.match(text)
    if asn1:
        return datetime.datetime.strptime(asn1.group(1), "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    try:
        parsed = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise MtlsError("%s %r is not a timestamp (expected ISO 8601 like 2026-01-31T12:00:00Z)"
                        % (what, value))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _epoch(moment):
    return (moment - datetime.datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()


def _days_between(later, earlier):
    return round((later - earlier).total_seconds() / SECONDS_PER_DAY, 1)


def _check_days(value, what):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or math.isnan(value):
        raise MtlsError("%s must be a number of days >= 0, got %r" % (what, value))
    return value


class Generations:
    """CA generations from rotation.json, indexed by the fingerprints of their certificates."""

    def __init__(self, generations):
        self.known = bool(generations)
        self.by_issuing = {}
        self.by_any = {}
        self.retired = set()
        for generation in generations or []:
            gen_id = str(generation.get("id"))
            state = generation.get("state") or "active"
            if state not in GENERATION_STATES:
                raise MtlsError("CA generation %s has unknown state %r (expected %s)"
                                % (gen_id, state, ", ".join(GENERATION_STATES)))
            entry = {"id": gen_id, "state": state}
            for fingerprint in fingerprints_of(generation, "issuing"):
                self.by_issuing[fingerprint] = entry
                self.by_any[fingerprint] = entry
            for fingerprint in fingerprints_of(generation, "root"):
                self.by_any[fingerprint] = entry
            if state == "retired":
                self.retired.add(gen_id)

    def issuer_of(self, chain_fingerprints):
        """The generation whose issuing CA is the second certificate of a leaf's chain, or None."""
        if len(chain_fingerprints) < 2:
            return None
        return self.by_issuing.get(chain_fingerprints[1])

    def retired_trusted(self, bundle_fingerprints):
        """Ids of retired generations with a certificate in the bundle."""
        found = set()
        for fingerprint in bundle_fingerprints:
            entry = self.by_any.get(fingerprint)
            if entry and entry["state"] == "retired":
                found.add(entry["id"])
        return sorted(found)


# ---------------------------------------------------------------- classification


def _certificate_row(host, item, generations, now, warn_days):
    info = item.get("info") or {}
    row = {
        "host": host,
        "identity": item.get("identity") or "",
        "path": item.get("path") or info.get("path"),
        "serial": info.get("serial"),
        "subject": info.get("subject"),
        "profile": info.get("profile"),
        "issuer_generation": "unknown",
        "not_before": None,
        "not_before_timestamp": None,
        "not_after": None,
        "days_left": None,
        "expiry_timestamp": None,
        "inspected": True,
        "status": "ok",
        "reasons": [],
        "renewal_reason": None,
    }
    if info.get("failed") or info.get("exists") is False or not info.get("not_after"):
        row["status"] = "unreadable"
        if info.get("exists") is False:
            row["reasons"].append("%s is missing" % (row["path"] or "the certificate file"))
        else:
            row["reasons"].append(info.get("msg") or "certificate could not be read")
        return row

    not_after = parse_time(info["not_after"], "not_after of %s on %s" % (row["identity"], host))
    row["not_after"] = isoformat(not_after)
    row["expiry_timestamp"] = int(_epoch(not_after))
    if info.get("not_before"):
        not_before = parse_time(info["not_before"], "not_before of %s on %s" % (row["identity"], host))
        row["not_before"] = isoformat(not_before)
        row["not_before_timestamp"] = int(_epoch(not_before))
    days_left = _days_between(not_after, now)
    row["days_left"] = days_left

    # The chain file is leaf + issuing CA: from cert_info (all=true) or from its PEM text.
    chain = [_normalize_fingerprint(cert["fingerprint_sha256"]) for cert in info.get("certificates") or []]
    generation = generations.issuer_of(chain or certificate_fingerprints(item.get("chain_pem")))
    if generation:
        row["issuer_generation"] = generation["id"]

    reasons = row["reasons"]
    if info.get("revoked"):
        reasons.append("listed in the host's CRL")
    if not_after <= now:
        reasons.append("expired %s" % row["not_after"])
    if info.get("chain_valid") is False:
        reasons.append("does not chain to the host's trust bundle")
    if generations.known and generation is None:
        reasons.append("issuer is not a known CA generation")
    elif generation and generation["state"] == "retired":
        reasons.append("issued by retired CA generation %s" % generation["id"])
    if generation and generation["state"] == "retiring":
        reasons.append("issued by retiring CA generation %s: reissue from the active one" % generation["id"])
    if days_left <= warn_days and not_after > now:
        reasons.append("expires in %.1f days (warn at %s)" % (days_left, warn_days))

    if info.get("revoked"):
        row["status"] = "revoked"
    elif not_after <= now:
        row["status"] = "expired"
    elif (info.get("chain_valid") is False or (generations.known and generation is None)
          or (generation and generation["state"] == "retired")):
        row["status"] = "untrusted_issuer"
    elif reasons:
        row["status"] = "renew_soon"
    _apply_renewal(row, info.get("renewal"))
    return row


def _apply_renewal(row, renewal):
    """Fold the host's renewal decision into ``row``: its reason is kept (``renewal_reason``) and a
    reason that is worse than the status the report found sets the status."""
    if not renewal:
        return
    reason = renewal.get("reason")
    if reason not in RENEWAL_REASON_STATUS:
        raise MtlsError("%s %s: unknown renewal reason %r (known: %s)" % (
            row["host"], row["identity"], reason, ", ".join(RENEWAL_REASONS + (RENEWAL_VALID,))))
    row["renewal_reason"] = reason
    status = RENEWAL_REASON_STATUS[reason]
    if status is None:
        return
    if CERT_STATUSES.index(status) < CERT_STATUSES.index(row["status"]):
        row["status"] = status
        row["reasons"].append(renewal.get("detail") or reason)


def _carried_row(previous_row, host_error, last_inspected, now):
    """A certificate of a host that could not be inspected, as the previous report saw it.

    Its dates are still facts (a certificate's notAfter does not move); whether it is still
    installed, revoked or trusted is not known, so it is ``not_inspected`` unless it has expired.
    """
    row = dict((key, previous_row.get(key)) for key in (
        "host", "identity", "path", "serial", "subject", "profile", "issuer_generation", "not_before",
        "not_before_timestamp", "not_after", "expiry_timestamp", "renewal_reason"))
    row["issuer_generation"] = row["issuer_generation"] or "unknown"
    row["inspected"] = False
    row["days_left"] = None
    row["reasons"] = ["host could not be inspected (%s); as last seen %s" % (host_error, last_inspected or "before")]
    row["status"] = "not_inspected"
    if row["not_after"]:
        not_after = parse_time(row["not_after"], "not_after of %s on %s in the previous report"
                               % (row["identity"], row["host"]))
        row["days_left"] = _days_between(not_after, now)
        if not_after <= now:
            row["status"] = "expired"
            row["reasons"].append("expired %s" % row["not_after"])
    return row


def _crl_row(crl, now, warn_days):
    row = {"ca": str(crl.get("ca") or ""), "present": False, "this_update": None, "this_update_timestamp": None,
           "next_update": None, "next_update_timestamp": None, "days_left": None,
           "crl_number": crl.get("crl_number"), "status": "ok"}
    if not crl.get("next_update"):
        row["status"] = "missing"
        return row
    row["present"] = True
    if crl.get("this_update"):
        this_update = parse_time(crl["this_update"], "this_update of the CRL of %s" % row["ca"])
        row["this_update"] = isoformat(this_update)
        row["this_update_timestamp"] = int(_epoch(this_update))
    next_update = parse_time(crl["next_update"], "next_update of the CRL of %s" % row["ca"])
    row["next_update"] = isoformat(next_update)
    row["next_update_timestamp"] = int(_epoch(next_update))
    row["days_left"] = _days_between(next_update, now)
    if next_update <= now:
        row["status"] = "expired"
    elif row["days_left"] <= warn_days:
        row["status"] = "renew_soon"
    return row


def urgency_key(row):
    """Sort key of certificate rows: the ATTENTION_FIRST statuses worst first, then fewest days left."""
    status = row["status"]
    group = ATTENTION_FIRST.index(status) if status in ATTENTION_FIRST else len(ATTENTION_FIRST)
    days = row.get("days_left")
    return (group, float("-inf") if days is None else days, row["host"], row["identity"] or "")


def _previous_report(previous):
    """Hosts and certificates of the previous report (its JSON text or data); empty when absent."""
    if not previous:
        return {}, {}
    if isinstance(previous, (str, bytes)):
        try:
            previous = json.loads(previous)
        except ValueError as exc:
            raise MtlsError("the previous report is not valid JSON: %s" % exc)
    if not isinstance(previous, dict) or previous.get("format") != 1:
        raise MtlsError("the previous report is not a fleet.mtls report of format 1")
    hosts = dict((str(row.get("host")), row) for row in previous.get("hosts") or [] if isinstance(row, dict))
    certificates = {}
    for row in previous.get("certificates") or []:
        if isinstance(row, dict):
            certificates.setdefault(str(row.get("host")), []).append(row)
    return hosts, certificates


def _rotation_summary(rotation_file):
    """Where the CA rotation stands, from rotation.json (``rotation`` is null between rotations)."""
    rotation_file = rotation_file or {}
    rotation = rotation_file.get("rotation") or {}
    phase = rotation.get("phase")
    if phase is not None and phase not in PHASES:
        raise MtlsError("rotation.json has phase %r (one of %s)" % (phase, ", ".join(PHASES)))
    return {"active_generation": rotation_file.get("active"), "phase": phase,
            "phase_completed": bool(rotation.get("phase_completed")) if phase else None,
            "scope": rotation.get("scope"), "from": rotation.get("from"), "to": rotation.get("to")}


def build_report(hosts, ca=None, warn_days=30, crl_warn_days=2, now=None, previous=None):
    """Classify every certificate, CRL and host trust bundle.

    ``hosts``: list of ``{"host", "error", "trust_bundle_fingerprints" or "trust_bundle_pem",
    "certificates": [{"identity", "path", "info", "chain_pem"}]}`` where ``info`` is the
    ``fleet.mtls.cert_info`` result for the leaf's chain file (with ``all=true`` its
    ``certificates`` give the issuing CA; otherwise ``chain_pem`` does) and ``error`` says why a
    host could not be inspected.
    ``ca``: ``{"rotation": <rotation.json>, "generations": [{"id", "state", "root_pem" or
    "root_fingerprints", "issuing_pem" or "issuing_fingerprints"}], "crls": [{"ca", "next_update",
    "crl_number"}]}`` or None when the CA holder was not read.
    ``previous``: the previous report (JSON text or data) or None. A host that cannot be inspected
    keeps the certificates it had there, as ``not_inspected``, and its last inspection time.
    """
    warn_days = _check_days(warn_days, "warn_days")
    crl_warn_days = _check_days(crl_warn_days, "crl_warn_days")
    now = parse_time(now, "now") if now is not None else utcnow()
    ca = ca or {}
    generations = Generations(ca.get("generations"))
    previous_hosts, previous_certificates = _previous_report(previous)

    certificates, host_rows = [], []
    for host in sorted(hosts or [], key=lambda entry: str(entry.get("host"))):
        name = str(host.get("host"))
        error = host.get("error")
        if error:
            last = previous_hosts.get(name, {}).get("last_inspected")
            carried = [_carried_row(row, error, last, now) for row in previous_certificates.get(name, [])]
            certificates.extend(carried)
            host_rows.append({"host": name, "reachable": False, "inspected": False, "error": error,
                              "last_inspected": last,
                              "last_inspected_timestamp": int(_epoch(parse_time(last))) if last else None,
                              "certificates_carried_over": len(carried),
                              "trust_bundle_found": None, "trusts_retired_ca": None, "retired_generations": []})
            continue
        for item in host.get("certificates") or []:
            certificates.append(_certificate_row(name, item, generations, now, warn_days))
        bundle = fingerprints_of(host, "trust_bundle")
        retired = generations.retired_trusted(bundle)
        host_rows.append({"host": name, "reachable": True, "inspected": True, "error": None,
                          "last_inspected": isoformat(now), "last_inspected_timestamp": int(_epoch(now)),
                          "certificates_carried_over": 0, "trust_bundle_found": bool(bundle),
                          "trusts_retired_ca": bool(retired), "retired_generations": retired})
    certificates.sort(key=urgency_key)
    crls = sorted((_crl_row(crl, now, crl_warn_days) for crl in ca.get("crls") or []),
                  key=lambda row: row["ca"])

    summary = dict((status, 0) for status in CERT_STATUSES)
    for row in certificates:
        summary[row["status"]] += 1
    summary["hosts_not_inspected"] = sum(1 for row in host_rows if not row["inspected"])
    summary["hosts_trusting_retired_ca"] = sum(1 for row in host_rows if row["trusts_retired_ca"])
    summary["crls_needing_attention"] = sum(1 for row in crls if row["status"] != "ok")

    problems = []
    for row in host_rows:
        if row["error"]:
            problems.append("%s could not be inspected: %s" % (row["host"], row["error"]))
    for row in certificates:
        if row["status"] != "ok" and row["inspected"]:
            problems.append("%s %s: %s (%s)" % (row["host"], row["identity"], row["status"],
                                                "; ".join(row["reasons"])))
    for row in crls:
        if row["status"] != "ok":
            when = "" if row["next_update"] is None else " (next update %s)" % row["next_update"]
            problems.append("CRL of %s: %s%s" % (row["ca"], row["status"], when))
    for row in host_rows:
        if row["trusts_retired_ca"]:
            problems.append("%s trusts retired CA generation(s) %s" % (row["host"], ", ".join(row["retired_generations"])))
        if row["inspected"] and not row["trust_bundle_found"]:
            problems.append("%s has no trust bundle" % row["host"])

    ca_state = _rotation_summary(ca.get("rotation"))
    ca_state["generations"] = [{"id": str(g.get("id")), "state": g.get("state") or "active"}
                               for g in ca.get("generations") or []]
    return {
        "format": 1,
        "generated_at": isoformat(now),
        "generated_timestamp": int(_epoch(now)),
        "warn_days": warn_days,
        "crl_warn_days": crl_warn_days,
        "ca": ca_state,
        "certificates": certificates,
        "hosts": host_rows,
        "crls": crls,
        "summary": summary,
        "problems": problems,
    }


# ---------------------------------------------------------------- output formats


def format_table(rows, columns):
    """Plain-text table: ``columns`` is a list of ``(key, header)``; numbers right-aligned."""
    cells = [[header for _key, header in columns]]
    numeric = [True] * len(columns)
    for row in rows:
        line = []
        for index, (key, _header) in enumerate(columns):
            value = row.get(key)
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                numeric[index] = numeric[index] and value is None
            line.append("-" if value is None else str(value).replace("\n", "\\n"))
        cells.append(line)
    widths = [max(len(line[index]) for line in cells) for index in range(len(columns))]
    lines = []
    for number, line in enumerate(cells):
        padded = [cell.rjust(width) if numeric[index] and number else cell.ljust(width)
                  for index, (cell, width) in enumerate(zip(line, widths))]
        lines.append("  ".join(padded).rstrip())
        if number == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


CERTIFICATE_COLUMNS = [("host", "HOST"), ("identity", "IDENTITY"), ("issuer_generation", "GEN"),
                       ("not_after", "NOT AFTER"), ("days_left", "DAYS LEFT"), ("status", "STATUS")]
CRL_COLUMNS = [("ca", "CA"), ("crl_number", "CRL NUMBER"), ("next_update", "NEXT UPDATE"),
               ("days_left", "DAYS LEFT"), ("status", "STATUS")]
HOST_COLUMNS = [("host", "HOST NOT INSPECTED"), ("last_inspected", "LAST INSPECTED"), ("error", "WHY")]


def certificate_table_rows(report):
    """The certificate rows of the table and the page, most urgent first: every certificate, plus
    one row for each host that could not be inspected and has no certificate carried over."""
    rows = list(report["certificates"])
    for host in report["hosts"]:
        if not host["inspected"] and not host["certificates_carried_over"]:
            rows.append({"host": host["host"], "identity": None, "issuer_generation": None, "not_after": None,
                         "not_before": None, "days_left": None, "status": "not_inspected", "inspected": False,
                         "reasons": ["host could not be inspected: %s" % host["error"]]})
    rows.sort(key=urgency_key)
    return rows


def report_table(report):
    """The terminal view: certificates most urgent first, CRLs, hosts not inspected or trusting a
    retired CA, and a summary line."""
    rows = certificate_table_rows(report)
    parts = [format_table(rows, CERTIFICATE_COLUMNS) if rows else "no certificates found"]
    if report["crls"]:
        parts.append(format_table(report["crls"], CRL_COLUMNS))
    not_inspected = [row for row in report["hosts"] if not row["inspected"]]
    if not_inspected:
        parts.append(format_table([dict(row, last_inspected=row["last_inspected"] or "never")
                                   for row in not_inspected], HOST_COLUMNS))
    retired = [row for row in report["hosts"] if row["trusts_retired_ca"]]
    if retired:
        parts.append(format_table(
            [{"host": row["host"], "generations": ", ".join(row["retired_generations"])} for row in retired],
            [("host", "HOST TRUSTING A RETIRED CA"), ("generations", "GENERATIONS")]))
    summary = report["summary"]
    parts.append("%d certificate(s): %s; %d host(s) not inspected; %d host(s) trust a retired CA; "
                 "%d CRL(s) need attention" % (
                     len(report["certificates"]),
                     ", ".join("%s %d" % (status, summary[status]) for status in CERT_STATUSES
                               if summary[status]) or "none",
                     summary["hosts_not_inspected"], summary["hosts_trusting_retired_ca"],
                     summary["crls_needing_attention"]))
    return "\n\n".join(parts)


def report_json(report):
    return json.dumps(report, indent=2, sort_keys=True) + "\n"


# ---------------------------------------------------------------- Prometheus

# Every metric family the textfile holds: name -> (labels, help). All gauges; times are Unix
# seconds (``_timestamp_seconds``), like node_exporter's and blackbox_exporter's. ``serial`` and
# ``profile`` change on every renewal, so they live only on the info metric: joining them onto the
# others (``* on(host, identity) group_left(serial) mtls_certificate_info``) keeps one series per
# certificate slot across renewals.
CERT_LABELS = ("host", "identity", "issuer_generation")
METRICS = (
    ("mtls_certificate_not_after_timestamp_seconds", CERT_LABELS,
     "Unix time at which the certificate expires (its notAfter). Hosts that could not be inspected keep "
     "the value of the previous report, with mtls_certificate_status{status=\"not_inspected\"} 1."),
    ("mtls_certificate_not_before_timestamp_seconds", CERT_LABELS,
     "Unix time from which the certificate is valid (its notBefore)."),
    ("mtls_certificate_info", CERT_LABELS + ("serial", "profile"),
     "Always 1: serial number (hex) and profile (server, client, server_client) of the certificate."),
    ("mtls_certificate_status", ("host", "identity", "status"),
     "1 for the certificate's current status, 0 for the others (" + ", ".join(CERT_STATUSES) + ")."),
    ("mtls_crl_present", ("ca",),
     "1 if the CA holder has a current CRL for this trusted CA, 0 if it has none."),
    ("mtls_crl_next_update_timestamp_seconds", ("ca",),
     "Unix time of the nextUpdate of the CA's current CRL (absent when mtls_crl_present is 0)."),
    ("mtls_host_inspect_success", ("host",),
     "1 if the host was inspected by this report, 0 if it was unreachable or failed (like probe_success)."),
    ("mtls_host_last_inspected_timestamp_seconds", ("host",),
     "Unix time of the last report that inspected the host (absent if no report ever did)."),
    ("mtls_host_trust_bundle_present", ("host",),
     "1 if the host has a trust bundle; only for hosts inspected by this report."),
    ("mtls_host_trusts_retired_ca", ("host",),
     "1 if the host's trust bundle still holds a certificate of a retired CA generation; only for hosts "
     "inspected by this report."),
    ("mtls_ca_generation_state", ("generation", "state"),
     "1 for the CA generation's current state, 0 for the others (" + ", ".join(GENERATION_STATES) + ")."),
    ("mtls_ca_active_generation", (),
     "Id of the CA generation that signs leaves."),
    ("mtls_ca_rotation_phase", ("phase",),
     "1 for the phase of the CA rotation under way (" + ", ".join(PHASES) + "), 0 for the others; "
     "all 0 between rotations."),
    ("mtls_ca_rotation_phase_completed", (),
     "1 if the rotation's current phase has finished on the whole fleet, 0 if it is in progress; "
     "absent between rotations."),
    ("mtls_report_timestamp_seconds", (),
     "Unix time at which the fleet.mtls report was made."),
)
METRIC_NAMES = tuple(name for name, _labels, _help in METRICS)


def _metric_samples(report):
    """``{metric name: [(label values, value)]}`` for every family of METRICS."""
    samples = dict((name, []) for name in METRIC_NAMES)
    for row in report["certificates"]:
        labels = [row["host"], row["identity"], row["issuer_generation"]]
        if row["expiry_timestamp"] is not None:
            samples["mtls_certificate_not_after_timestamp_seconds"].append((labels, row["expiry_timestamp"]))
            samples["mtls_certificate_info"].append(
                (labels + [row.get("serial") or "", row.get("profile") or ""], 1))
        if row.get("not_before_timestamp") is not None:
            samples["mtls_certificate_not_before_timestamp_seconds"].append((labels, row["not_before_timestamp"]))
        for status in CERT_STATUSES:
            samples["mtls_certificate_status"].append(
                ([row["host"], row["identity"], status], 1 if row["status"] == status else 0))
    for row in report["crls"]:
        samples["mtls_crl_present"].append(([row["ca"]], 1 if row["present"] else 0))
        if row["next_update_timestamp"] is not None:
            samples["mtls_crl_next_update_timestamp_seconds"].append(([row["ca"]], row["next_update_timestamp"]))
    for row in report["hosts"]:
        samples["mtls_host_inspect_success"].append(([row["host"]], 1 if row["inspected"] else 0))
        if row["last_inspected_timestamp"] is not None:
            samples["mtls_host_last_inspected_timestamp_seconds"].append(([row["host"]], row["last_inspected_timestamp"]))
        if row["inspected"]:
            samples["mtls_host_trust_bundle_present"].append(([row["host"]], 1 if row["trust_bundle_found"] else 0))
            samples["mtls_host_trusts_retired_ca"].append(([row["host"]], 1 if row["trusts_retired_ca"] else 0))
    ca = report["ca"]
    for generation in ca["generations"]:
        for state in GENERATION_STATES:
            samples["mtls_ca_generation_state"].append(
                ([generation["id"], state], 1 if generation["state"] == state else 0))
    if ca.get("active_generation") is not None:
        samples["mtls_ca_active_generation"].append(([], ca["active_generation"]))
    if ca["generations"]:
        for phase in PHASES:
            samples["mtls_ca_rotation_phase"].append(([phase], 1 if ca.get("phase") == phase else 0))
    if ca.get("phase"):
        samples["mtls_ca_rotation_phase_completed"].append(([], 1 if ca.get("phase_completed") else 0))
    samples["mtls_report_timestamp_seconds"].append(([], report["generated_timestamp"]))
    return samples


class _ReportCollector(object):
    """A prometheus_client collector that yields the report's families once."""

    def __init__(self, report):
        self.report = report

    def collect(self):
        samples = _metric_samples(self.report)
        for name, labels, help_text in METRICS:
            family = GaugeMetricFamily(name, help_text, labels=list(labels))
            for values, value in samples[name]:
                family.add_metric([str(value_) for value_ in values], value)
            yield family


def report_registry(report):
    """A fresh CollectorRegistry holding the report's metrics (one per run, never the global one)."""
    if not HAS_PROMETHEUS_CLIENT:
        raise MtlsError("the Python library prometheus_client is required on the controller for the "
                        "Prometheus metrics (pip install prometheus-client; see requirements.txt)")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_ReportCollector(report))
    return registry


def report_prometheus(report):
    """Prometheus text exposition (format 0.0.4) for node_exporter's textfile collector.

    Rendered by prometheus_client's ``generate_latest``; the playbook writes it with
    ``ansible.builtin.copy``, which replaces the file atomically as ``write_to_textfile`` would and
    also honours check mode, diff and the file mode.
    """
    return generate_latest(report_registry(report)).decode("utf-8")


# ---------------------------------------------------------------- playbook variables

REPORT_DEFAULTS = {"warn_days": 21, "crl_warn_days": 1, "json": "", "html": None, "prometheus": "",
                   "fail_on_problems": False}
_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


def _days_setting(value, name):
    number = value
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if (isinstance(number, bool) or not isinstance(number, (int, float)) or math.isnan(number)
            or math.isinf(number) or number < 0):
        raise MtlsError("%s must be a number of days >= 0, got %r" % (name, value))
    return float(number)


def _bool_setting(value, name):
    if isinstance(value, bool):
        return value
    if isinstance(value, (str, int)) and str(value).strip().lower() in _TRUE + _FALSE:
        return str(value).strip().lower() in _TRUE
    raise MtlsError("%s must be a boolean (true or false), got %r" % (name, value))


def _path_setting(value, name):
    if value is None:
        return ""
    if not isinstance(value, str):
        raise MtlsError("%s must be a path, got %r" % (name, value))
    return value.strip()


def report_settings(variables):
    """Validate the ``fleet.mtls.report`` playbook variables (``mtls_report_<key>``, None = default).

    Returns ``{warn_days, crl_warn_days, json, html, prometheus, prometheus_file, fail_on_problems}``.
    The HTML page goes beside the JSON file (same name, ``.html``) unless ``html`` names another
    path; an empty ``html`` turns it off.
    """
    variables = variables or {}
    unknown = sorted(set(variables) - set(REPORT_DEFAULTS))
    if unknown:
        raise MtlsError("unknown report setting(s): %s" % ", ".join(unknown))
    raw = dict(REPORT_DEFAULTS)
    raw.update((key, value) for key, value in variables.items() if value is not None)
    settings = {
        "warn_days": _days_setting(raw["warn_days"], "mtls_report_warn_days"),
        "crl_warn_days": _days_setting(raw["crl_warn_days"], "mtls_report_crl_warn_days"),
        "json": _path_setting(raw["json"], "mtls_report_json"),
        "prometheus": _path_setting(raw["prometheus"], "mtls_report_prometheus"),
        "fail_on_problems": _bool_setting(raw["fail_on_problems"], "mtls_report_fail_on_problems"),
    }
    if raw["html"] is None:
        json_path = settings["json"]
        settings["html"] = (json_path[:-len(".json")] if json_path.endswith(".json") else json_path) + ".html" \
            if json_path else ""
    else:
        settings["html"] = _path_setting(raw["html"], "mtls_report_html")
    if settings["html"] and settings["html"] == settings["json"]:
        raise MtlsError("mtls_report_html and mtls_report_json name the same file %s" % settings["json"])
    settings["prometheus_file"] = (settings["prometheus"].rstrip("/") + "/fleet_mtls.prom"
                                   if settings["prometheus"] else "")
    if settings["prometheus"] and not HAS_PROMETHEUS_CLIENT:
        report_registry({})
    return settings


# ---------------------------------------------------------------- verify


PROBE_COLUMNS = [("client", "CLIENT"), ("target", "TARGET"), ("protocol", "PROTOCOL"),
                 ("identity", "IDENTITY"), ("expect", "EXPECT"), ("outcome", "OUTCOME"), ("result", "RESULT"),
                 ("detail", "DETAIL")]


def _unexpected_outcome(outcome, expect, with_identity):
    """What went wrong when the probe itself has no error to show (the server answered, wrongly)."""
    if outcome == "accepted":
        if with_identity:
            return "accepted the client's identity; expected rejection"
        return "accepted without a client certificate; expected rejection"
    if outcome == "rejected":
        return "rejected the client's identity; expected acceptance" if with_identity else \
            "rejected a client without a certificate; expected acceptance"
    return "the probe gave no result; expected %s" % expect


def _registered_results(registered):
    return list(registered.get("results") or []) if isinstance(registered, dict) else []


def verify_probes(clients, client_vars, service_hosts=()):
    """The probes fleet.mtls.verify's probe play made, one entry per probe, for summarize_probes.

    ``clients``: the mtls_clients hosts, in inventory order; ``client_vars``: a mapping from each client to
    its variables, with what the probe play registered (``_mtls_verify_identity``, ``_mtls_verify_with``,
    ``_mtls_verify_without``) and its ``mtls_dir``; ``service_hosts``: the NGINX and Mosquitto hosts.

    With no service host there is nothing to probe (the play ends at once): no entry. A probe with the
    client identity that was skipped because the client has none is an error naming the directory it
    looked in. A client that registered no probe without a certificate (the play's last probe) was
    unreachable or failed before probing: one error entry for it, so its failure shows in the table."""
    if not list(service_hosts or []):
        return []
    probes = []
    for client in clients or []:
        variables = client_vars.get(client) or {}
        without = variables.get("_mtls_verify_without")
        if not isinstance(without, dict) or "results" not in without:
            probes.append({"client": client, "target": "all services", "protocol": "-", "with_identity": True,
                           "expect": "accepted",
                           "result": {"outcome": "error", "error": "client unreachable or failed before probing"}})
            continue
        identity = variables.get("_mtls_verify_identity") or ""
        no_identity = {"outcome": "error",
                       "error": "no client identity installed in %s/certs" % (variables.get("mtls_dir") or "/etc/mtls")}
        for result in _registered_results(variables.get("_mtls_verify_with")):
            item = result.get("item") or {}
            probes.append({"client": client, "target": item.get("label"), "protocol": item.get("protocol"),
                           "with_identity": True, "identity": identity or "none found",
                           "expect": item.get("with_identity"),
                           "result": no_identity if result.get("skipped") else result})
        for result in _registered_results(without):
            item = result.get("item") or {}
            probes.append({"client": client, "target": item.get("label"), "protocol": item.get("protocol"),
                           "with_identity": False, "expect": item.get("without_identity"), "result": result})
    return probes


def summarize_probes(probes):
    """Judge each probe against its expectation.

    ``probes``: list of ``{"client", "target", "protocol", "with_identity", "expect", "result"}``
    with ``result`` a ``fleet.mtls.tls_probe`` result. Its ``outcome`` is ``accepted``, ``rejected``
    or ``error``; an error (no connection, unverifiable server, module failure) fails whatever was
    expected: "rejected" must mean the server refused the client, not that it was down.
    """
    rows = []
    for probe in probes or []:
        result = probe.get("result") or {}
        expect = probe.get("expect")
        if expect not in ("accepted", "rejected"):
            raise MtlsError("probe of %s from %s has expect=%r (expected accepted or rejected)"
                            % (probe.get("target"), probe.get("client"), expect))
        stage = result.get("stage")
        outcome = result.get("outcome")
        if outcome not in ("accepted", "rejected") or result.get("failed"):
            outcome = "error"
        detail = result.get("error") or result.get("msg") or ""
        if outcome != expect and not detail:
            detail = _unexpected_outcome(outcome, expect, probe.get("with_identity"))
        rows.append({
            "client": str(probe.get("client")),
            "target": str(probe.get("target")),
            "protocol": probe.get("protocol") or "tls",
            "identity": (probe.get("identity") or "with") if probe.get("with_identity") else "none",
            "expect": expect,
            "outcome": outcome,
            "stage": stage,
            "detail": detail if outcome != expect else "",
            "result": "PASS" if outcome == expect else "FAIL",
        })
    rows.sort(key=lambda row: (row["client"], row["target"], row["protocol"], row["identity"]))
    failures = [row for row in rows if row["result"] == "FAIL"]
    table = format_table(rows, PROBE_COLUMNS) if rows else "no probes were run"
    table += "\n\n%d probe(s), %d passed, %d failed" % (len(rows), len(rows) - len(failures), len(failures))
    return {"rows": rows, "failures": failures, "table": table, "passed": not failures and bool(rows)}
