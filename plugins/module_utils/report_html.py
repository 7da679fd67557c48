# -*- coding: utf-8 -*-
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet report as one self-contained HTML page.

Everything is inline: the styles, the expiry timeline (an SVG drawn here) and the tables. The page
loads nothing (no scripts, fonts, images or style sheets from anywhere), and its Content-Security-Policy
says so to the browser, so it can be mailed, attached to a ticket or opened from a file share.
Pure Python, from the data ``report.build_report`` returns.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime

from ansible_collections.fleet.mtls.plugins.module_utils.compat import UTC
from ansible_collections.fleet.mtls.plugins.module_utils.report import (
    ATTENTION_FIRST, CERT_STATUSES, SECONDS_PER_DAY, certificate_table_rows)

try:
    from html import escape as _html_escape
except ImportError:  # Python 2 only; the controller runs Python 3.
    from cgi import escape as _html_escape

# Colours by status: red for what is broken now, orange for what is due, grey for what could not be seen.
STATUS_COLOURS = {
    "unreadable": "#b71c1c", "revoked": "#b71c1c", "expired": "#b71c1c", "untrusted_issuer": "#c2185b",
    "not_inspected": "#616161", "renew_soon": "#e65100", "ok": "#2e7d32", "missing": "#b71c1c",
}
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:24px;color:#212121;
background:#fafafa;font-size:14px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
.meta{color:#616161;margin:0 0 16px}
.tiles{display:flex;flex-wrap:wrap;gap:10px}
.tile{background:#fff;border:1px solid #ddd;border-left:6px solid #9e9e9e;border-radius:4px;padding:8px 14px;min-width:110px}
.tile b{display:block;font-size:22px}
table{border-collapse:collapse;background:#fff;border:1px solid #ddd}
th,td{padding:4px 10px;border-bottom:1px solid #eee;text-align:left;vertical-align:top}
th{background:#f0f0f0;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums}
td.date{white-space:nowrap}
.badge{display:inline-block;color:#fff;border-radius:3px;padding:0 6px;font-size:12px;line-height:18px;white-space:nowrap}
ol.attention li{margin:4px 0}
.none{color:#2e7d32}
svg{background:#fff;border:1px solid #ddd;max-width:100%;height:auto}
svg text{font-family:system-ui,"DejaVu Sans",sans-serif;font-size:12px;fill:#212121}
svg .axis{font-size:11px;fill:#616161}
"""

# Timeline geometry (SVG user units).
_LABEL_WIDTH = 300
_CHART_WIDTH = 760
_RIGHT_MARGIN = 70
_ROW_HEIGHT = 22
_TOP = 34


def _e(value):
    return _html_escape("-" if value is None else str(value), quote=True)


def _badge(status):
    return '<span class="badge" style="background:%s">%s</span>' % (STATUS_COLOURS.get(status, "#616161"), _e(status))


def _epoch(moment):
    return (moment - datetime.datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()


def _timeline_rows(report):
    rows = []
    for row in certificate_table_rows(report):
        label = "%s  %s" % (row["host"], row["identity"] if row["identity"] is not None else "(host not inspected)")
        rows.append({"kind": "certificate", "label": label, "host": row["host"], "name": row["identity"] or "",
                     "status": row["status"], "start": row.get("not_before_timestamp"),
                     "end": row.get("expiry_timestamp"), "days_left": row.get("days_left"),
                     "what": "notAfter %s" % (row.get("not_after") or "unknown")})
    for crl in report["crls"]:
        rows.append({"kind": "crl", "label": "CRL  %s" % crl["ca"], "host": "", "name": crl["ca"],
                     "status": crl["status"], "start": crl.get("this_update_timestamp"),
                     "end": crl.get("next_update_timestamp"), "days_left": crl.get("days_left"),
                     "what": "nextUpdate %s" % (crl.get("next_update") or "none: no CRL")})
    return rows


def _tick_step_days(span_days):
    for step in (1, 2, 7, 14, 30, 61, 91, 182, 365, 730, 1825):
        if span_days / step <= 10:
            return step
    return 3650


def _timeline_svg(report):
    rows = _timeline_rows(report)
    now = float(report["generated_timestamp"])
    warn = now + report["warn_days"] * SECONDS_PER_DAY
    moments = [now - 7 * SECONDS_PER_DAY, warn + 7 * SECONDS_PER_DAY]
    for row in rows:
        moments.extend(value for value in (row["start"], row["end"]) if value is not None)
    low, high = min(moments), max(moments)
    step = _tick_step_days((high - low) / SECONDS_PER_DAY)
    # Start the axis at a midnight so the ticks fall on dates.
    low = _epoch(datetime.datetime.fromtimestamp(low, UTC).replace(hour=0, minute=0, second=0, microsecond=0))
    scale = _CHART_WIDTH / (high - low)

    def x(moment):
        return _LABEL_WIDTH + (moment - low) * scale

    height = _TOP + len(rows) * _ROW_HEIGHT + 28
    width = _LABEL_WIDTH + _CHART_WIDTH + _RIGHT_MARGIN
    out = ['<svg id="timeline" role="img" width="%d" height="%d" '
           'viewBox="0 0 %d %d" aria-label="Expiry timeline of every certificate and CRL">' % (width, height, width, height)]
    bottom = _TOP + len(rows) * _ROW_HEIGHT
    tick = low
    while tick <= high:
        out.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#eee"/>' % (x(tick), _TOP - 6, x(tick), bottom))
        out.append('<text class="axis" x="%.1f" y="%d" text-anchor="middle">%s</text>' % (
            x(tick), _TOP - 12, datetime.datetime.fromtimestamp(tick, UTC).strftime("%Y-%m-%d")))
        tick += step * SECONDS_PER_DAY
    for index, row in enumerate(rows):
        top = _TOP + index * _ROW_HEIGHT
        colour = STATUS_COLOURS.get(row["status"], "#616161")
        title = "%s: %s, %s" % (row["label"], row["status"], row["what"])
        out.append('<g class="timeline-row" data-kind="%s" data-host="%s" data-name="%s" data-status="%s">' % (
            row["kind"], _e(row["host"]), _e(row["name"]), _e(row["status"])))
        out.append('<title>%s</title>' % _e(title))
        if index % 2:
            out.append('<rect x="0" y="%d" width="%d" height="%d" fill="#f7f7f7"/>' % (top, width, _ROW_HEIGHT))
        out.append('<text x="6" y="%d">%s</text>' % (top + 15, _e(row["label"][:44])))
        if row["end"] is None:
            out.append('<text x="%d" y="%d" fill="%s" style="fill:%s">%s</text>' % (
                _LABEL_WIDTH + 4, top + 15, colour, colour, _e("no dates: " + row["status"])))
        else:
            end = x(row["end"])
            start = x(row["start"]) if row["start"] is not None else max(_LABEL_WIDTH, end - 4)
            out.append('<rect x="%.1f" y="%d" width="%.1f" height="%d" rx="3" fill="%s"/>' % (
                start, top + 5, max(end - start, 3), _ROW_HEIGHT - 10, colour))
            days = "" if row["days_left"] is None else (
                "%.1f d" if abs(row["days_left"]) < 10 else "%.0f d") % row["days_left"]
            out.append('<text x="%.1f" y="%d">%s</text>' % (end + 4, top + 15, _e(days)))
        out.append('</g>')
    for moment, colour, label, dash in ((now, "#1565c0", "now", ""),
                                        (warn, "#e65100", "warn (%g d)" % report["warn_days"], ' stroke-dasharray="5,4"')):
        out.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s" stroke-width="1.5"%s/>' % (
            x(moment), _TOP - 4, x(moment), bottom, colour, dash))
        out.append('<text class="axis" x="%.1f" y="%d" text-anchor="middle" style="fill:%s">%s</text>' % (
            x(moment), bottom + 16, colour, _e(label)))
    out.append('</svg>')
    return "\n".join(out)


def _attention_items(report):
    """What needs attention, most urgent first: broken certificates, missing or expired CRLs, hosts
    trusting a retired CA or without a bundle, then what is merely due."""
    rows = [row for row in certificate_table_rows(report) if row["status"] != "ok"]
    items = []

    def certificate_item(row):
        name = row["identity"] if row["identity"] is not None else "(host not inspected)"
        return (row["status"], "%s %s" % (row["host"], name), "; ".join(row["reasons"]))

    items.extend(certificate_item(row) for row in rows if row["status"] in ATTENTION_FIRST)
    items.extend((crl["status"], "CRL of %s" % crl["ca"], "next update %s" % (crl["next_update"] or "none"))
                 for crl in report["crls"] if crl["status"] in ("missing", "expired"))
    for host in report["hosts"]:
        if host["trusts_retired_ca"]:
            items.append(("untrusted_issuer", host["host"],
                          "trusts retired CA generation(s) %s" % ", ".join(host["retired_generations"])))
        if host["inspected"] and not host["trust_bundle_found"]:
            items.append(("missing", host["host"], "has no trust bundle"))
    items.extend(certificate_item(row) for row in rows if row["status"] not in ATTENTION_FIRST)
    items.extend((crl["status"], "CRL of %s" % crl["ca"], "next update %s" % crl["next_update"])
                 for crl in report["crls"] if crl["status"] == "renew_soon")
    return items


def _table(table_id, headers, rows):
    out = ['<table id="%s"><thead><tr>%s</tr></thead><tbody>' % (
        table_id, "".join("<th>%s</th>" % _e(header) for header in headers))]
    for attributes, cells in rows:
        out.append("<tr%s>%s</tr>" % (
            "".join(' data-%s="%s"' % (key, _e(value)) for key, value in attributes),
            "".join(cell for cell in cells)))
    out.append("</tbody></table>")
    return "".join(out)


def _td(value, numeric=False, raw=False, date=False):
    css = ' class="num"' if numeric else ' class="date"' if date else ""
    return '<td%s>%s</td>' % (css, value if raw else _e(value))


def _rotation_html(ca):
    if ca.get("phase"):
        state = "%s rotation from generation %s to %s: phase <b>%s</b> %s" % (
            _e(ca.get("scope") or "CA"), _e(ca.get("from")), _e(ca.get("to")), _e(ca["phase"]),
            "completed on the whole fleet" if ca.get("phase_completed") else "in progress")
    else:
        state = "no rotation under way"
    lines = ['<p id="rotation-phase" data-phase="%s">Active generation <b>%s</b>; %s.</p>' % (
        _e(ca.get("phase") or "none"), _e(ca.get("active_generation")), state)]
    if ca.get("generations"):
        lines.append(_table("generations", ["generation", "state"], [
            ((("generation", g["id"]), ("state", g["state"])), [_td(g["id"]), _td(g["state"])])
            for g in ca["generations"]]))
    else:
        lines.append("<p>The CA holder's rotation state was not read.</p>")
    return "\n".join(lines)


def report_html(report):
    """The report as a self-contained HTML page (text)."""
    summary = report["summary"]
    rows = certificate_table_rows(report)
    tiles = [("certificates", len(report["certificates"]), "#1565c0")]
    tiles.extend((status, summary[status], STATUS_COLOURS[status]) for status in CERT_STATUSES if summary[status])
    tiles.append(("hosts not inspected", summary["hosts_not_inspected"],
                  STATUS_COLOURS["not_inspected"] if summary["hosts_not_inspected"] else "#2e7d32"))
    tiles.append(("CRLs needing attention", summary["crls_needing_attention"],
                  STATUS_COLOURS["renew_soon"] if summary["crls_needing_attention"] else "#2e7d32"))
    attention = _attention_items(report)

    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" content="%s">' % _CSP,
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>fleet.mtls report %s</title>" % _e(report["generated_at"]),
        "<style>%s</style></head><body>" % _STYLE,
        "<h1>fleet.mtls certificate report</h1>",
        '<p class="meta">Made %s. A leaf is renew_soon with %g day(s) or fewer left, a CRL with %g '
        'day(s) or fewer to its next update.</p>' % (_e(report["generated_at"]), report["warn_days"], report["crl_warn_days"]),
        '<div class="tiles" id="summary">%s</div>' % "".join(
            '<div class="tile" style="border-left-color:%s"><b>%d</b>%s</div>' % (colour, count, _e(label))
            for label, count, colour in tiles),
        '<h2>Needs attention first</h2>',
    ]
    if attention:
        parts.append('<ol class="attention" id="attention">%s</ol>' % "".join(
            '<li data-status="%s">%s <b>%s</b>: %s</li>' % (_e(status), _badge(status), _e(what), _e(why))
            for status, what, why in attention))
    else:
        parts.append('<p class="none" id="attention">Nothing: every certificate, CRL and trust bundle is ok.</p>')
    parts.extend([
        "<h2>CA rotation</h2>", _rotation_html(report["ca"]),
        "<h2>Expiry timeline</h2>",
        "<p>Each bar runs from notBefore to notAfter (for a CRL: thisUpdate to nextUpdate), coloured by status.</p>",
        _timeline_svg(report),
        "<h2>Certificates, most urgent first</h2>",
        _table("certificates", ["host", "identity", "generation", "serial", "not after", "days left", "status",
                                "reasons"], [
            ((("host", row["host"]), ("identity", row["identity"] or ""), ("status", row["status"])),
             [_td(row["host"]), _td(row["identity"]), _td(row.get("issuer_generation")), _td(row.get("serial")),
              _td(row.get("not_after"), date=True), _td(row.get("days_left"), numeric=True), _td(_badge(row["status"]), raw=True),
              _td("; ".join(row["reasons"]))])
            for row in rows]) if rows else "<p>No certificates found.</p>",
        "<h2>CRLs</h2>",
        _table("crls", ["CA", "CRL number", "next update", "days left", "status"], [
            ((("ca", crl["ca"]), ("status", crl["status"])),
             [_td(crl["ca"]), _td(crl["crl_number"], numeric=True), _td(crl["next_update"], date=True),
              _td(crl["days_left"], numeric=True), _td(_badge(crl["status"]), raw=True)])
            for crl in report["crls"]]) if report["crls"] else "<p>No CRL state was read.</p>",
        "<h2>Hosts</h2>",
        _table("hosts", ["host", "inspected", "last inspected", "trust bundle", "trusts a retired CA", "why not inspected"], [
            ((("host", host["host"]), ("inspected", "yes" if host["inspected"] else "no")),
             [_td(host["host"]), _td(_badge("ok") if host["inspected"] else _badge("not_inspected"), raw=True),
              _td(host["last_inspected"] or "never", date=True),
              _td(None if host["trust_bundle_found"] is None else ("yes" if host["trust_bundle_found"] else "missing")),
              _td(None if host["trusts_retired_ca"] is None else (
                  "yes: generation %s" % ", ".join(host["retired_generations"]) if host["trusts_retired_ca"] else "no")),
              _td(host["error"])])
            for host in report["hosts"]]) if report["hosts"] else "<p>No hosts.</p>",
        "</body></html>",
    ])
    return "\n".join(parts) + "\n"
