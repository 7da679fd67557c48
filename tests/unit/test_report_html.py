# -*- coding: utf-8 -*-
"""The self-contained HTML report: structure, ordering, escaping and that it loads nothing from anywhere."""

from __future__ import annotations

import os
import re
import sys
from html.parser import HTMLParser

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from report_helpers import DAY, NOW, ca_input, fleet_generations, host, info, pem  # noqa: E402

from ansible_collections.fleet.mtls.plugins.module_utils import report as report_lib  # noqa: E402
from ansible_collections.fleet.mtls.plugins.module_utils.report_html import report_html  # noqa: E402


class Page(HTMLParser):
    """Every start tag with its attributes, in order, plus the text of each <li> and <td>."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.tags = []
        self.texts = []
        self.open_tags = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in ("meta", "br", "rect", "line", "circle", "path"):
            self.open_tags.append(tag)

    def handle_endtag(self, tag):
        if tag in self.open_tags:
            while self.open_tags.pop() != tag:
                pass

    def handle_data(self, data):
        self.texts.append((tuple(self.open_tags), data))

    def find(self, tag, **attrs):
        return [found for name, found in self.tags if name == tag
                and all(found.get(key.replace("_", "-")) == value for key, value in attrs.items())]


def fleet_report(previous=None):
    generations = fleet_generations()
    gen = generations["3"]
    bundle = pem(gen.root, gen.issuing)
    hosts = [
        host("web1", [{"identity": "web1", "info": info(60), "chain_pem": gen.leaf_chain("web1")},
                      {"identity": "<script>alert(1)</script>", "info": info(3), "chain_pem": gen.leaf_chain("x")}],
             bundle + pem(generations["1"].root)),
        host("client1", [{"identity": "client1", "info": info(-2), "chain_pem": gen.leaf_chain("c1")}], bundle),
        host("api1", [{"identity": "api1", "info": info(45, revoked=True), "chain_pem": gen.leaf_chain("api1")}],
             bundle),
        {"host": "db1", "error": "unreachable: ssh timed out"},
    ]
    crls = [{"ca": "issuing-3", "next_update": report_lib.isoformat(NOW + 5 * DAY),
             "this_update": report_lib.isoformat(NOW - 2 * DAY), "crl_number": 4},
            {"ca": "root-3", "next_update": report_lib.isoformat(NOW + 0.5 * DAY), "crl_number": 2},
            {"ca": "issuing-2"}]
    return report_lib.build_report(hosts, ca_input(generations, crls), warn_days=14, crl_warn_days=1, now=NOW,
                                   previous=previous)


@pytest.fixture(scope="module")
def report():
    return fleet_report()


@pytest.fixture(scope="module")
def page(report):
    return Page(report_html(report))


def test_page_is_one_document_with_the_sections(page):
    assert [tag for tag, _attrs in page.tags[:3]] == ["html", "head", "meta"]
    assert page.tags[2][1] == {"charset": "utf-8"}
    for element_id in ("summary", "attention", "rotation-phase", "timeline", "certificates", "crls", "hosts"):
        assert len([attrs for _tag, attrs in page.tags if attrs.get("id") == element_id]) == 1, element_id


def test_loads_nothing_from_anywhere(report):
    text = report_html(report)
    page = Page(text)
    assert not page.find("script") and not page.find("link") and not page.find("img") and not page.find("iframe")
    for _tag, attrs in page.tags:
        for name in ("src", "href", "xlink:href", "srcset", "action", "data", "poster"):
            assert name not in attrs, (name, attrs)
    assert not re.search(r"(src|href)\s*=\s*[\"']?\s*(https?:)?//", text, re.IGNORECASE)
    assert "url(" not in text and "@import" not in text and "@font-face" not in text
    csp = page.find("meta", http_equiv="Content-Security-Policy")
    assert csp and csp[0]["content"].startswith("default-src 'none'")


def test_every_certificate_crl_and_host_has_its_row(report, page):
    rows = [attrs for tag, attrs in page.tags if tag == "tr" and "data-identity" in attrs]
    # Four certificates plus the row of db1, which could not be inspected.
    assert [(row["data-host"], row["data-status"]) for row in rows] == [
        ("api1", "revoked"), ("client1", "expired"), ("db1", "not_inspected"), ("web1", "renew_soon"),
        ("web1", "ok")]
    assert [row["data-ca"] for row in page.find("tr") if "data-ca" in row] == ["issuing-2", "issuing-3", "root-3"]
    assert {row["data-host"]: row["data-inspected"] for row in page.find("tr") if "data-inspected" in row} == {
        "api1": "yes", "client1": "yes", "db1": "no", "web1": "yes"}
    timeline = [attrs for tag, attrs in page.tags if tag == "g" and attrs.get("class") == "timeline-row"]
    assert [(row["data-kind"], row["data-status"]) for row in timeline] == [
        ("certificate", "revoked"), ("certificate", "expired"), ("certificate", "not_inspected"),
        ("certificate", "renew_soon"), ("certificate", "ok"),
        ("crl", "missing"), ("crl", "ok"), ("crl", "renew_soon")]


def test_needs_attention_first_is_ordered_by_urgency(page):
    items = [attrs["data-status"] for tag, attrs in page.tags if tag == "li"]
    assert items == ["revoked", "expired", "not_inspected", "missing", "untrusted_issuer", "renew_soon",
                     "renew_soon"]


def test_rotation_phase_and_generations(page):
    phase = page.find("p", id="rotation-phase")[0]
    assert phase["data-phase"] == "reissue"
    text = "".join(data for tags, data in page.texts if "p" in tags)
    assert "root rotation from generation 2 to 3: phase reissue in progress" in text
    assert {row["data-generation"]: row["data-state"] for row in page.find("tr") if "data-generation" in row} == {
        "1": "retired", "2": "retiring", "3": "active"}


def test_timeline_bars_span_not_before_to_not_after(report):
    text = report_html(report)
    svg = text[text.index('<svg id="timeline"'):text.index("</svg>")]
    bars = re.findall(r'<rect x="([0-9.]+)" y="[0-9]+" width="([0-9.]+)" height="12"', svg)
    # Five dated rows (db1 has no dates, issuing-2 no CRL): four leaves and two CRLs.
    assert len(bars) == 6
    widths = sorted(float(width) for _x, width in bars)
    # web1 (10 + 60 days) is the longest bar; issuing-3's CRL (7 days) is shorter than every leaf.
    assert widths[-1] > 4 * widths[0]
    assert "now" in svg and "warn (14 d)" in svg


def test_values_are_escaped(report):
    text = report_html(report)
    assert "<script>alert(1)</script>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text


def test_empty_fleet_still_renders():
    page = Page(report_html(report_lib.build_report([], None, now=NOW)))
    assert page.find("p", id="attention")
    assert page.find("svg", id="timeline")
    assert not page.find("table", id="certificates")
