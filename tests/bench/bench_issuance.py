# -*- coding: utf-8 -*-
"""Issuance benchmark: fleet.mtls.certificate against community.crypto and the openssl CLI.

Run from the repository root with the venv's python (ansible-playbook is taken from beside it):

    python tests/bench/bench_issuance.py [--count 1000] [--baseline-count 50] [--repeat 5]

Measures, each --repeat times (median reported):
  a. one fleet.mtls.certificate task (a real ansible-playbook run) signing --count EC P-256 CSRs,
     index update included; again (a10) with an index that already holds 9 batches of --count;
  b. one fleet.mtls.certificate task generating --count client identities centrally;
  For every ansible-playbook run both the whole process and the task alone are timed: the task from
  its start to its processed result (callback_plugins/bench_task_times.py), which is the module call
  (argument templating, module transfer, the module's run, result processing) without the start-up
  of ansible-playbook.
  c. community.crypto.x509_certificate (provider ownca), one task per CSR in a loop, for
     --baseline-count CSRs, extrapolated to --count (labelled as such);
  d. `openssl x509 -req` once per CSR for --baseline-count CSRs, extrapolated likewise;
  e. an empty ansible-playbook run (the fixed cost every playbook pays) and the library alone
     (phases: CSR parse+signature check, signing, index write), to show where the time goes.
Prints a JSON report and a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BIN = os.path.dirname(sys.executable)
PASS = "bench-issuing-passphrase"


def collections_path():
    tree = os.path.join(REPO, ".build", "bench-collections")
    link = os.path.join(tree, "ansible_collections", "fleet", "mtls")
    if not os.path.islink(link):
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink(REPO, link)
    return tree


sys.path.insert(0, collections_path())

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

from ansible_collections.fleet.mtls.plugins.module_utils import ca_store, issuance, serials  # noqa: E402
from ansible_collections.fleet.mtls.plugins.module_utils.index import new_entry as index_entry  # noqa: E402


def make_csrs(count):
    csrs = []
    for n in range(count):
        key = ec.generate_private_key(ec.SECP256R1())
        name = "host%04d.bench.example" % n
        csr = (x509.CertificateSigningRequestBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
               .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
               .sign(key, hashes.SHA256()))
        csrs.append(csr.public_bytes(serialization.Encoding.PEM).decode())
    return csrs


def fresh_pki(work):
    shutil.rmtree(os.path.join(work, "ca"), ignore_errors=True)
    root = os.path.join(work, "ca", "root")
    issuing = os.path.join(work, "ca", "issuing")
    ca_store.create_root(root, "bench-root-passphrase", common_name="Bench Root")
    ca_store.create_intermediate(issuing, PASS, root, "bench-root-passphrase", common_name="Bench Issuing")
    return issuing


def seed_index(issuing, batches, count):
    """Fill the issuance index as ``batches`` earlier runs of ``count`` leaves would have."""
    index = ca_store.CAStore(issuing).index()
    now = ca_store.utcnow()
    for batch in range(batches):
        index.record([index_entry(serials.random_serial(), "web", "host%04d" % n, "CN=host%04d.bench.example" % n,
                                  ["DNS:host%04d.bench.example" % n], "server", now, now, now)
                      for n in range(count)])


def run_playbook(work, name, tasks, vars_file=None):
    """(whole ansible-playbook process, the play's first task) wall seconds."""
    play = {"hosts": "localhost", "gather_facts": False, "connection": "local", "tasks": tasks}
    if vars_file:
        play["vars_files"] = [vars_file]
    path = os.path.join(work, name + ".yml")
    with open(path, "w") as handle:
        json.dump([play], handle)
    times_file = os.path.join(work, name + ".times.json")
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_path(), ANSIBLE_PYTHON_INTERPRETER=sys.executable,
               ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
               ANSIBLE_CALLBACK_PLUGINS=os.path.join(HERE, "callback_plugins"),
               ANSIBLE_CALLBACKS_ENABLED="bench_task_times", BENCH_TASK_TIMES=times_file)
    started = time.perf_counter()
    proc = subprocess.run([os.path.join(BIN, "ansible-playbook"), path], capture_output=True, text=True, env=env,
                          cwd=work, timeout=900, check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit("%s failed:\n%s\n%s" % (name, proc.stdout[-3000:], proc.stderr[-3000:]))
    with open(times_file) as handle:
        task = json.load(handle)[0]["seconds"]
    return elapsed, task


def bench_module_sign(work, csrs, earlier_batches=0):
    issuing = fresh_pki(work)
    seed_index(issuing, earlier_batches, len(csrs))
    vars_file = os.path.join(work, "requests.json")
    with open(vars_file, "w") as handle:
        json.dump({"bench_requests": [{"identity": "web", "host": "host%04d" % n, "csr": c}
                                      for n, c in enumerate(csrs)]}, handle)
    elapsed = run_playbook(work, "sign", [{"fleet.mtls.certificate": {
        "ca_path": issuing, "ca_passphrase": PASS, "requests": "{{ bench_requests }}"}}], vars_file)
    recorded = len(ca_store.CAStore(issuing).index().entries())
    expected = len(csrs) * (earlier_batches + 1)
    assert recorded == expected, "index holds %d entries, expected %d" % (recorded, expected)
    return elapsed


def bench_module_central(work, count):
    issuing = fresh_pki(work)
    key_dir = os.path.join(work, "central")
    shutil.rmtree(key_dir, ignore_errors=True)
    vars_file = os.path.join(work, "central.json")
    with open(vars_file, "w") as handle:
        json.dump({"bench_requests": [{"identity": "client%04d" % n, "host": "dev%02d" % (n % 50),
                                       "profile": "client"} for n in range(count)]}, handle)
    elapsed = run_playbook(work, "central", [{"fleet.mtls.certificate": {
        "ca_path": issuing, "ca_passphrase": PASS, "generate_keys": True, "key_dir": key_dir,
        "requests": "{{ bench_requests }}"}}], vars_file)
    keys = sum(len(files) for dummy, dummy2, files in os.walk(key_dir))
    assert keys == count, "%d key files, expected %d" % (keys, count)
    return elapsed


def write_csr_files(work, csrs):
    directory = os.path.join(work, "csr")
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory)
    paths = []
    for n, text in enumerate(csrs):
        path = os.path.join(directory, "host%04d.csr" % n)
        with open(path, "w") as handle:
            handle.write(text)
        paths.append(path)
    return paths


