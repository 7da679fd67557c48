# -*- coding: utf-8 -*-
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fleet certificate report and probe summary: classification and output formats.

Pure Python on the controller (no cryptography, no Ansible): the ``fleet.mtls.report`` playbook
gathers ``cert_info`` results, PEM texts and the CA rotation state, and this module turns them into
rows, a terminal table, a JSON document and a Prometheus textfile-collector file. The
``fleet.mtls.verify`` playbook uses ``summarize_probes`` for its end-of-run table.

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

# Worst first: a row gets the first status whose condition holds.
CERT_STATUSES = ("unreadable", "revoked", "expired", "untrusted_issuer", "renew_soon", "ok")
CRL_STATUSES = ("missing", "expired", "renew_soon", "ok")
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
            if state not in ("active", "retiring", "retired"):
                raise MtlsError("CA generation %s has unknown state %r (expected active, retiring or retired)"
                                % (gen_id, state))
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
        "issuer_generation": "unknown",
        "not_after": None,
        "days_left": None,
        "expiry_timestamp": None,
        "status": "ok",
        "reasons": [],
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
    return row


def _crl_row(crl, now, warn_days):
    row = {"ca": str(crl.get("ca") or ""), "next_update": None, "next_update_timestamp": None,
           "days_left": None, "crl_number": crl.get("crl_number"), "status": "ok"}
    if not crl.get("next_update"):
        row["status"] = "missing"
        return row
    next_update = parse_time(crl["next_update"], "next_update of the CRL of %s" % row["ca"])
    row["next_update"] = isoformat(next_update)
    row["next_update_timestamp"] = int(_epoch(next_update))
    row["days_left"] = _days_between(next_update, now)
    if next_update <= now:
        row["status"] = "expired"
    elif row["days_left"] <= warn_days:
        row["status"] = "renew_soon"
    return row


def build_report(hosts, ca=None, warn_days=30, crl_warn_days=2, now=None):
    """Classify every certificate, CRL and host trust bundle.

    ``hosts``: list of ``{"host", "error", "trust_bundle_fingerprints" or "trust_bundle_pem",
    "certificates": [{"identity", "path", "info", "chain_pem"}]}`` where ``info`` is the
    ``fleet.mtls.cert_info`` result for the leaf's chain file (with ``all=true`` its
    ``certificates`` give the issuing CA; otherwise ``chain_pem`` does) and ``error`` says why a
    host could not be inspected.
    ``ca``: ``{"rotation": <rotation.json>, "generations": [{"id", "state", "root_pem" or
    "root_fingerprints", "issuing_pem" or "issuing_fingerprints"}], "crls": [{"ca", "next_update",
    "crl_number"}]}`` or None when the CA holder was not read.
    """
    warn_days = _check_days(warn_days, "warn_days")
    crl_warn_days = _check_days(crl_warn_days, "crl_warn_days")
    now = parse_time(now, "now") if now is not None else utcnow()
    ca = ca or {}
    generations = Generations(ca.get("generations"))

    certificates, host_rows = [], []
    for host in sorted(hosts or [], key=lambda entry: str(entry.get("host"))):
        name = str(host.get("host"))
        for item in host.get("certificates") or []:
            certificates.append(_certificate_row(name, item, generations, now, warn_days))
        bundle = fingerprints_of(host, "trust_bundle")
        retired = generations.retired_trusted(bundle)
        host_rows.append({"host": name, "reachable": not host.get("error"), "error": host.get("error"),
                          "trust_bundle_found": bool(bundle),
                          "trusts_retired_ca": bool(retired), "retired_generations": retired})
    certificates.sort(key=lambda row: (row["host"], row["identity"]))
    crls = sorted((_crl_row(crl, now, crl_warn_days) for crl in ca.get("crls") or []),
                  key=lambda row: row["ca"])

    summary = dict((status, 0) for status in CERT_STATUSES)
    for row in certificates:
        summary[row["status"]] += 1
    summary["hosts_trusting_retired_ca"] = sum(1 for row in host_rows if row["trusts_retired_ca"])
    summary["crls_needing_attention"] = sum(1 for row in crls if row["status"] != "ok")

    problems = []
    for row in certificates:
        if row["status"] != "ok":
            problems.append("%s %s: %s (%s)" % (row["host"], row["identity"], row["status"],
                                                "; ".join(row["reasons"])))
    for row in crls:
        if row["status"] != "ok":
            when = "" if row["next_update"] is None else " (next update %s)" % row["next_update"]
            problems.append("CRL of %s: %s%s" % (row["ca"], row["status"], when))
    for row in host_rows:
        if row["error"]:
            problems.append("%s could not be inspected: %s" % (row["host"], row["error"]))
            continue
        if row["trusts_retired_ca"]:
            problems.append("%s trusts retired CA generation(s) %s" % (row["host"], ", ".join(row["retired_generations"])))
        if not row["trust_bundle_found"]:
            problems.append("%s has no trust bundle" % row["host"])

    rotation = ca.get("rotation") or {}
    return {
        "format": 1,
        "generated_at": isoformat(now),
        "generated_timestamp": int(_epoch(now)),
        "warn_days": warn_days,
        "crl_warn_days": crl_warn_days,
        "ca": {"active_generation": rotation.get("active"), "phase": rotation.get("phase"),
               "generations": [{"id": str(g.get("id")), "state": g.get("state") or "active"}
                               for g in ca.get("generations") or []]},
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


def report_table(report):
    """The terminal view: certificates, CRLs, hosts trusting a retired CA and a summary line."""
    parts = [format_table(report["certificates"], CERTIFICATE_COLUMNS) if report["certificates"]
             else "no certificates found"]
    if report["crls"]:
        parts.append(format_table(report["crls"], CRL_COLUMNS))
    retired = [row for row in report["hosts"] if row["trusts_retired_ca"]]
    if retired:
        parts.append(format_table(
            [{"host": row["host"], "generations": ", ".join(row["retired_generations"])} for row in retired],
            [("host", "HOST TRUSTING A RETIRED CA"), ("generations", "GENERATIONS")]))
    summary = report["summary"]
    parts.append("%d certificate(s): %s; %d host(s) trust a retired CA; %d CRL(s) need attention" % (
        len(report["certificates"]),
        ", ".join("%s %d" % (status, summary[status]) for status in CERT_STATUSES if summary[status]) or "none",
        summary["hosts_trusting_retired_ca"], summary["crls_needing_attention"]))
    return "\n\n".join(parts)


def report_json(report):
    return json.dumps(report, indent=2, sort_keys=True) + "\n"


def _escape_label_value(value):
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text):
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _sample_value(value):
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return "%d" % value
    return repr(float(value))


