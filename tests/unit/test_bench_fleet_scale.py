"""tests/bench/bench_fleet_scale.py: inventory, aggregation, ratios, prediction and plot data."""

import importlib.util
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "tests" / "bench" / "bench_fleet_scale.py"


@pytest.fixture(name="bench", scope="module")
def fixture_bench():
    spec = importlib.util.spec_from_file_location("bench_fleet_scale", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(wall, cpu=1.0, status="ok", pss=50.0):
    return {"status": status, "wall_seconds": wall, "cpu_seconds": cpu, "peak_tree_pss_mb": pss,
            "max_single_rss_mb": pss / 2}


def test_host_names_are_unique_sorted_and_padded(bench):
    assert bench.host_names(3) == ["host0001", "host0002", "host0003"]
    names = bench.host_names(12345)
    assert names[0] == "host00001" and names[-1] == "host12345"
    assert len(set(names)) == 12345 and names == sorted(names)


@pytest.mark.parametrize("count, due", [(1, 1), (9, 1), (10, 1), (100, 10), (1000, 100), (105, 10)])
def test_a_tenth_of_the_hosts_is_due_at_least_one(bench, count, due):
    names = bench.host_names(count)
    chosen = bench.due_hosts(names)
    assert len(chosen) == due
    assert set(chosen) <= set(names)
    assert len(set(chosen)) == len(chosen)


def test_due_hosts_are_spread_over_the_fleet(bench):
    chosen = bench.due_hosts(bench.host_names(100))
    assert chosen == ["host%04d" % n for n in range(1, 100, 10)]


def test_inventory_gives_each_host_its_own_directories_and_renews_only_the_due(bench, tmp_path):
    base = str(tmp_path)
    inventory = bench.build_inventory(base, 20, "/venv/bin/python", due={"host0001", "host0011"})
    json.dumps(inventory)  # written as JSON: must serialise
    top = inventory["all"]
    assert top["vars"]["ansible_connection"] == "local"
    assert top["vars"]["ansible_python_interpreter"] == "/venv/bin/python"
    assert top["vars"]["mtls_ca_dir"].startswith(base)
    assert list(top["children"]["mtls_ca"]["hosts"]) == [bench.CA_HOST]
    clients = top["children"]["mtls_clients"]["hosts"]
    assert sorted(clients) == bench.host_names(20)
    dirs = [host["mtls_dir"] for host in clients.values()] + [host["bench_cc_dir"] for host in clients.values()]
    assert len(set(dirs)) == 40 and all(d.startswith(base) for d in dirs)
    assert sorted(name for name, host in clients.items() if "mtls_identity_renew_days" in host) == ["host0001", "host0011"]
    # Renewal is forced through the renewal window: more days than any leaf lives.
    assert clients["host0001"]["mtls_identity_renew_days"] > 90


def test_inventory_without_due_hosts_renews_nobody(bench, tmp_path):
    clients = bench.build_inventory(str(tmp_path), 5, "python")["all"]["children"]["mtls_clients"]["hosts"]
    assert not any("mtls_identity_renew_days" in host for host in clients.values())


def test_community_crypto_pattern_signs_on_the_ca_host(bench):
    play = bench.cc_playbook("secret")[0]
    assert play["hosts"] == "mtls_clients"
    modules = [next(key for key in task if "." in key) for task in play["tasks"]]
    assert modules == ["community.crypto.openssl_privatekey", "community.crypto.openssl_csr_pipe",
                       "ansible.builtin.slurp", "community.crypto.x509_certificate_pipe",
                       "ansible.builtin.copy", "ansible.builtin.copy"]
    sign = play["tasks"][3]
    assert sign["delegate_to"] == bench.CA_HOST
    assert sign["community.crypto.x509_certificate_pipe"]["provider"] == "ownca"
    assert sign["community.crypto.x509_certificate_pipe"]["ownca_privatekey_passphrase"] == "secret"


RECAP_OUTPUT = """\
TASK [x] ***
changed: [host0001]

PLAY RECAP *********************************************************************
bench-ca                   : ok=12   changed=0    unreachable=0    failed=0    skipped=4    rescued=0    ignored=0
host0001                   : ok=16   changed=3    unreachable=0    failed=0    skipped=10   rescued=0    ignored=0
host0002                   : ok=12   changed=0    unreachable=1    failed=2    skipped=14   rescued=1    ignored=5
"""


def test_recap_totals(bench):
    totals = bench.parse_recap(RECAP_OUTPUT)
    assert totals == {"hosts": 3, "ok": 40, "changed": 3, "unreachable": 1, "failed": 2, "skipped": 28,
                      "rescued": 1, "ignored": 5}


def test_recap_lines_before_the_recap_do_not_count(bench):
    text = "host0009 : ok=1 changed=1 unreachable=0 failed=0 skipped=0 rescued=0 ignored=0\n"
    assert bench.parse_recap(text)["hosts"] == 0
    assert bench.parse_recap("")["changed"] == 0


def test_changed_hosts_compares_digests_and_missing_files(bench):
    before = {"a": "1", "b": "2", "c": None}
    after = {"a": "1", "b": "3", "c": "4"}
    assert bench.changed_hosts(before, after) == ["b", "c"]
    assert bench.changed_hosts(before, dict(before)) == []


def test_median_ignores_missing_values(bench):
    assert bench.median([3.0, None, 1.0, 2.0]) == 2.0
    assert bench.median([None]) is None
    assert bench.median([1.0, 2.0]) == 1.5


def test_summary_medians_over_completed_rounds_and_names_the_first_failure(bench):
    rounds = [
        {10: {"site_first": run(10.0, cpu=4.0), "cc_first": run(30.0)}},
        {10: {"site_first": run(14.0, cpu=6.0), "cc_first": {"status": "timed_out", "reason": "killed after 5 s"}}},
        {10: {"site_first": run(12.0, cpu=5.0), "cc_first": run(40.0)}},
    ]
    summary = bench.summarise(rounds)
    site = summary[10]["site_first"]
    assert site["status"] == "ok" and site["runs"] == 3 and site["completed"] == 3
    assert site["wall_seconds"] == 12.0 and site["cpu_seconds"] == 5.0
    assert site["cpu_seconds_per_host"] == 0.5 and site["wall_seconds_per_host"] == 1.2
    cc = summary[10]["cc_first"]
    assert cc["status"] == "timed_out" and cc["reason"] == "killed after 5 s"
    assert cc["completed"] == 2 and cc["wall_seconds"] == 35.0


def test_summary_of_a_run_that_never_completed(bench):
    summary = bench.summarise([{100: {"rotate_due": {"status": "skipped", "reason": "site_first timed out"}}}])
    entry = summary[100]["rotate_due"]
    assert entry["status"] == "skipped" and entry["wall_seconds"] is None and entry["cpu_seconds_per_host"] is None


def test_ratios_divide_community_crypto_by_fleet_mtls_within_one_size(bench):
    summary = bench.summarise([{10: {"site_first": run(10.0, cpu=2.0), "cc_first": run(25.0, cpu=8.0),
                                     "site_noop": run(5.0), "cc_rerun": run(20.0),
                                     "rotate_noop": {"status": "failed", "reason": "exit status 2"}}}])
    wall = bench.ratios(summary)[10]
    assert wall["first run: community.crypto / fleet.mtls.site"] == 2.5
    assert wall["nothing to do: community.crypto rerun / fleet.mtls.site"] == 4.0
    assert wall["nothing to do: community.crypto rerun / fleet.mtls.rotate"] is None
    assert bench.ratios(summary, "cpu_seconds")[10]["first run: community.crypto / fleet.mtls.site"] == 4.0


def test_prediction_needs_two_sizes(bench):
    assert bench.predict([], 1000) is None
    assert bench.predict([(10, 20.0)], 100) is None
    # Linear through the two largest sizes: 20 s at 10, 110 s at 100 -> 1 s/host + 10 s.
    assert bench.predict([(1, 99.0), (10, 20.0), (100, 110.0)], 1000) == pytest.approx(1010.0)
    # A time that fell with size is noise: fall back to proportional growth from the largest.
    assert bench.predict([(10, 50.0), (100, 40.0)], 1000) == 400.0


def test_kind_selection_adds_what_a_run_depends_on(bench):
    assert bench.select_kinds("rotate_due") == ["site_first", "site_noop", "rotate_noop", "rotate_due"]
    assert bench.select_kinds("cc_rerun, site_first") == ["site_first", "cc_first", "cc_rerun"]
    with pytest.raises(ValueError, match="--kinds"):
        bench.select_kinds("rotate")


def test_sizes_and_forks(bench):
    assert bench.parse_sizes("1000,10, 100,10") == [10, 100, 1000]
    with pytest.raises(ValueError):
        bench.parse_sizes("0,10")
    assert [bench.default_forks(n) for n in (1, 10, 50, 1000)] == [1, 10, 50, 50]


def test_plot_series_keeps_completed_medians_in_size_order(bench):
    summary = bench.summarise([{100: {"site_first": run(120.0), "cc_first": {"status": "timed_out"}},
                                10: {"site_first": run(15.0), "cc_first": run(30.0)}}])
    series = bench.plot_series(summary)
    assert series == {"site_first": [(10, 15.0), (100, 120.0)], "cc_first": [(10, 30.0)]}
    expected_cpu = {"site_first": [(10, 1.0), (100, 1.0)], "cc_first": [(10, 1.0)]}
    assert bench.plot_series(summary, "cpu_seconds") == expected_cpu


def test_svg_plot_is_well_formed_with_one_line_and_marker_per_point(bench):
    series = {"site_first": [(10, 15.0), (100, 120.0), (1000, 1100.0)], "cc_first": [(10, 30.0), (100, 300.0)]}
    svg = bench.svg_plot(series, "Fleet <scale> & time")
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    lines = root.findall(ns + "polyline")
    assert len(lines) == 2
    assert len(root.findall(ns + "circle")) == 5
    # Log-log: equal ratios give equal distances; larger values are higher up (smaller y).
    points = [tuple(map(float, p.split(","))) for p in lines[0].get("points").split()]
    assert points[1][0] - points[0][0] == pytest.approx(points[2][0] - points[1][0])
    assert points[0][1] > points[1][1] > points[2][1]
    assert "Fleet &lt;scale&gt; &amp; time" in svg


def test_markdown_table_has_a_row_per_run_kind_and_marks_runs_not_done(bench):
    summary = bench.summarise([{10: {"site_first": run(10.0), "cc_first": run(25.0)},
                                100: {"site_first": {"status": "skipped", "reason": "predicted 2000 s > --max-seconds 1200"}}}])
    table = bench.markdown_table(summary, {10: 10, 100: 50})
    lines = table.splitlines()
    assert lines[0] == "| run | N=10 (forks 10) | N=100 (forks 50) |"
    assert all(line.count("|") == 4 for line in lines)
    site = next(line for line in lines if line.startswith("| fleet.mtls.site, first run"))
    assert "10 s" in site and "skipped (predicted 2000 s > --max-seconds 1200)" in site
    assert "not run" in next(line for line in lines if line.startswith("| fleet.mtls.rotate, nothing to do |"))
    assert "2.50×" in next(line for line in lines if line.startswith("| ratio first run"))


def test_module_python_runs_the_real_interpreter_and_records_its_cpu(bench, tmp_path):
    import subprocess
    import sys
    python, log = bench.write_module_python(str(tmp_path), sys.executable)
    assert bench.module_cpu(log) == (0, 0.0)
    # Burns some CPU in the child, reads stdin and answers on stdout, exits non-zero: all pass through.
    program = "import sys; sum(i * i for i in range(2_000_000)); print(sys.stdin.read().upper()); sys.exit(3)"
    done = subprocess.run([python, "-c", program], input="module args", capture_output=True, text=True,
                          timeout=60, check=False)
    assert (done.returncode, done.stdout.strip()) == (3, "MODULE ARGS")
    subprocess.run([python, "-c", "pass"], check=True, timeout=60)
    runs, seconds = bench.module_cpu(log)
    assert runs == 2 and seconds > 0.05


def test_summary_splits_cpu_into_controller_and_module_runs_per_host(bench):
    measured = dict(run(10.0, cpu=30.0), controller_cpu_seconds=10.0, module_cpu_seconds=20.0, module_runs=40)
    entry = bench.summarise([{20: {"rotate_noop": measured}}])[20]["rotate_noop"]
    assert entry["controller_cpu_seconds_per_host"] == 0.5 and entry["module_cpu_seconds_per_host"] == 1.0
    assert entry["module_runs_per_host"] == 2.0
    table = bench.markdown_table(bench.summarise([{20: {"rotate_noop": measured}}]), {20: 20})
    assert "| fleet.mtls.rotate, nothing to do: controller CPU s per host | 0.50 |" in table


def test_a_seeded_host_declares_the_reference_identity_under_its_own_names(bench):
    entry = {"name": "host0001", "common_name": "host0001", "profile": "client", "key_type": "ec_p256",
             "sans": ["DNS:localhost", "DNS:host0001", "DNS:host0001.fleet.test", "IP:192.0.2.2"],
             "renew_days": None, "owner": "root"}
    seeded = bench.renamed_identity(entry, "host0001", "host0042")
    assert seeded == dict(entry, name="host0042", common_name="host0042",
                          sans=["DNS:localhost", "DNS:host0042", "DNS:host0042.fleet.test", "IP:192.0.2.2"])
    assert entry["name"] == "host0001" and entry["sans"][1] == "DNS:host0001"  # the reference's entry is kept
    assert bench.renamed_identity({"name": "api", "sans": []}, "host0001", "host0042") == {"name": "api", "sans": []}


def test_a_noop_run_that_changed_something_is_reported(bench):
    assert bench.noop_check("site_noop", {"changed": 0}) is None
    assert bench.noop_check("rotate_noop", {"changed": 3}) == "changed=3 on a fleet with nothing to do"
    # Runs that are meant to change things are not checked here.
    assert bench.noop_check("rotate_due", {"changed": 30}) is None
    assert bench.noop_check("site_first", {"changed": 400}) is None