def bench_community_crypto(work, csr_paths):
    issuing = fresh_pki(work)
    out = os.path.join(work, "ownca")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    task = {"community.crypto.x509_certificate": {
        "path": out + "/{{ item | basename }}.crt", "csr_path": "{{ item }}", "provider": "ownca",
        "ownca_path": os.path.join(issuing, "ca.crt"), "ownca_privatekey_path": os.path.join(issuing, "ca.key"),
        "ownca_privatekey_passphrase": PASS, "ownca_not_after": "+90d", "ownca_digest": "sha256"},
        "loop": csr_paths}
    elapsed, dummy = run_playbook(work, "ownca", [task])
    assert len(os.listdir(out)) == len(csr_paths)
    return elapsed


def bench_openssl(work, csr_paths):
    issuing = fresh_pki(work)
    out = os.path.join(work, "openssl")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    ext = os.path.join(work, "leaf.ext")
    with open(ext, "w") as handle:
        handle.write("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                     "extendedKeyUsage=serverAuth\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
    started = time.perf_counter()
    for path in csr_paths:
        subprocess.run(["openssl", "x509", "-req", "-in", path, "-CA", os.path.join(issuing, "ca.crt"),
                        "-CAkey", os.path.join(issuing, "ca.key"), "-passin", "pass:" + PASS, "-set_serial",
                        "0x%x" % serials.random_serial(), "-days", "90", "-sha256", "-extfile", ext,
                        "-copy_extensions", "copy", "-out", os.path.join(out, os.path.basename(path) + ".crt")],
                       check=True, capture_output=True)
    return time.perf_counter() - started


def bench_library_phases(work, csrs):
    """The library alone: its real batch call, then the same work split in phases, serially."""
    issuing = fresh_pki(work)
    store = ca_store.CAStore(issuing)
    requests = [{"identity": "web", "host": "host%04d" % n, "csr": c} for n, c in enumerate(csrs)]
    started = time.perf_counter()
    signer = store.load(PASS)
    load = time.perf_counter() - started
    started = time.perf_counter()
    issuance.sign_batch(signer, store, requests)
    batch = time.perf_counter() - started
    issuing = fresh_pki(work)
    store = ca_store.CAStore(issuing)
    signer = store.load(PASS)
    leaf_signer = issuance.LeafSigner(signer)
    started = time.perf_counter()
    plans = [issuance.plan_request(leaf_signer, r, n) for n, r in enumerate(requests, 1)]
    validate = time.perf_counter() - started
    started = time.perf_counter()
    certs = [leaf_signer.sign(plan, serials.random_serial()) for plan in plans]
    sign = time.perf_counter() - started
    entries = [issuance._entry_for(plan, cert, leaf_signer.now) for plan, cert in zip(plans, certs)]
    started = time.perf_counter()
    store.index().record(entries)
    record = time.perf_counter() - started
    seed_index(issuing, 8, len(csrs))
    entries = [issuance._entry_for(plan, leaf_signer.sign(plan, serials.random_serial()), leaf_signer.now)
               for plan in plans]
    started = time.perf_counter()
    store.index().record(entries)
    record_10th = time.perf_counter() - started
    return {"load_ca_key": load, "sign_batch_parallel": batch, "serial_parse_and_verify_csrs": validate,
            "serial_sign": sign, "index_write_first_batch": record, "index_write_10th_batch": record_10th}


def median(values):
    return statistics.median(values)


ANSIBLE_RUNS = ("empty_playbook", "module_sign", "module_sign_10th_batch", "module_central")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--baseline-count", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", help="also write the report here")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="fleet-mtls-bench-")
    load_averages = [os.getloadavg()]
    try:
        csrs = make_csrs(args.count)
        csr_paths = write_csr_files(work, csrs[:args.baseline_count])
        runs = {name: [] for name in ANSIBLE_RUNS + ("community_crypto", "openssl_cli", "library_phases")}
        for dummy in range(args.repeat):
            runs["empty_playbook"].append(run_playbook(work, "empty", [{"ansible.builtin.ping": {}}]))
            runs["module_sign"].append(bench_module_sign(work, csrs))
            runs["module_sign_10th_batch"].append(bench_module_sign(work, csrs, earlier_batches=9))
            runs["module_central"].append(bench_module_central(work, args.count))
            runs["community_crypto"].append(bench_community_crypto(work, csr_paths))
            runs["openssl_cli"].append(bench_openssl(work, csr_paths))
            runs["library_phases"].append(bench_library_phases(work, csrs))
            load_averages.append(os.getloadavg())
    finally:
        shutil.rmtree(work, ignore_errors=True)

    scale = float(args.count) / args.baseline_count
    process = dict((name, median([run[0] for run in runs[name]])) for name in ANSIBLE_RUNS)
    task = dict((name, median([run[1] for run in runs[name]])) for name in ANSIBLE_RUNS)
    empty = process["empty_playbook"]
    cc_measured = median(runs["community_crypto"])
    # One playbook start, then per-CSR task cost times count.
    cc_extrapolated = empty + (cc_measured - empty) * scale
    openssl_measured = median(runs["openssl_cli"])
    report = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "load_averages_1_5_15min_before_and_after_each_round": load_averages},
        "count": args.count, "baseline_count": args.baseline_count, "repeat": args.repeat,
        "median_seconds": {
            "whole_process": process,
            "task_alone": task,
            "community_crypto_ownca_measured": cc_measured,
            "community_crypto_ownca_extrapolated": cc_extrapolated,
            "openssl_cli_measured": openssl_measured,
            "openssl_cli_extrapolated": openssl_measured * scale,
        },
        "library_phases_median_seconds": dict(
            (phase, median([run[phase] for run in runs["library_phases"]])) for phase in runs["library_phases"][0]),
        "raw": runs,
    }
    sign = process["module_sign"]
    report["ratios"] = {
        "community_crypto_extrapolated_over_fleet_mtls_whole_process": cc_extrapolated / sign,
        "openssl_cli_extrapolated_over_fleet_mtls_whole_process": openssl_measured * scale / sign,
    }
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(report, handle, indent=2)
    print(json.dumps(report, indent=2))
    labels = {"empty_playbook": "empty playbook (one ping task)",
              "module_sign": "fleet.mtls.certificate, %d CSRs" % args.count,
              "module_sign_10th_batch": "... the same with %d entries already in the index" % (9 * args.count),
              "module_central": "fleet.mtls.certificate, %d central identities" % args.count}
    print("\n| what | task alone (s) | whole ansible-playbook (s) |\n|---|---|---|")
    for name in ANSIBLE_RUNS:
        print("| %s | %.2f | %.2f |" % (labels[name], task[name], process[name]))
    print("| community.crypto.x509_certificate ownca, %d CSRs measured | | %.2f |" % (args.baseline_count, cc_measured))
    print("| ... extrapolated to %d (not measured) | | %.1f |" % (args.count, cc_extrapolated))
    print("| openssl x509 -req, %d CSRs measured | | %.2f |" % (args.baseline_count, openssl_measured))
    print("| ... extrapolated to %d (not measured) | | %.1f |" % (args.count, openssl_measured * scale))


if __name__ == "__main__":
    main()