class _Exposition:
    """Prometheus text exposition format 0.0.4: one HELP/TYPE header per family, then its samples."""

    def __init__(self):
        self.lines = []

    def family(self, name, help_text, samples, metric_type="gauge"):
        self.lines.append("# HELP %s %s" % (name, _escape_help(help_text)))
        self.lines.append("# TYPE %s %s" % (name, metric_type))
        for labels, value in samples:
            rendered = ",".join('%s="%s"' % (key, _escape_label_value(val)) for key, val in labels)
            self.lines.append("%s{%s} %s" % (name, rendered, _sample_value(value)) if rendered
                              else "%s %s" % (name, _sample_value(value)))

    def text(self):
        return "\n".join(self.lines) + "\n"


def report_prometheus(report):
    """Metrics for node_exporter's textfile collector."""
    out = _Exposition()
    readable = [row for row in report["certificates"] if row["expiry_timestamp"] is not None]

    def cert_labels(row):
        return (("host", row["host"]), ("identity", row["identity"]), ("issuer_generation", row["issuer_generation"]))

    out.family("mtls_certificate_expiry_seconds",
               "Unix time at which the certificate expires (its notAfter).",
               [(cert_labels(row), row["expiry_timestamp"]) for row in readable])
    out.family("mtls_certificate_days_left",
               "Days until the certificate expires when the report was made (negative once expired).",
               [(cert_labels(row), row["days_left"]) for row in readable])
    out.family("mtls_certificate_status",
               "1 for the certificate's current status, 0 for the others.",
               [((("host", row["host"]), ("identity", row["identity"]), ("status", status)),
                 row["status"] == status)
                for row in report["certificates"] for status in CERT_STATUSES])
    out.family("mtls_crl_next_update_seconds",
               "Unix time of the nextUpdate of the CA's current CRL.",
               [((("ca", row["ca"]),), row["next_update_timestamp"])
                for row in report["crls"] if row["next_update_timestamp"] is not None])
    out.family("mtls_host_trusts_retired_ca",
               "1 if the host's trust bundle still holds a certificate of a retired CA generation.",
               [((("host", row["host"]),), row["trusts_retired_ca"]) for row in report["hosts"]])
    out.family("mtls_report_timestamp_seconds",
               "Unix time at which the fleet.mtls report was made.",
               [((), report["generated_timestamp"])])
    return out.text()


# ---------------------------------------------------------------- verify


PROBE_COLUMNS = [("client", "CLIENT"), ("target", "TARGET"), ("protocol", "PROTOCOL"),
                 ("identity", "IDENTITY"), ("expect", "EXPECT"), ("outcome", "OUTCOME"), ("result", "RESULT"),
                 ("detail", "DETAIL")]


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
