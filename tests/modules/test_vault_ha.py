# -*- coding: utf-8 -*-
"""HA: a three-node OpenBao raft cluster on loopback loses its leader (SIGKILL) in the middle of a
500-CSR fleet.mtls.vault_certificate run. The run must complete through the new leader or fail with a
clear error, and a re-run must complete. What happened is written to tests/output/vault-ha.json."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest
from cryptography import x509

from conftest import REPO, import_library, openbao_harness
from vault_helpers import make_csr, stored_serials

COUNT = 500
KILL_AFTER = 100  # certificates stored by the engine before the leader is killed
RUN_TIMEOUT = 300


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    harness = openbao_harness()
    with harness.OpenBaoCluster(str(tmp_path_factory.mktemp("openbao-ha")), nodes=3) as bao:
        vault_pki = import_library("vault_pki")
        pki = vault_pki.VaultPKI(bao.urls, token=bao.root_token, ca_file=bao.ca_file)
        vault_pki.prepare_mount(pki, role_policy={"allowed_domains": ["ha.example"]})
        yield bao


def requests_for(count):
    return [{"identity": "web", "host": "host%03d" % n, "csr": make_csr(),
             "common_name": "host%03d.ha.example" % n} for n in range(count)]


def check_signed(run, count):
    assert not run.get("failed"), run.get("msg")
    certificates = run["certificates"]
    assert len(certificates) == count
    assert len(set(entry["serial"] for entry in certificates)) == count
    for n, entry in enumerate(certificates):
        assert entry["host"] == "host%03d" % n
        cert = x509.load_pem_x509_certificate(entry["certificate"].encode())
        assert cert.subject.rfc4514_string() == "CN=host%03d.ha.example" % n


def test_leader_killed_in_the_middle_of_a_500_csr_run(ansible_module, cluster, tmp_path):
    leader = cluster.leader()
    # The killed leader first: the run starts on it and must move on.
    urls = [leader.url] + [node.url for node in cluster.nodes if node is not leader]
    standby = [node for node in cluster.nodes if node is not leader][0]
    watcher = cluster.client(url=standby.url)
    baseline = len(stored_serials(watcher))
    args = {"url": urls, "ca_file": cluster.ca_file, "token": cluster.root_token, "requests": requests_for(COUNT)}
    outcome = {}

    def run():
        outcome["run"] = ansible_module("vault_certificate", args)

    thread = threading.Thread(target=run, daemon=True)
    started = time.monotonic()
    thread.start()
    killed_at = None
    deadline = started + RUN_TIMEOUT
    while thread.is_alive() and time.monotonic() < deadline:
        try:
            stored = len(stored_serials(watcher)) - baseline
        except Exception:  # the watcher's node may be mid-election itself; look again
            stored = 0
        if stored >= KILL_AFTER:
            leader.kill()
            killed_at = stored
            break
        time.sleep(0.05)
    assert killed_at is not None, "the run ended before %d certificates were stored: nothing was tested" % KILL_AFTER
    thread.join(RUN_TIMEOUT)
    assert not thread.is_alive(), "the signing run did not end within %ds" % RUN_TIMEOUT
    first = outcome["run"]
    first_seconds = round(time.monotonic() - started, 1)
    new_leader = cluster.leader()
    assert new_leader is not leader

    record = {"count": COUNT, "killed_leader": leader.node_id, "new_leader": new_leader.node_id,
              "stored_when_killed": killed_at, "first_run_seconds_with_ansible": first_seconds,
              "first_run_failed": bool(first.get("failed")), "first_run_msg": first.get("msg"),
              "first_run_stats": first.get("stats")}
    if first.get("failed"):
        # A clear error naming the request, never a traceback.
        assert "Traceback" not in first["msg"] and "request " in first["msg"], first["msg"]
    else:
        check_signed(first, COUNT)

    rerun = ansible_module("vault_certificate", args)
    check_signed(rerun, COUNT)
    record.update(rerun_stats=rerun["stats"],
                  stored_by_engine=len(stored_serials(cluster.client(url=new_leader.url))) - baseline)
    os.makedirs(os.path.join(REPO, "tests", "output"), exist_ok=True)
    with open(os.path.join(REPO, "tests", "output", "vault-ha.json"), "w") as handle:
        json.dump(record, handle, indent=2)
    print(json.dumps(record, indent=2))
