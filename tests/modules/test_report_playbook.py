# -*- coding: utf-8 -*-
"""The fleet.mtls.report playbook end to end on the controller: two hosts and a CA holder on local
connections, then one of the hosts unreachable (ssh to a closed loopback port). The playbook writes
the JSON, the HTML page beside it and the textfile; promtool checks the file it wrote; a bad
mtls_report_warn_days stops the run before anything is inspected or written."""

from __future__ import annotations

import datetime
import json
import os
import shutil
import socket
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "unit"))

from conftest import _ansible_playbook, _collections_path  # noqa: E402
from pki_factory import Pki, certs_pem, crl_pem, make_crl, now  # noqa: E402

PROMTOOL = shutil.which("promtool")


def _closed_port():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        return listener.getsockname()[1]


def _write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb" if isinstance(data, bytes) else "w") as handle:
        handle.write(data)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    base = tmp_path_factory.mktemp("report-fleet")
    pki = Pki()
    ca_dir = base / "ca"
    _write(str(ca_dir / "rotation.json"), json.dumps({
        "format": 1, "active": 1, "rotation": None, "history": [],
        "generations": [{"id": 1, "root": "root-1", "issuing": "issuing-1", "state": "active"}]}))
    _write(str(ca_dir / "root-1" / "ca.crt"), certs_pem(pki.root.cert))
    _write(str(ca_dir / "issuing-1" / "ca.crt"), certs_pem(pki.issuing.cert))
    this_update = now() - datetime.timedelta(hours=1)
    _write(str(ca_dir / "issuing-1" / "crl.json"), json.dumps({
        "crl_number": 3, "this_update": this_update.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "next_update": (this_update + datetime.timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ")}))
    # root-1 has no crl.json: its CRL is reported missing.
    crls = crl_pem(make_crl(pki.root), make_crl(pki.issuing))
    for name, days in (("web1", 60), ("db1", 10)):
        host_dir = base / name
        leaf = pki.server("%s.test" % name, days=days)
        _write(str(host_dir / "certs" / (name + ".crt")), leaf.cert_pem)
        _write(str(host_dir / "certs" / (name + ".chain.pem")), leaf.chain_pem)
        # A whole installed identity: the report's renewal check reads the key too.
        os.makedirs(str(host_dir / "private"), mode=0o700)
        with os.fdopen(os.open(str(host_dir / "private" / (name + ".key")), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600),
                       "wb") as handle:
            handle.write(leaf.key_pem())
        _write(str(host_dir / "trust-bundle.pem"), pki.trust_bundle_pem)
        _write(str(host_dir / "crl.pem"), crls)
    return base


def _inventory(base, db1_reachable):
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    db1 = dict(local, mtls_dir=str(base / "db1")) if db1_reachable else {
        "ansible_connection": "ssh", "ansible_host": "127.0.0.1", "ansible_port": _closed_port(),
        "ansible_ssh_common_args": "-o ConnectTimeout=5 -o BatchMode=yes -o StrictHostKeyChecking=no"}
    return {"all": {"children": {
        "mtls_ca": {"hosts": {"ca1": dict(local, mtls_ca_dir=str(base / "ca"))}},
        "mtls_clients": {"hosts": {"web1": dict(local, mtls_dir=str(base / "web1")), "db1": db1}}}}}


def _report(base, db1_reachable=True, extra=()):
    inventory = base / ("inventory-%s.json" % ("up" if db1_reachable else "down"))
    inventory.write_text(json.dumps(_inventory(base, db1_reachable)))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=_collections_path(), ANSIBLE_NOCOLOR="1",
               ANSIBLE_HOST_KEY_CHECKING="false", ANSIBLE_LOCALHOST_WARNING="false",
               ANSIBLE_PYTHON_INTERPRETER=sys.executable)
    command = [_ansible_playbook(), "fleet.mtls.report", "-i", str(inventory),
               "-e", "mtls_report_json=%s" % (base / "out" / "fleet.json"),
               "-e", "mtls_report_prometheus=%s" % (base / "out")] + list(extra)
    (base / "out").mkdir(exist_ok=True)
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=str(base), timeout=300,
                          check=False)


@pytest.fixture(scope="module")
def runs(fleet):
    first = _report(fleet, db1_reachable=True)
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-2000:]
    first_json = json.loads((fleet / "out" / "fleet.json").read_text())
    second = _report(fleet, db1_reachable=False)
    return first, first_json, second


def test_first_run_writes_json_html_and_textfile(fleet, runs):
    _first, report, _second = runs
    assert {row["host"]: row["status"] for row in report["certificates"]} == {"db1": "renew_soon", "web1": "ok"}
    # The host's own renewal check found key, leaf and chain file in order on both.
    assert {row["host"]: row["renewal_reason"] for row in report["certificates"]} == {"db1": "valid", "web1": "valid"}
    assert {row["ca"]: row["status"] for row in report["crls"]} == {"issuing-1": "ok", "root-1": "missing"}
    assert (fleet / "out" / "fleet.html").is_file()
    assert oct((fleet / "out" / "fleet_mtls.prom").stat().st_mode & 0o777) == "0o644"


def test_unreachable_host_is_listed_and_keeps_its_certificates(fleet, runs):
    first, first_json, second = runs
    # An unreachable host makes ansible-playbook exit 4; the report is still written.
    assert second.returncode == 4, second.stdout[-4000:]
    report = json.loads((fleet / "out" / "fleet.json").read_text())
    db1 = [row for row in report["hosts"] if row["host"] == "db1"][0]
    assert db1["inspected"] is False and db1["last_inspected"] == first_json["generated_at"]
    assert [(row["host"], row["status"]) for row in report["certificates"]] == [
        ("db1", "not_inspected"), ("web1", "ok")]
    table = second.stdout
    assert "HOST NOT INSPECTED" in table and "not_inspected" in table
    prom = (fleet / "out" / "fleet_mtls.prom").read_text()
    assert 'mtls_host_inspect_success{host="db1"} 0.0' in prom
    assert 'mtls_host_trusts_retired_ca{host="db1"}' not in prom
    assert 'mtls_certificate_status{host="db1",identity="db1",status="not_inspected"} 1.0' in prom
    html = (fleet / "out" / "fleet.html").read_text()
    assert 'data-host="db1" data-identity="db1" data-status="not_inspected"' in html


def test_written_textfile_passes_promtool(fleet, runs):
    if not PROMTOOL:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool is missing in CI: tools/setup-host.sh installs the prometheus package")
        pytest.skip("promtool is not installed")
    result = subprocess.run([PROMTOOL, "check", "metrics"], stdin=open(fleet / "out" / "fleet_mtls.prom"),
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_bad_warn_days_fails_clearly_and_writes_nothing(fleet, runs):
    before = (fleet / "out" / "fleet.json").read_bytes()
    result = _report(fleet, extra=["-e", "mtls_report_warn_days=abc"])
    assert result.returncode != 0
    assert "mtls_report_warn_days must be a number of days >= 0, got 'abc'" in result.stdout
    # Stopped before any host was inspected.
    assert "Inspect the certificates of every host" not in result.stdout
    assert (fleet / "out" / "fleet.json").read_bytes() == before


def _run(playbook, inventory, cwd, *extra):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=_collections_path(), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_PYTHON_INTERPRETER=sys.executable)
    proc = subprocess.run([_ansible_playbook(), playbook, "-i", str(inventory)] + list(extra), capture_output=True,
                          text=True, env=env, cwd=str(cwd), timeout=900, check=False)
    assert proc.returncode == 0, "%s failed:\n%s\n%s" % (playbook, proc.stdout[-5000:], proc.stderr[-2000:])
    return proc.stdout


def test_report_at_every_phase_of_a_ca_rotation(tmp_path):
    """The CA holder and two clients on local connections: fleet.mtls.site, then a report before the
    rotation and after each phase of fleet.mtls.rotate_ca (root scope). Each report succeeds and
    shows where the rotation stands, incoming generation included."""
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps({"all": {
        "vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                 "mtls_ca_dir": str(tmp_path / "ca"), "mtls_ca_passphrase": "rotation report passphrase",
                 "mtls_identity_gather_facts": False},
        "children": {"mtls_clients": {"hosts": {
            name: {"mtls_dir": str(tmp_path / "hosts" / name)} for name in ("app1", "app2")}}}}}))
    _run("fleet.mtls.site", inventory, tmp_path)
    expected = [
        (None, None, {"1": "active"}),
        ("trust", "trust", {"1": "active", "2": "incoming"}),
        ("reissue", "reissue", {"1": "retiring", "2": "active"}),
        # Completing retire closes the rotation: no phase, generation 1 retired.
        ("retire", None, {"1": "retired", "2": "active"}),
    ]
    out = tmp_path / "out"
    out.mkdir()
    for run_phase, shown_phase, states in expected:
        if run_phase:
            _run("fleet.mtls.rotate_ca", inventory, tmp_path, "-e", "mtls_rotate_ca_scope=root",
                 "-e", "mtls_rotate_ca_phase=%s" % run_phase)
        _run("fleet.mtls.report", inventory, tmp_path, "-e", "mtls_report_json=%s" % (out / "fleet.json"),
             "-e", "mtls_report_prometheus=%s" % out)
        report = json.loads((out / "fleet.json").read_text())
        where = "after phase %s" % run_phase
        assert report["ca"]["phase"] == shown_phase, where
        assert {g["id"]: g["state"] for g in report["ca"]["generations"]} == states, where
        prom = (out / "fleet_mtls.prom").read_text()
        for state in states.values():
            assert 'state="%s"} 1.0' % state in prom, where
        if shown_phase:
            assert 'mtls_ca_rotation_phase{phase="%s"} 1.0' % shown_phase in prom, where
            assert report["ca"]["phase_completed"] is True, where
        rows = {(row["host"], row["identity"]): row for row in report["certificates"]}
        assert set(rows) == {("app1", "app1"), ("app2", "app2")}, where
        signing = "1" if run_phase in (None, "trust") else "2"
        assert all(str(row["issuer_generation"]) == signing for row in rows.values()), (where, rows)
        assert all(row["status"] == "ok" for row in rows.values()), (where, rows)
