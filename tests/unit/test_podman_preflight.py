"""tools/podman_preflight.py: the set-up check that names what keeps containers from running.

The messages below are podman's own words, as seen on Debian 12 (podman 4.3, netavark 1.4,
runc 1.1, crun 1.8) when each piece was missing or misconfigured.
"""

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "podman_preflight.py"


@pytest.fixture(name="preflight", scope="module")
def fixture_preflight():
    spec = importlib.util.spec_from_file_location("podman_preflight", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


def facts(preflight, **overrides):
    values = {"iptables": True, "netavark": True, "aardvark": True, "runtime": "runc", "runtime_found": True}
    values.update(overrides)
    return preflight.Facts(**values)


NETAVARK_ENOENT = "Error: netavark: No such file or directory (os error 2)"
RLIMIT = (
    "Error: runc: runc create failed: unable to start container process: error during container init: "
    "error setting rlimits for ready process: error setting rlimit type 7: operation not permitted: "
    "OCI permission denied"
)
CRUN_HYBRID = "Error: crun: cgroups in hybrid mode not supported, drop all controllers from cgroupv2: OCI runtime error"
NO_RUNTIME = 'Error: default OCI runtime "runc" not found: invalid argument'
DNS = (
    'time="2026-12-02T00:40:36Z" level=warning msg="aardvark-dns binary not found, container dns will not '
    'be enabled"\nname resolution failed for preflight-alias-a1f386c5'
)


@pytest.mark.parametrize(
    ("error", "overrides", "piece", "fix"),
    [
        (NETAVARK_ENOENT, {"iptables": False}, "firewall tool", "apt-get install iptables"),
        (NETAVARK_ENOENT, {"netavark": False, "iptables": False}, "network backend", "apt-get install netavark"),
        (RLIMIT, {}, "ulimits", "default_ulimits"),
        (CRUN_HYBRID, {"runtime": "crun"}, "runtime", 'runtime = "runc"'),
        (NO_RUNTIME, {}, "runtime", "apt-get install runc"),
        ("anything", {"runtime": "runc", "runtime_found": False}, "runtime", "apt-get install runc"),
        (DNS, {"aardvark": False}, "container DNS", "apt-get install aardvark-dns"),
        (DNS, {}, "container DNS", "apt-get install aardvark-dns"),
        ("Error: conmon not found in $PATH", {}, "runtime", "apt-get install conmon"),
    ],
)
def test_names_the_missing_piece_and_its_fix(preflight, error, overrides, piece, fix):
    found = preflight.diagnose(error, facts(preflight, **overrides))
    assert found.piece == piece
    assert fix in found.fix


def test_network_error_with_every_piece_present_is_not_blamed_on_a_package(preflight):
    found = preflight.diagnose("Error: netavark: code: 1, msg: some other failure", facts(preflight))
    assert found.piece == "network backend"
    assert "apt-get" not in found.fix


def test_unknown_error_says_so(preflight):
    assert preflight.diagnose("Error: something new", facts(preflight)).piece == "unknown"


def test_a_passed_stamp_skips_the_check_without_calling_podman(preflight, tmp_path, monkeypatch, capsys):
    stamp = tmp_path / "ok"
    stamp.write_text("digest-1\n")
    monkeypatch.setenv("PATH", str(tmp_path))  # no podman reachable: the check must not need it
    assert preflight.main(["preflight", str(stamp), "digest-1"]) == 0
    assert "passed before" in capsys.readouterr().out


def test_a_changed_fingerprint_runs_the_check_again(preflight, tmp_path, monkeypatch, capsys):
    stamp = tmp_path / "ok"
    stamp.write_text("digest-1\n")
    monkeypatch.setenv("PATH", str(tmp_path))  # podman absent: the re-run fails and says so
    assert preflight.main(["preflight", str(stamp), "digest-2"]) == 1
    assert "podman is not installed" in capsys.readouterr().err
    assert stamp.read_text() == "digest-1\n"


def test_configured_runtime_is_read_from_containers_conf(preflight, tmp_path, monkeypatch):
    conf = tmp_path / "containers.conf"
    conf.write_text('[containers]\ndefault_ulimits = []\n[engine]\nruntime = "runc"\n')
    monkeypatch.setattr(preflight, "CONTAINERS_CONF", str(conf))
    assert preflight.configured_runtime() == "runc"
    conf.write_text("[engine]\n")
    assert preflight.configured_runtime() == "crun"
