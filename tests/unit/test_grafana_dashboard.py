# -*- coding: utf-8 -*-
"""The Grafana dashboard (docs/grafana/fleet-mtls-dashboard.json) and the exporter cannot drift apart:
every metric a PromQL expression names is one the report emits, with labels it carries, and every
metric the report emits is on the dashboard."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from test_report_metrics import IN_CI, PROMTOOL, _fleet  # noqa: E402
from report_helpers import fleet_generations  # noqa: E402

from ansible_collections.fleet.mtls.plugins.module_utils import report as report_lib  # noqa: E402

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana" / "fleet-mtls-dashboard.json"
# Labels Prometheus adds when it scrapes node_exporter's textfile collector.
TARGET_LABELS = {"job", "instance"}
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "and", "or",
                "unless", "inf", "nan"}
_STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'')
_MATCHERS = re.compile(r"\{([^}]*)\}")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_RANGE = re.compile(r"\[[^\]]*\]")
_NAME = re.compile(r"(?<![\w.$])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?")


def metric_references(expr):
    """``[(metric, {label names in its matchers})]`` and the grouping labels of a PromQL expression."""
    label_values = re.fullmatch(r"\s*label_values\(\s*([a-zA-Z_:][\w:]*)\s*,\s*(\w+)\s*\)\s*", expr)
    if label_values:
        return [(label_values.group(1), {label_values.group(2)})], set()
    references, grouping = [], set()
    # Matchers belong to the name just before them: record, then drop them (and strings, ranges).
    without_strings = _STRING.sub('""', expr)
    for match in _GROUPING.finditer(without_strings):
        grouping.update(label.strip() for label in match.group(2).split(",") if label.strip())
    text = _RANGE.sub("", _GROUPING.sub(" ", without_strings))
    position = 0
    while True:
        name = _NAME.search(text, position)
        if not name:
            break
        position = name.end()
        if name.group(2) or name.group(1) in PROMQL_WORDS:
            continue  # a function call or a keyword
        labels = set()
        matchers = re.match(r"\s*\{([^}]*)\}", text[position:])
        if matchers:
            labels = {re.split(r"\s*(=~|!~|!=|=)", part.strip())[0] for part in matchers.group(1).split(",")
                      if part.strip()}
            position += matchers.end()
        references.append((name.group(1), labels))
    return references, grouping


def test_reference_parser_finds_names_not_functions_labels_or_numbers():
    refs, grouping = metric_references(
        'sort(bottomk(30, max by (host, identity) (mtls_a{host=~"$host", status!="ok"}[5m] offset 1h)'
        ' - time())) / 86400 + on(host) group_left(serial) mtls_b or vector(1e9)')
    assert refs == [("mtls_a", {"host", "status"}), ("mtls_b", set())]
    assert grouping == {"host", "identity", "serial"}
    assert metric_references("label_values(mtls_c, host)") == ([("mtls_c", {"host"})], set())


@pytest.fixture(scope="module")
def dashboard():
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def emitted():
    """``{metric: label names}`` of every family the report emits with at least one sample."""
    text = report_lib.report_prometheus(_fleet(fleet_generations()))
    return dict((family.name, set(family.samples[0].labels)) for family in text_string_to_metric_families(text)
                if family.samples)


def _expressions(dashboard):
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            yield "variable " + variable["name"], variable["definition"]


def test_dashboard_is_importable_json(dashboard):
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 36
    assert [item["name"] for item in dashboard["__inputs"]] == ["DS_PROMETHEUS"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert set(panel["gridPos"]) == {"x", "y", "w", "h"} and panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
            assert panel["targets"] and panel["description"], panel["title"]
            assert len({target["refId"] for target in panel["targets"]}) == len(panel["targets"])


def test_every_expression_names_only_emitted_metrics_with_their_labels(dashboard, emitted):
    assert set(emitted) == set(report_lib.METRIC_NAMES)
    for where, expr in _expressions(dashboard):
        references, grouping = metric_references(expr)
        assert references, (where, expr)
        for metric, labels in references:
            assert metric in emitted, "%s: %s is not emitted by the report" % (where, metric)
            assert labels <= emitted[metric] | TARGET_LABELS, (where, metric, labels - emitted[metric])
        known = set().union(*(emitted[metric] for metric, _labels in references)) | TARGET_LABELS
        assert grouping <= known, (where, grouping - known)


def test_every_emitted_metric_is_on_the_dashboard(dashboard, emitted):
    used = {metric for _where, expr in _expressions(dashboard) for metric, _labels in metric_references(expr)[0]}
    assert used == set(emitted), set(emitted) ^ used


def test_dashboard_shows_what_the_report_is_for(dashboard):
    titles = " | ".join(panel["title"] for panel in dashboard["panels"]).lower()
    for topic in ("not inspected", "expiry", "crl", "rotation phase", "retired ca"):
        assert topic in titles, topic


def test_every_expression_is_valid_promql(dashboard, tmp_path):
    """Prometheus' own parser (promtool check rules) reads every panel's expression."""
    if not PROMTOOL:
        if IN_CI:
            pytest.fail("promtool is missing in CI: tools/setup-host.sh installs the prometheus package")
        pytest.skip("promtool is not installed (Debian package prometheus)")
    rules = [{"record": "dashboard:panel_%d" % index, "expr": expr}
             for index, (where, expr) in enumerate(_expressions(dashboard)) if not where.startswith("variable ")]
    path = tmp_path / "dashboard-rules.yml"
    # JSON is YAML: no YAML library needed to write the rule file.
    path.write_text(json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}), encoding="utf-8")
    result = subprocess.run([PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: %d rules found" % len(rules) in result.stdout
