"""tests/bench/bench_handshake.py: /proc stat parsing, CPU deltas, ratios, targets, MQTT packet."""

import importlib.util
import os
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "tests" / "bench" / "bench_handshake.py"

# A real nginx worker line (proc(5) layout): utime 1234, stime 567.
NGINX_STAT = ("4242 (nginx) S 4241 4241 4241 0 -1 4194624 3105 0 0 0 1234 567 0 0 20 0 1 0 "
              "123456 11111111 2222 18446744073709551615 1 1 0 0 0 0 0 16781312 1073774599 0 0 0 17 1 0 0 0 0 0")


@pytest.fixture(name="bench", scope="module")
def fixture_bench():
    spec = importlib.util.spec_from_file_location("bench_handshake", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_proc_stat_gives_utime_and_stime(bench):
    assert bench.parse_proc_stat(NGINX_STAT) == (1234, 567)


def test_proc_stat_command_with_spaces_and_parentheses(bench):
    line = NGINX_STAT.replace("(nginx)", "(nginx: worker) (x))")
    assert bench.parse_proc_stat(line) == (1234, 567)


def test_proc_stat_of_this_process(bench):
    with open("/proc/%d/stat" % os.getpid()) as handle:
        utime, stime = bench.parse_proc_stat(handle.read())
    assert utime >= 0 and stime >= 0


@pytest.mark.parametrize("text", ["", "4242 nginx S 1 2 3", "4242 (nginx) S 1 2 3"])
def test_proc_stat_rejects_what_is_not_a_stat_line(bench, text):
    with pytest.raises(ValueError):
        bench.parse_proc_stat(text)


def test_cpu_delta_sums_every_worker_and_counts_new_ones_whole(bench):
    before = {10: (100, 50), 11: (200, 0)}
    after = {10: (130, 60), 11: (205, 5), 12: (7, 3)}
    assert bench.cpu_delta_ticks(before, after) == 40 + 10 + 10
    assert bench.cpu_ticks(after) == 410


def test_cpu_delta_refuses_a_worker_that_went_away(bench):
    with pytest.raises(ValueError, match="11"):
        bench.cpu_delta_ticks({10: (1, 1), 11: (1, 1)}, {10: (2, 2)})


def test_cpu_delta_refuses_time_going_backwards(bench):
    with pytest.raises(ValueError, match="backwards"):
        bench.cpu_delta_ticks({10: (100, 100)}, {10: (1, 1)})


def test_ms_per_handshake(bench):
    # 150 ticks at 100 Hz = 1.5 s over 1,000 handshakes = 1.5 ms each.
    assert bench.ms_per_handshake(150, 100, 1000) == pytest.approx(1.5)
    with pytest.raises(ValueError):
        bench.ms_per_handshake(150, 100, 0)


def row(server, config, tls, mode, ms):
    return {"server": server, "config": config, "tls": tls, "mode": mode, "ms": ms}


def test_ratios_compare_within_server_tls_and_mode(bench):
    rows = bench.add_ratios([
        row("nginx", "oneway", "TLSv1.3", "full", 0.5), row("nginx", "mtls", "TLSv1.3", "full", 0.8),
        row("nginx", "tutorial", "TLSv1.3", "full", 2.0), row("nginx", "mtls", "TLSv1.2", "full", 9.0),
        row("mosquitto", "oneway", "TLSv1.3", "full", 0.1)])
    mtls13 = rows[1]
    assert mtls13["ratio_oneway"] == pytest.approx(1.6)
    assert mtls13["ratio_tutorial"] == pytest.approx(0.4)
    assert rows[0]["ratio_oneway"] == pytest.approx(1.0)
    # No TLS 1.2 reference measured: no ratio, never one from another TLS version or server.
    assert rows[3]["ratio_oneway"] is None and rows[3]["ratio_tutorial"] is None
    assert rows[4]["ratio_tutorial"] is None


def test_ratio_without_a_reference(bench):
    assert bench.ratio(1.0, 0) is None
    assert bench.ratio(None, 1.0) is None
    assert bench.ratio(3.0, 2.0) == pytest.approx(1.5)


def test_targets_are_judged_on_the_mtls_rows(bench):
    rows = bench.add_ratios([
        row("nginx", "oneway", "TLSv1.3", "full", 1.0), row("nginx", "mtls", "TLSv1.3", "full", 1.9),
        row("nginx", "tutorial", "TLSv1.3", "full", 3.0),
        row("nginx", "oneway", "TLSv1.3", "resumed", 1.0), row("nginx", "mtls", "TLSv1.3", "resumed", 1.2),
        row("nginx", "tutorial", "TLSv1.3", "resumed", 1.0)])
    verdicts = dict(((v[2], v[3]), v) for v in bench.check_targets(rows))
    assert set(verdicts) == {("full", "ratio_oneway"), ("full", "ratio_tutorial"), ("resumed", "ratio_oneway")}
    assert verdicts[("full", "ratio_oneway")][6] is True          # 1.9 <= 2
    assert verdicts[("full", "ratio_tutorial")][6] is False       # 0.63 > 0.5
    assert verdicts[("resumed", "ratio_oneway")][6] is False      # 1.2 > 1.15


def test_median_rows_merge_rounds(bench):
    def measured(ms, handshakes=100):
        return dict(row("nginx", "mtls", "TLSv1.2", "full", ms), handshakes=handshakes, resumed=0, rate=10.0)
    merged = bench.median_rows([[measured(1.0)], [measured(3.0, 50)], [measured(2.0)]])
    assert len(merged) == 1
    assert merged[0]["ms"] == 2.0 and merged[0]["handshakes"] == 250 and merged[0]["ms_all"] == [1.0, 3.0, 2.0]


def test_markdown_table_has_one_line_per_row(bench):
    rows = bench.add_ratios([dict(row("nginx", "oneway", "TLSv1.2", "full", 0.5), handshakes=10, resumed=0, rate=5.0),
                             dict(row("nginx", "mtls", "TLSv1.2", "full", 1.0), handshakes=10, resumed=0, rate=5.0)])
    lines = bench.markdown_table(rows).splitlines()
    assert len(lines) == 4
    assert lines[3] == "| nginx | mtls | 1.2 | full | 10 (0) | 1.000 | 2.00 | - | 5 |"


def test_mqtt_connect_packet(bench):
    packet = bench.mqtt_connect_packet("bench-1")
    assert packet[0] == 0x10 and packet[1] == len(packet) - 2
    assert packet[2:8] == b"\x00\x04MQTT" and packet[8] == 4
    assert packet.endswith(b"\x00\x07bench-1")
    with pytest.raises(ValueError):
        bench.mqtt_connect_packet("x" * 200)


def test_podman_top_hpids(bench):
    out = ("HPID        COMMAND\n"
           "5001        nginx: master process nginx\n"
           "5002        nginx: worker process\n"
           "5003        nginx: worker process\n"
           "5004        mosquitto -c /etc/mosquitto/mosquitto.conf\n")
    assert bench.parse_top_hpids(out, "nginx: worker process") == [5002, 5003]
    assert bench.parse_top_hpids(out, "mosquitto") == [5004]


def test_podman_top_hpids_match_the_command_start_only(bench):
    out = ("HPID        COMMAND\n"
           "6001        /bin/sh -c install -d -o mosquitto /run/mosquitto && exec mosquitto -c x\n")
    assert bench.parse_top_hpids(out, "mosquitto") == []


def test_oneway_turns_off_exactly_the_client_certificate_line(bench, tmp_path):
    conf = tmp_path / "nginx.conf"
    conf.write_text("server {\n    ssl_verify_client on;\n    ssl_verify_depth 2;\n}\n")
    bench.turn_off(str(conf), "    ssl_verify_client on;\n", "    ssl_verify_client off;\n")
    assert conf.read_text() == "server {\n    ssl_verify_client off;\n    ssl_verify_depth 2;\n}\n"
    # Already off (or a template that changed its wording): refused, never a silent mTLS "one-way".
    with pytest.raises(SystemExit, match="ssl_verify_client on"):
        bench.turn_off(str(conf), "    ssl_verify_client on;\n", "    ssl_verify_client off;\n")
