# -*- coding: utf-8 -*-
"""Prometheus metrics of the fleet report: names and units by convention, labels, hosts that could not
be inspected, CA generation states and rotation phases, and `promtool check metrics` on the output."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from report_helpers import DAY, NOW, Generation, ca_input, fleet_generations, host, info, pem  # noqa: E402

from ansible_collections.fleet.mtls.plugins.module_utils import report as report_lib  # noqa: E402
from ansible_collections.fleet.mtls.plugins.module_utils.errors import MtlsError  # noqa: E402
from ansible_collections.fleet.mtls.plugins.module_utils.rotation import GENERATION_STATES, PHASES  # noqa: E402

PROMTOOL = shutil.which("promtool")
IN_CI = os.environ.get("CI") == "true"


@pytest.fixture(scope="module")
def generations():
    return fleet_generations()


def _families(text):
    return {family.name: family for family in text_string_to_metric_families(text)}


def _by(family, *labels):
    return {tuple(sample.labels[label] for label in labels): sample.value for sample in family.samples}


def _fleet(generations, previous=None, hosts=None):
    gen = generations["3"]
    bundle = pem(gen.root, gen.issuing)
    hosts = hosts if hosts is not None else [
        host("web1", [{"identity": "web1", "info": info(60, serial="1f"), "chain_pem": gen.leaf_chain("web1")},
                      {"identity": 'odd"name\\with\nnewline', "info": info(3), "chain_pem": gen.leaf_chain("odd")}],
             bundle + pem(generations["1"].root)),
        host("client1", [{"identity": "client1", "info": info(-2, profile="client"),
                          "chain_pem": gen.leaf_chain("c1")}], bundle),
        {"host": "db1", "error": "unreachable: ssh timed out"},
    ]
    crls = [{"ca": "issuing-3", "next_update": report_lib.isoformat(NOW + 5 * DAY),
             "this_update": report_lib.isoformat(NOW - 2 * DAY), "crl_number": 4},
            {"ca": "root-3"}]
    return report_lib.build_report(hosts, ca_input(generations, crls), warn_days=14, now=NOW, previous=previous)


def _promtool(text):
    if not PROMTOOL:
        if IN_CI:
            pytest.fail("promtool is missing in CI: tools/setup-host.sh installs the prometheus package")
        pytest.skip("promtool is not installed (Debian package prometheus)")
    return subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True,
                          timeout=60, check=False)


# ---------------------------------------------------------------- names, units, labels


def test_emitted_families_are_exactly_the_declared_ones(generations):
    families = _families(report_lib.report_prometheus(_fleet(generations)))
    assert sorted(families) == sorted(report_lib.METRIC_NAMES)
    for name, labels, _help in report_lib.METRICS:
        family = families[name]
        assert family.type == "gauge" and family.documentation
        for sample in family.samples:
            assert sample.name == name
            assert tuple(sorted(sample.labels)) == tuple(sorted(labels)), name


def test_names_follow_prometheus_conventions():
    for name in report_lib.METRIC_NAMES:
        assert re.match(r"^mtls_[a-z_]+$", name)
        # Points in time are *_timestamp_seconds; nothing is counted in days.
        assert "days" not in name and "expiry" not in name
        if "timestamp" in name or "update" in name or name.endswith(("not_after", "not_before")):
            assert name.endswith("_timestamp_seconds"), name
    old = {"mtls_certificate_expiry_seconds", "mtls_certificate_days_left", "mtls_crl_next_update_seconds"}
    assert not old & set(report_lib.METRIC_NAMES)


def test_certificate_times_and_labels(generations):
    families = _families(report_lib.report_prometheus(_fleet(generations)))
    not_after = _by(families["mtls_certificate_not_after_timestamp_seconds"], "host", "identity", "issuer_generation")
    assert not_after == {("web1", "web1", "3"): (NOW + 60 * DAY).timestamp(),
                         ("web1", 'odd"name\\with\nnewline', "3"): (NOW + 3 * DAY).timestamp(),
                         ("client1", "client1", "3"): (NOW - 2 * DAY).timestamp()}
    not_before = _by(families["mtls_certificate_not_before_timestamp_seconds"], "host", "identity")
    assert set(not_before.values()) == {(NOW - 10 * DAY).timestamp()}
    assert _by(families["mtls_certificate_info"], "identity", "serial", "profile") == {
        ("web1", "1f", "server"): 1, ('odd"name\\with\nnewline', "0a", "server"): 1, ("client1", "0a", "client"): 1}
    status = _by(families["mtls_certificate_status"], "host", "identity", "status")
    assert status[("client1", "client1", "expired")] == 1
    assert status[("web1", "web1", "ok")] == 1
    # A state set: exactly one status is 1 per certificate.
    assert len(status) == 3 * len(report_lib.CERT_STATUSES) and sum(status.values()) == 3


def test_crl_presence_and_next_update_per_ca(generations):
    families = _families(report_lib.report_prometheus(_fleet(generations)))
    assert _by(families["mtls_crl_present"], "ca") == {("issuing-3",): 1, ("root-3",): 0}
    assert _by(families["mtls_crl_next_update_timestamp_seconds"], "ca") == {
        ("issuing-3",): (NOW + 5 * DAY).timestamp()}


# ---------------------------------------------------------------- hosts that could not be inspected


def test_unreachable_host_is_visible_and_never_healthy(generations):
    report = _fleet(generations)
    families = _families(report_lib.report_prometheus(report))
    assert _by(families["mtls_host_inspect_success"], "host") == {("web1",): 1, ("client1",): 1, ("db1",): 0}
    # Health metrics exist only for hosts that were looked at: db1 is not "0 = fine".
    assert _by(families["mtls_host_trusts_retired_ca"], "host") == {("web1",): 1, ("client1",): 0}
    assert ("db1",) not in _by(families["mtls_host_trust_bundle_present"], "host")
    last = _by(families["mtls_host_last_inspected_timestamp_seconds"], "host")
    assert last == {("web1",): NOW.timestamp(), ("client1",): NOW.timestamp()}
    assert report["summary"]["hosts_not_inspected"] == 1
    assert "db1 could not be inspected: unreachable: ssh timed out" in report["problems"]


def test_unreachable_host_keeps_its_certificates_from_the_previous_report(generations):
    gen = generations["3"]
    earlier = NOW - 3 * DAY
    first = report_lib.build_report(
        [host("db1", [{"identity": "db1", "info": info(20, serial="77"), "chain_pem": gen.leaf_chain("db1")},
                      {"identity": "old", "info": info(-0.5), "chain_pem": gen.leaf_chain("old")}],
              pem(gen.root, gen.issuing))],
        ca_input(generations), now=earlier)
    # The playbook hands over the JSON file's text.
    report = _fleet(generations, previous=report_lib.report_json(first))
    carried = [row for row in report["certificates"] if row["host"] == "db1"]
    assert {row["identity"]: row["status"] for row in carried} == {"db1": "not_inspected", "old": "expired"}
    assert all(row["inspected"] is False for row in carried)
    db1 = [row for row in carried if row["identity"] == "db1"][0]
    assert db1["days_left"] == 20.0 and db1["serial"] == "77"
    assert "as last seen %s" % report_lib.isoformat(earlier) in db1["reasons"][0]
    families = _families(report_lib.report_prometheus(report))
    status = _by(families["mtls_certificate_status"], "host", "identity", "status")
    assert status[("db1", "db1", "not_inspected")] == 1 and status[("db1", "db1", "ok")] == 0
    assert _by(families["mtls_certificate_not_after_timestamp_seconds"], "host", "identity")[("db1", "db1")] == \
        (NOW + 20 * DAY).timestamp()
    assert _by(families["mtls_host_last_inspected_timestamp_seconds"], "host")[("db1",)] == earlier.timestamp()
    assert _by(families["mtls_host_inspect_success"], "host")[("db1",)] == 0
    assert [row["certificates_carried_over"] for row in report["hosts"] if row["host"] == "db1"] == [2]
    # Once it answers again, its own certificates replace what was carried over.
    back = report_lib.build_report([host("db1", [], pem(gen.root, gen.issuing))], ca_input(generations),
                                   now=NOW, previous=report_lib.report_json(report))
    assert back["certificates"] == [] and back["hosts"][0]["inspected"] is True


def test_a_host_carried_over_twice_keeps_its_first_inspection_time(generations):
    gen = generations["3"]
    earlier = NOW - 5 * DAY
    seen = report_lib.build_report([host("db1", [{"identity": "db1", "info": info(30), "chain_pem": gen.leaf_chain("x")}],
                                         pem(gen.root))], ca_input(generations), now=earlier)
    down = {"host": "db1", "error": "unreachable"}
    once = report_lib.build_report([down], ca_input(generations), now=NOW - DAY, previous=seen)
    twice = report_lib.build_report([down], ca_input(generations), now=NOW, previous=once)
    assert twice["hosts"][0]["last_inspected"] == report_lib.isoformat(earlier)
    assert [row["status"] for row in twice["certificates"]] == ["not_inspected"]


@pytest.mark.parametrize("previous", ["{not json", '{"format": 2}', "[1]"])
def test_a_previous_report_that_is_not_one_is_an_error(generations, previous):
    with pytest.raises(MtlsError, match="previous report"):
        _fleet(generations, previous=previous)


# ---------------------------------------------------------------- CA generations and rotation


@pytest.mark.parametrize("phase", PHASES)
def test_report_mid_rotation_with_a_generation_in_each_state(phase):
    """rotation.py's four states (incoming included) are the report's: one definition."""
    assert report_lib.GENERATION_STATES is GENERATION_STATES
    gens = {str(index + 1): Generation(str(index + 1), state) for index, state in enumerate(GENERATION_STATES)}
    incoming, active, retiring, retired = (gens[str(index + 1)] for index in range(4))
    bundle = pem(incoming.root, incoming.issuing, active.root, active.issuing, retiring.root, retiring.issuing)
    hosts = [host("h%s" % gen.id, [{"identity": "leaf", "info": info(60), "chain_pem": gen.leaf_chain("leaf")}], bundle)
             for gen in gens.values()]
    ca = {"rotation": {"active": 2, "rotation": {"scope": "root", "from": 2, "to": 1, "phase": phase,
                                                 "phase_completed": "2026-06-01T00:00:00Z"}},
          "generations": [gen.as_input() for gen in gens.values()], "crls": []}
    report = report_lib.build_report(hosts, ca, warn_days=14, now=NOW)
    assert {row["host"]: (row["issuer_generation"], row["status"]) for row in report["certificates"]} == {
        "h1": ("1", "ok"), "h2": ("2", "ok"), "h3": ("3", "renew_soon"), "h4": ("4", "untrusted_issuer")}
    families = _families(report_lib.report_prometheus(report))
    states = _by(families["mtls_ca_generation_state"], "generation", "state")
    assert {key for key, value in states.items() if value == 1} == {
        ("1", "incoming"), ("2", "active"), ("3", "retiring"), ("4", "retired")}
    assert len(states) == 4 * len(GENERATION_STATES)
    assert _by(families["mtls_ca_rotation_phase"], "phase") == dict(((name,), int(name == phase)) for name in PHASES)
    assert families["mtls_ca_rotation_phase_completed"].samples[0].value == 1
    assert families["mtls_ca_active_generation"].samples[0].value == 2


def test_between_rotations_every_phase_is_zero(generations):
    ca = ca_input(generations)
    ca["rotation"] = {"active": 3, "rotation": None}
    families = _families(report_lib.report_prometheus(report_lib.build_report([], ca, now=NOW)))
    assert set(_by(families["mtls_ca_rotation_phase"], "phase").values()) == {0}
    assert families["mtls_ca_rotation_phase_completed"].samples == []


def test_unknown_rotation_phase_is_an_error(generations):
    ca = ca_input(generations)
    ca["rotation"]["rotation"]["phase"] = "drop"
    with pytest.raises(MtlsError, match="phase 'drop'"):
        report_lib.build_report([], ca, now=NOW)


# ---------------------------------------------------------------- the file itself


def test_promtool_accepts_the_textfile(generations):
    text = report_lib.report_prometheus(_fleet(generations))
    result = _promtool(text)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "" and result.stderr.strip() == ""


def test_promtool_accepts_an_empty_fleet():
    text = report_lib.report_prometheus(report_lib.build_report([], None, now=NOW))
    families = _families(text)
    assert families["mtls_report_timestamp_seconds"].samples[0].value == NOW.timestamp()
    assert families["mtls_certificate_not_after_timestamp_seconds"].samples == []
    result = _promtool(text)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_check_can_fail():
    """The check is not a rubber stamp: a duration named in days and a broken line are refused."""
    result = _promtool("# HELP x_days_total a\n# TYPE x_days_total counter\nx_days_total 1\nbroken{ 1\n")
    assert result.returncode != 0


def test_every_sample_line_is_one_line_with_escaped_labels(generations):
    text = report_lib.report_prometheus(_fleet(generations))
    assert text.endswith("\n")
    assert all(line.startswith(("#", "mtls_")) for line in text.splitlines())
    assert 'identity="odd\\"name\\\\with\\nnewline"' in text


def test_registry_is_built_per_report(generations):
    first = report_lib.report_registry(_fleet(generations))
    second = report_lib.report_registry(report_lib.build_report([], None, now=NOW))
    assert first is not second
    assert first.get_sample_value("mtls_host_inspect_success", {"host": "db1"}) == 0
    assert second.get_sample_value("mtls_host_inspect_success", {"host": "db1"}) is None
