# -*- coding: utf-8 -*-
"""Fleet scale benchmark: fleet.mtls.site and fleet.mtls.rotate against the community.crypto own-CA pattern.

Run from the repository root with the venv's python (ansible-playbook is taken from beside it):

    python tests/bench/bench_fleet_scale.py [--sizes 10,100,1000] [--repeat 1] [--forks N]
                                            [--max-seconds 1200] [--max-total-seconds 3600] [--seed-from S]
                                            [--kinds rotate_noop,...] [--run-all] [--keep]

For every size N it simulates a fleet on this machine: N client hosts (group ``mtls_clients``,
``ansible_connection: local``, each host its own ``mtls_dir`` under a temporary directory) and one CA
holder (group ``mtls_ca``, host ``bench-ca``, ``mtls_ca_dir`` in the same temporary directory). No SSH,
no containers: what is measured is the controller's per-host work plus the module runs, which here
run on the controller's own machine (on a real fleet they would run on the hosts).

Each round (one per --repeat, each from empty directories) times these ansible-playbook runs, in this
order so that comparable runs follow each other:

  site_first   fleet.mtls.site on the empty fleet (creates the CA generation too)
  cc_first     the community.crypto own-CA pattern on the empty fleet, one play over mtls_clients:
               openssl_privatekey, openssl_csr_pipe, slurp of the installed certificate
               (ignore_errors, as community.crypto documents it), x509_certificate_pipe with
               provider ownca delegated to bench-ca, copy of the certificate, copy of the CA chain.
               Its CA (root + issuing, made by the library) and the host directories are created
               before the run and not timed.
  site_noop    fleet.mtls.site again: nothing to do
  cc_rerun     the community.crypto pattern again: nothing to do
  rotate_noop  fleet.mtls.rotate: nothing to do
  rotate_due   fleet.mtls.rotate with a tenth of the hosts due for renewal: those hosts get
               ``mtls_identity_renew_days: 3650`` in the inventory, so the csr module's one renewal
               decision answers ``renewal_window`` for them (a new key is staged, the batch is signed
               on the CA holder, certificate and key are installed and promoted): the real renewal
               path, not a missing file. The script checks that exactly those hosts' certificates
               changed.

Each run: wall time of the whole ansible-playbook process; CPU seconds (user + system of the process
tree, from os.wait4's rusage, which includes every waited-for descendant: forks, module runs, signing
workers), split into the module runs' share (host side: the inventory's interpreter is a small
wrapper, MODULE_PYTHON, that runs the real python as its child and appends the child's rusage to a
file; on a real fleet this CPU is spent on the hosts) and the controller's share (the rest:
ansible-playbook, its forks, the connection's shell commands and the wrappers themselves); memory
as (a) the largest single process (ru_maxrss) and (b) the peak of the
whole tree's proportional set size (PSS, /proc/<pid>/smaps_rollup of every process in the run's
session, sampled every 0.5 s; the table reports this one); the PLAY RECAP totals; the 1/5/15 minute
load average before and after. Medians over the rounds; ratios (community.crypto / fleet.mtls) are
taken between medians of the same invocation only.

Seeded sizes (--seed-from S: every size >= S). A first `site` on 1,000 simulated hosts takes over an
hour on 2 cores, so at those sizes the fleet is seeded instead, and the first runs are not timed:

  seed         fleet.mtls.site on the CA holder and the first host only (--limit), then every other
               host gets what that run gave the first one, made by the same library calls the
               modules make (host_identity.request_identity as fleet.mtls.csr, identity_plan.batch_plan
               and issuance.sign_batch on the CA store as the identity role and fleet.mtls.certificate,
               host_identity.install_identity with the CA's trust bundle and CRLs, and the manifest
               as fleet.mtls.manifest writes it), the names being the host's own. The no-op runs
               check the seeding: a seeded fleet that `site` or `rotate` would change is reported.
  cc_first and cc_rerun are not run at seeded sizes (recorded as skipped).

Bounded: a run still going after --max-seconds is killed (its process group) and recorded as
timed_out; the runs after it in the same chain (fleet.mtls runs depend on site_first, cc_rerun on
cc_first) are recorded as skipped. Before a larger size, each run kind's time is extrapolated from
the sizes already measured (linear fit through the last two; nothing is predicted from one); a run
predicted to exceed --max-seconds is recorded as skipped with the prediction instead of being
started (--run-all starts it anyway).

Defaults: sizes 10,100,1000, no seeded size, repeat 1, forks min(N, 50), max-seconds 1200, and no run started once
--max-total-seconds (3600) have passed since the first, so the whole script ends within about
max-total-seconds + max-seconds. That is what `make bench` (tools/bench.sh, no arguments) runs. On the
code of 2026-12-02 (about 3 CPU seconds per host and run) on the shared 2-core machine, N=10 took about
10 minutes and N=100 35-45 minutes, and N=1000 is skipped as predicted over 1200 s per run; once the
playbooks are faster it runs by itself. Figures and how to read them: docs/performance.md.

community.crypto comes from the pinned PyPI package `ansible` in requirements-dev.txt (it carries
community.crypto 3.x), so the venv `make bench` uses already has it; the script checks for it and
says so if not.

Writes .build/bench/fleet-scale.json (--json), an SVG plot of wall time against host count, log-log,
one line per run kind (--plot, default docs/images/fleet-scale.svg, referenced from
docs/performance.md), and prints a Markdown table for docs/performance.md.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import math
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BIN = os.path.dirname(sys.executable)
PASSPHRASE = "bench-fleet-ca-passphrase"
CA_HOST = "bench-ca"

RUN_KINDS = (
    ("site_first", "fleet.mtls.site, first run"),
    ("cc_first", "community.crypto own-CA pattern, first run"),
    ("site_noop", "fleet.mtls.site, nothing to do"),
    ("cc_rerun", "community.crypto pattern, rerun"),
    ("rotate_noop", "fleet.mtls.rotate, nothing to do"),
    ("rotate_due", "fleet.mtls.rotate, a tenth of the hosts due"),
)
LABELS = dict(RUN_KINDS)
# Runs that need the state an earlier run of the same chain left behind.
CHAINS = {
    "fleet": ("site_first", "site_noop", "rotate_noop", "rotate_due"),
    "cc": ("cc_first", "cc_rerun"),
}
# (label, community.crypto run, fleet.mtls run): how many times longer the community.crypto run took.
RATIOS = (
    ("first run: community.crypto / fleet.mtls.site", "cc_first", "site_first"),
    ("nothing to do: community.crypto rerun / fleet.mtls.site", "cc_rerun", "site_noop"),
    ("nothing to do: community.crypto rerun / fleet.mtls.rotate", "cc_rerun", "rotate_noop"),
)
METRICS = ("wall_seconds", "cpu_seconds", "controller_cpu_seconds", "module_cpu_seconds", "module_runs",
           "peak_tree_pss_mb", "max_single_rss_mb")
PLOT_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b")
RECAP = re.compile(r"^(?P<host>\S+)\s+:\s+ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)"
                   r"\s+failed=(?P<failed>\d+)\s+skipped=(?P<skipped>\d+)\s+rescued=(?P<rescued>\d+)"
                   r"\s+ignored=(?P<ignored>\d+)")


# ---------------------------------------------------------------------------------------------
# Pure parts (unit-tested in tests/unit/test_bench_fleet_scale.py)

def parse_sizes(text):
    sizes = sorted({int(part) for part in text.split(",") if part.strip()})
    if not sizes or sizes[0] < 1:
        raise ValueError("--sizes needs host counts of 1 or more, got %r" % text)
    return sizes


def select_kinds(text):
    """Run kinds named in ``text`` plus the earlier runs of their chains they depend on, in RUN_KINDS order."""
    wanted = {part.strip() for part in text.split(",") if part.strip()}
    unknown = wanted - set(LABELS)
    if unknown or not wanted:
        raise ValueError("--kinds takes some of %s, got %r" % (", ".join(LABELS), text))
    for chain in CHAINS.values():
        for kind in chain:
            if kind in wanted:
                wanted.update(chain[:chain.index(kind)])
    return [kind for kind, dummy in RUN_KINDS if kind in wanted]


def default_forks(hosts):
    return max(1, min(hosts, 50))


def host_names(count):
    width = max(4, len(str(count)))
    return ["host%0*d" % (width, n) for n in range(1, count + 1)]


def due_hosts(names):
    """A tenth of the hosts (at least one), spread evenly: every tenth host, starting with the first."""
    return names[::10][:max(1, len(names) // 10)]


def host_dirs(base, name):
    return {"mtls_dir": os.path.join(base, "hosts", name, "mtls"),
            "bench_cc_dir": os.path.join(base, "hosts", name, "cc")}


# The inventory's interpreter: runs the real one as a child and records the child's CPU, so a run's CPU
# splits into the module runs' (host side) and the controller's. Isolated (-I -S): the wrapper's own
# start-up is about 10 ms and is counted on the controller's side.
MODULE_PYTHON = """#!{python} -IS
import os
import sys
pid = os.fork()
if pid == 0:
    os.execv({python!r}, [{python!r}] + sys.argv[1:])
dummy, status, usage = os.wait4(pid, 0)
record = os.open({log!r}, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
os.write(record, ("%.6f %.6f\\n" % (usage.ru_utime, usage.ru_stime)).encode())
os.close(record)
sys.exit(os.waitstatus_to_exitcode(status) & 0xFF)
"""


def write_module_python(base, python):
    """The wrapper interpreter for a fleet in ``base``; returns (its path, the file it records to)."""
    path, log = os.path.join(base, "module-python"), os.path.join(base, "module-cpu.log")
    with open(path, "w") as handle:
        handle.write(MODULE_PYTHON.format(python=python, log=log))
    os.chmod(path, 0o755)
    return path, log


def module_cpu(log):
    """(runs, CPU seconds) recorded by the wrapper since the file was last removed."""
    runs, seconds = 0, 0.0
    if os.path.exists(log):
        with open(log) as handle:
            for line in handle:
                user, system = line.split()
                runs, seconds = runs + 1, seconds + float(user) + float(system)
    return runs, seconds


def build_inventory(base, count, python, due=()):
    """The simulated fleet as a YAML-inventory dict (written as JSON)."""
    clients = {}
    for name in host_names(count):
        host = host_dirs(base, name)
        if name in due:
            host["mtls_identity_renew_days"] = 3650
        clients[name] = host
    return {"all": {
        "vars": {"ansible_connection": "local", "ansible_python_interpreter": python,
                 "mtls_ca_dir": os.path.join(base, "ca"), "mtls_ca_passphrase": PASSPHRASE,
                 "bench_cc_ca_dir": os.path.join(base, "cc-ca", "ca", "issuing")},
        "children": {"mtls_ca": {"hosts": {CA_HOST: {}}}, "mtls_clients": {"hosts": clients}}}}


def cc_playbook(passphrase):
    """The community.crypto own-CA pattern for every client host, as users write it."""
    private = "{{ bench_cc_dir }}/private/{{ inventory_hostname }}.key"
    cert = "{{ bench_cc_dir }}/certs/{{ inventory_hostname }}.crt"
    return [{
        "name": "community.crypto own CA", "hosts": "mtls_clients", "gather_facts": False,
        "tasks": [
            {"name": "Private key", "community.crypto.openssl_privatekey": {
                "path": private, "type": "ECC", "curve": "secp256r1", "mode": "0600"}},
            {"name": "CSR", "register": "bench_csr", "community.crypto.openssl_csr_pipe": {
                "privatekey_path": private, "common_name": "{{ inventory_hostname }}",
                "subject_alt_name": ["DNS:{{ inventory_hostname }}"], "key_usage": ["digitalSignature"],
                "key_usage_critical": True, "extended_key_usage": ["clientAuth"]}},
            {"name": "Installed certificate", "register": "bench_installed", "ignore_errors": True,
             "ansible.builtin.slurp": {"src": cert}},
            {"name": "Sign on the CA", "register": "bench_cert", "delegate_to": CA_HOST,
             "community.crypto.x509_certificate_pipe": {
                 "content": "{{ (bench_installed.content | b64decode) if bench_installed is succeeded else omit }}",
                 "csr_content": "{{ bench_csr.csr }}", "provider": "ownca",
                 "ownca_path": "{{ bench_cc_ca_dir }}/ca.crt", "ownca_privatekey_path": "{{ bench_cc_ca_dir }}/ca.key",
                 "ownca_privatekey_passphrase": passphrase, "ownca_not_after": "+90d", "ownca_digest": "sha256"}},
            {"name": "Certificate", "ansible.builtin.copy": {
                "content": "{{ bench_cert.certificate }}", "dest": cert, "mode": "0644"}},
            {"name": "CA chain", "ansible.builtin.copy": {
                "src": "{{ bench_cc_ca_dir }}/chain.pem", "dest": "{{ bench_cc_dir }}/trust-bundle.pem",
                "mode": "0644"}},
        ]}]


def renamed_identity(entry, reference, host):
    """A manifest identity entry of host ``reference`` as host ``host`` declares it: every occurrence
    of the reference's name in the name, the common name and the SANs replaced by the host's."""
    result = dict(entry)
    for key in ("name", "common_name"):
        if isinstance(result.get(key), str):
            result[key] = result[key].replace(reference, host)
    result["sans"] = [san.replace(reference, host) for san in entry.get("sans") or []]
    return result


def noop_check(kind, recap):
    """For a run that must change nothing (site_noop, rotate_noop): None when it changed nothing, else
    what it changed (on a seeded fleet: the seeding is not what site would have made)."""
    if kind not in ("site_noop", "rotate_noop") or not recap.get("changed"):
        return None
    return "changed=%d on a fleet with nothing to do" % recap["changed"]


def parse_recap(text):
    """PLAY RECAP totals: hosts and the sum of each counter."""
    totals = {"hosts": 0, "ok": 0, "changed": 0, "unreachable": 0, "failed": 0, "skipped": 0, "rescued": 0,
              "ignored": 0}
    in_recap = False
    for line in text.splitlines():
        if line.startswith("PLAY RECAP"):
            in_recap = True
            continue
        match = RECAP.match(line.strip()) if in_recap else None
        if match:
            totals["hosts"] += 1
            for key, value in match.groupdict().items():
                if key != "host":
                    totals[key] += int(value)
    return totals


def changed_hosts(before, after):
    """Hosts whose certificate digest differs (a missing file counts as a digest of None)."""
    return sorted(host for host in set(before) | set(after) if before.get(host) != after.get(host))


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarise(rounds):
    """rounds: [{size: {kind: run}}] -> {size: {kind: {status, runs, completed, <metric>: median}}}.

    A metric's median is over completed runs only; status is "ok" when every round completed it,
    else the status of the first round that did not ("timed_out", "failed", "skipped").
    """
    summary = {}
    for round_ in rounds:
        for size, kinds in round_.items():
            for kind, run in kinds.items():
                summary.setdefault(int(size), {}).setdefault(kind, []).append(run)
    result = {}
    for size, kinds in summary.items():
        result[size] = {}
        for kind, runs in kinds.items():
            done = [run for run in runs if run["status"] == "ok"]
            bad = [run for run in runs if run["status"] != "ok"]
            entry = {"status": bad[0]["status"] if bad else "ok", "runs": len(runs), "completed": len(done)}
            if bad and bad[0].get("reason"):
                entry["reason"] = bad[0]["reason"]
            for metric in METRICS:
                entry[metric] = median([run.get(metric) for run in done])
            for metric in ("cpu_seconds", "controller_cpu_seconds", "module_cpu_seconds", "module_runs"):
                entry[metric + "_per_host"] = None if entry[metric] is None else entry[metric] / size
            entry["wall_seconds_per_host"] = None if entry["wall_seconds"] is None else entry["wall_seconds"] / size
            result[size][kind] = entry
    return result


def ratios(summary, metric="wall_seconds"):
    """{size: {label: community.crypto / fleet.mtls}} for every pair both of whose medians exist."""
    out = {}
    for size, kinds in summary.items():
        out[size] = {}
        for label, slow, fast in RATIOS:
            top = kinds.get(slow, {}).get(metric)
            bottom = kinds.get(fast, {}).get(metric)
            out[size][label] = top / bottom if top is not None and bottom else None
    return out


def predict(points, size):
    """Seconds at ``size`` from measured (size, seconds) points: linear fit through the two largest
    sizes, or proportional growth from the largest when the fit would shrink. None with fewer than
    two points: at small sizes the fixed cost of a playbook run dominates, so one point says
    nothing about the per-host cost."""
    points = sorted(points)
    if len(points) < 2:
        return None
    n1, t1 = points[-1]
    proportional = t1 * size / float(n1)
    n0, t0 = points[-2]
    slope = (t1 - t0) / float(n1 - n0)
    linear = t1 + slope * (size - n1)
    return max(linear, t1) if slope > 0 else proportional


def plot_series(summary, metric="wall_seconds"):
    """{kind: [(size, value)]} of completed medians, in RUN_KINDS order, sizes ascending."""
    series = {}
    for kind, dummy in RUN_KINDS:
        points = [(size, summary[size][kind][metric]) for size in sorted(summary)
                  if kind in summary[size] and summary[size][kind].get(metric) is not None]
        if points:
            series[kind] = points
    return series


def _decades(low, high):
    first = int(math.floor(math.log10(low)))
    last = int(math.ceil(math.log10(high)))
    if last == first:
        last += 1
    return first, last


def svg_plot(series, title, y_label="wall time (s)", width=760, height=480):
    """Log-log SVG of value against host count, one polyline with markers per run kind."""
    left, right, top, bottom = 70, 250, 40, 50
    plot_w, plot_h = width - left - right, height - top - bottom
    xs = [x for points in series.values() for x, dummy in points]
    ys = [y for points in series.values() for dummy, y in points if y > 0]
    x_lo, x_hi = _decades(min(xs or [1]), max(xs or [10]))
    y_lo, y_hi = _decades(min(ys or [1]), max(ys or [10]))

    def px(x):
        return left + (math.log10(x) - x_lo) / (x_hi - x_lo) * plot_w

    def py(y):
        return top + plot_h - (math.log10(y) - y_lo) / (y_hi - y_lo) * plot_h

    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
           'font-family="sans-serif" font-size="12">' % (width, height, width, height),
           '<rect width="100%" height="100%" fill="white"/>',
           '<text x="%d" y="22" font-size="14" font-weight="bold">%s</text>' % (left, _xml(title))]
    for decade in range(x_lo, x_hi + 1):
        x = px(10 ** decade)
        out.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>' % (x, top, x, top + plot_h))
        out.append('<text x="%.1f" y="%d" text-anchor="middle">%s</text>' % (x, top + plot_h + 18, _number(10 ** decade)))
    for decade in range(y_lo, y_hi + 1):
        y = py(10 ** decade)
        out.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>' % (left, y, left + plot_w, y))
        out.append('<text x="%d" y="%.1f" text-anchor="end">%s</text>' % (left - 6, y + 4, _number(10 ** decade)))
    out.append('<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#333"/>' % (left, top, plot_w, plot_h))
    out.append('<text x="%.1f" y="%d" text-anchor="middle">hosts (log)</text>' % (left + plot_w / 2.0, height - 10))
    out.append('<text x="16" y="%.1f" text-anchor="middle" transform="rotate(-90 16 %.1f)">%s (log)</text>'
               % (top + plot_h / 2.0, top + plot_h / 2.0, _xml(y_label)))
    for number, (kind, points) in enumerate(series.items()):
        colour = PLOT_COLOURS[number % len(PLOT_COLOURS)]
        dash = ' stroke-dasharray="6 4"' if kind.startswith("cc_") else ""
        coords = " ".join("%.1f,%.1f" % (px(x), py(y)) for x, y in points if y > 0)
        out.append('<polyline points="%s" fill="none" stroke="%s" stroke-width="2"%s/>' % (coords, colour, dash))
        for x, y in points:
            if y > 0:
                out.append('<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s"><title>%s, %d hosts: %.1f</title></circle>'
                           % (px(x), py(y), colour, _xml(LABELS.get(kind, kind)), x, y))
        legend_y = top + 10 + number * 22
        out.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"%s/>'
                   % (left + plot_w + 12, legend_y, left + plot_w + 36, legend_y, colour, dash))
        out.append('<text x="%d" y="%d">%s</text>' % (left + plot_w + 42, legend_y + 4, _xml(_short_label(kind))))
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _short_label(kind):
    return {"site_first": "site, first run", "site_noop": "site, nothing to do",
            "rotate_noop": "rotate, nothing to do", "rotate_due": "rotate, a tenth due",
            "cc_first": "community.crypto, first run", "cc_rerun": "community.crypto, rerun"}.get(kind, kind)


def _xml(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _number(value):
    return "%g" % value


def _cell(entry):
    if entry is None:
        return "not run"
    if entry["status"] != "ok":
        return entry["status"].replace("_", " ") + (" (%s)" % entry["reason"] if entry.get("reason") else "")
    mem = entry.get("peak_tree_pss_mb")
    mem_text = "%.0f" % mem if mem is not None else "?"
    return "%.0f s · %.0f CPU s · %s MB" % (entry["wall_seconds"], entry["cpu_seconds"], mem_text)


def markdown_table(summary, forks):
    sizes = sorted(summary)
    head = "| run | " + " | ".join("N=%d (forks %d)" % (size, forks[size]) for size in sizes) + " |"
    lines = [head, "|---|" + "---|" * len(sizes)]
    for kind, label in RUN_KINDS:
        lines.append("| %s | %s |" % (label, " | ".join(_cell(summary[size].get(kind)) for size in sizes)))
    per_host = (("cpu_seconds_per_host", "CPU s per host", "%.2f"),
                ("controller_cpu_seconds_per_host", "controller CPU s per host", "%.2f"),
                ("module_cpu_seconds_per_host", "module-run CPU s per host (host side)", "%.2f"),
                ("module_runs_per_host", "module runs per host", "%.1f"))
    for kind in ("site_noop", "cc_rerun", "rotate_noop"):
        for metric, what, form in per_host:
            lines.append("| %s: %s | %s |" % (LABELS[kind], what, " | ".join(
                form % summary[size][kind][metric] if summary[size].get(kind, {}).get(metric) is not None else "–"
                for size in sizes)))
    table = ratios(summary)
    cpu_table = ratios(summary, "cpu_seconds")
    for label, dummy, dummy2 in RATIOS:
        cells = []
        for size in sizes:
            wall, cpu = table[size][label], cpu_table[size][label]
            cells.append("–" if wall is None else "%.2f× (CPU %.2f×)" % (wall, cpu))
        lines.append("| ratio %s | %s |" % (label, " | ".join(cells)))
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Running ansible-playbook and measuring it

def tree_pss_kb(session):
    """Sum of PSS (kB) of every process in the session ``session`` (the run's process group leader)."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            if int(fields[3]) != session:  # field 6 of stat: session id
                continue
            with open("/proc/%s/smaps_rollup" % entry) as handle:
                for line in handle:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
                        break
        except (OSError, IndexError, ValueError):
            continue
    return total


class TreeSampler(threading.Thread):
    def __init__(self, session, interval=0.5):
        super().__init__(daemon=True)
        self.session, self.interval, self.peak_kb = session, interval, 0
        self._stop_event = threading.Event()

    def run(self):
        while not self._stop_event.wait(self.interval):
            self.peak_kb = max(self.peak_kb, tree_pss_kb(self.session))

    def stop(self):
        self._stop_event.set()
        self.join()


def run_measured(argv, env, cwd, log_path, max_seconds):
    """Run argv in its own session; wall, rusage of the whole tree, peak tree PSS, recap."""
    load_before = os.getloadavg()
    with open(log_path, "w") as log:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        sampler = TreeSampler(proc.pid)
        sampler.start()
        timed_out = threading.Event()

        def kill():
            timed_out.set()
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        timer = threading.Timer(max_seconds, kill)
        timer.start()
        dummy, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        timer.cancel()
        sampler.stop()
        proc.returncode = os.waitstatus_to_exitcode(status)
    # Anything of the run still alive (its own children it did not wait for) goes too.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    with open(log_path, errors="replace") as handle:
        output = handle.read()
    run = {"status": "timed_out" if timed_out.is_set() else ("ok" if proc.returncode == 0 else "failed"),
           "rc": proc.returncode, "wall_seconds": wall, "cpu_seconds": usage.ru_utime + usage.ru_stime,
           "cpu_user_seconds": usage.ru_utime, "cpu_system_seconds": usage.ru_stime,
           "max_single_rss_mb": usage.ru_maxrss / 1024.0, "peak_tree_pss_mb": sampler.peak_kb / 1024.0,
           "recap": parse_recap(output), "load_average_before": load_before, "load_average_after": os.getloadavg(),
           "log": log_path}
    if run["status"] == "timed_out":
        run["reason"] = "killed after %d s" % max_seconds
    elif run["status"] == "failed":
        run["reason"] = "exit status %d" % proc.returncode
        run["output_tail"] = output[-4000:]
    return run


def _bench_issuance():
    """tests/bench/bench_issuance.py, for its collections tree and CA set-up (no duplicate helpers)."""
    spec = importlib.util.spec_from_file_location("bench_issuance", os.path.join(HERE, "bench_issuance.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check_community_crypto(env):
    probe = subprocess.run([os.path.join(BIN, "ansible-doc"), "-t", "module", "community.crypto.x509_certificate_pipe"],
                           env=env, capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        raise SystemExit("community.crypto is not installed beside ansible-core (%s). It comes from the PyPI package "
                         "`ansible` pinned in requirements-dev.txt: run `make venv` or pip install -r "
                         "requirements-dev.txt into the venv." % probe.stderr.strip()[-300:])


def cert_digests(paths):
    out = {}
    for host, path in paths.items():
        try:
            with open(path, "rb") as handle:
                out[host] = hashlib.sha256(handle.read()).hexdigest()
        except OSError:
            out[host] = None
    return out


class Fleet:
    """One simulated fleet of ``size`` hosts in a fresh directory."""

    def __init__(self, work, size, forks, env, max_seconds, helpers):
        self.base = os.path.join(work, "n%d" % size)
        shutil.rmtree(self.base, ignore_errors=True)
        os.makedirs(self.base)
        self.size, self.forks, self.env, self.max_seconds = size, forks, env, max_seconds
        self.names = host_names(size)
        self.due = due_hosts(self.names)
        python, self.module_log = write_module_python(self.base, sys.executable)
        self.inventory = self._write("inventory.json", build_inventory(self.base, size, python))
        self.inventory_due = self._write("inventory-due.json", build_inventory(self.base, size, python, set(self.due)))
        self.cc_play = self._write("cc.json", cc_playbook(helpers.PASS))
        os.makedirs(os.path.join(self.base, "cc-ca"))
        helpers.fresh_pki(os.path.join(self.base, "cc-ca"))
        for name in self.names:
            for sub in ("private", "certs"):
                os.makedirs(os.path.join(host_dirs(self.base, name)["bench_cc_dir"], sub))

    def _write(self, name, data):
        path = os.path.join(self.base, name)
        with open(path, "w") as handle:
            json.dump(data, handle, indent=1)
        return path

    def certs(self, kind):
        if kind.startswith("cc_"):
            return dict((n, os.path.join(host_dirs(self.base, n)["bench_cc_dir"], "certs", n + ".crt"))
                        for n in self.names)
        return dict((n, os.path.join(host_dirs(self.base, n)["mtls_dir"], "certs", n + ".crt")) for n in self.names)

    def seed(self):
        """Seed the fleet (see the module docstring): a real site on the CA holder and the first host,
        the rest through the library. Returns the run record of the seeding (not a timed run kind)."""
        reference = self.names[0]
        run = run_measured([os.path.join(BIN, "ansible-playbook"), "-i", self.inventory, "-f", str(self.forks),
                            "--limit", "%s,%s" % (CA_HOST, reference), "fleet.mtls.site"],
                           self.env, self.base, os.path.join(self.base, "seed.log"), self.max_seconds)
        if run["status"] != "ok":
            return run
        started = time.perf_counter()
        seed_from_reference(self.base, reference, self.names[1:])
        run["library_seconds"] = time.perf_counter() - started
        run["status"] = "seeded"
        run["reason"] = "site on %s and %s, %d hosts by the library in %.0f s" % (
            CA_HOST, reference, len(self.names) - 1, run["library_seconds"])
        return run

    def run(self, kind):
        playbook = {"site_first": "fleet.mtls.site", "site_noop": "fleet.mtls.site", "rotate_noop": "fleet.mtls.rotate",
                    "rotate_due": "fleet.mtls.rotate"}.get(kind, self.cc_play)
        inventory = self.inventory_due if kind == "rotate_due" else self.inventory
        before = cert_digests(self.certs(kind))
        if os.path.exists(self.module_log):
            os.remove(self.module_log)
        run = run_measured([os.path.join(BIN, "ansible-playbook"), "-i", inventory, "-f", str(self.forks), playbook],
                           self.env, self.base, os.path.join(self.base, kind + ".log"), self.max_seconds)
        run["module_runs"], run["module_cpu_seconds"] = module_cpu(self.module_log)
        run["controller_cpu_seconds"] = run["cpu_seconds"] - run["module_cpu_seconds"]
        changed = changed_hosts(before, cert_digests(self.certs(kind)))
        expected = {"site_first": self.names, "cc_first": self.names, "rotate_due": self.due}.get(kind, [])
        run["hosts_whose_certificate_changed"] = len(changed)
        run["certificate_check"] = "as expected" if changed == sorted(expected) else (
            "expected %d hosts' certificates to change, %d did (%s)" % (len(expected), len(changed),
                                                                        ", ".join(changed[:5])))
        if run["status"] == "ok" and run["certificate_check"] != "as expected":
            print("WARNING %s N=%d: %s" % (kind, self.size, run["certificate_check"]), file=sys.stderr)
        run["noop_check"] = noop_check(kind, run["recap"]) if run["status"] == "ok" else None
        if run["noop_check"]:
            print("WARNING %s N=%d: %s" % (kind, self.size, run["noop_check"]), file=sys.stderr)
        return run


def seed_from_reference(base, reference, names):
    """Give every host of ``names`` what fleet.mtls.site gave ``reference``, through the library calls
    the modules make (see the module docstring), in one signing batch."""
    from ansible_collections.fleet.mtls.plugins.module_utils import (  # pylint: disable=import-outside-toplevel
        ca_store, host_identity, identity_plan, issuance, manifest)
    from ansible_collections.fleet.mtls.plugins.module_utils.host_status import (  # pylint: disable=import-outside-toplevel
        IDENTITY_OPTIONS)
    home = host_dirs(base, reference)["mtls_dir"]
    with open(os.path.join(home, "trust-bundle.pem")) as handle:
        trust_bundle = handle.read()
    with open(os.path.join(home, "crl.pem")) as handle:
        crls = handle.read()
    with open(os.path.join(base, "ca", "signing-ca.pem")) as handle:
        signing_ca = handle.read()
    with open(os.path.join(base, "ca", "rotation.json")) as handle:
        generations = json.load(handle)
    issuing = next(entry["issuing"] for entry in generations["generations"] if entry["id"] == generations["active"])
    declared = manifest.read_manifest(home)["identities"]
    checks_by_host, entries_by_host = [], {}
    for name in names:
        directory = host_dirs(base, name)["mtls_dir"]
        entries_by_host[name] = [renamed_identity(entry, reference, name) for entry in declared]
        checks = []
        for entry in entries_by_host[name]:
            params = dict((key, entry[key]) for key in IDENTITY_OPTIONS if entry.get(key) is not None)
            params.update(dir=directory, trusted_issuers=signing_ca, force=False)
            check = host_identity.request_identity(params)
            check["item"] = entry
            checks.append(check)
        checks_by_host.append((name, checks))
    plan = identity_plan.batch_plan(checks_by_host, [])
    store = ca_store.CAStore(os.path.join(base, "ca", issuing))
    signer = store.load(PASSPHRASE)
    issued = issuance.sign_batch(signer, store, plan["csr_requests"])
    chain = signer.intermediates_pem.decode("ascii")
    settings = dict(((name, entry["name"]), entry) for name, entries in entries_by_host.items() for entry in entries)
    for leaf in issued:
        signed = leaf.as_dict()
        entry = settings[(signed["host"], signed["identity"])]
        host_identity.install_identity({
            "dir": host_dirs(base, signed["host"])["mtls_dir"], "name": signed["identity"],
            "certificate": signed["certificate"], "chain": chain, "trust_bundle_content": trust_bundle,
            "crl_content": crls, "owner": entry.get("owner"), "group": entry.get("group"),
            "mode": entry.get("mode") or "0600", "certificate_mode": "0644"})
    for name, entries in entries_by_host.items():
        directory = host_dirs(base, name)["mtls_dir"]
        manifest.write_manifest(directory, manifest.merged(manifest.read_manifest(directory), entries, []))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100,1000", help="host counts, comma-separated (default 10,100,1000)")
    parser.add_argument("--repeat", type=int, default=1, help="rounds per size; medians reported (default 1)")
    parser.add_argument("--forks", type=int, help="ansible forks (default min(N, 50) per size)")
    parser.add_argument("--max-seconds", type=int, default=1200, help="kill a run after this long (default 1200)")
    parser.add_argument("--max-total-seconds", type=int, default=3600,
                        help="start no run once this much time has passed since the first (default 3600)")
    parser.add_argument("--run-all", action="store_true",
                        help="start runs predicted to exceed --max-seconds instead of skipping them")
    parser.add_argument("--json", default=os.path.join(REPO, ".build", "bench", "fleet-scale.json"))
    parser.add_argument("--plot", default=os.path.join(REPO, "docs", "images", "fleet-scale.svg"))
    parser.add_argument("--kinds", default=",".join(kind for kind, dummy in RUN_KINDS),
                        help="run kinds to time, comma-separated (the runs they depend on are timed too; default all)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary fleet directories (and logs)")
    parser.add_argument("--seed-from", type=int,
                        help="seed the fleet at this size and above instead of timing the first runs (see above)")
    args = parser.parse_args(argv)
    sizes = parse_sizes(args.sizes)
    kinds = select_kinds(args.kinds)
    helpers = _bench_issuance()
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=helpers.collections_path(),
               ANSIBLE_DISPLAY_OK_HOSTS="false", ANSIBLE_DISPLAY_SKIPPED_HOSTS="false",
               ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_RETRY_FILES_ENABLED="false", ANSIBLE_NOCOLOR="1")
    check_community_crypto(env)
    forks = dict((size, args.forks or default_forks(size)) for size in sizes)
    work = tempfile.mkdtemp(prefix="fleet-mtls-scale-")
    started_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    rounds = []
    deadline = time.monotonic() + args.max_total_seconds
    try:
        for number in range(args.repeat):
            round_ = {}
            rounds.append(round_)
            for size in sizes:
                round_[size] = {}
                fleet = Fleet(work, size, forks[size], env, args.max_seconds, helpers)
                seeded = args.seed_from is not None and size >= args.seed_from
                if seeded:
                    round_[size]["site_first"] = fleet.seed()
                    seed_result = round_[size]["site_first"]
                    print("round %d N=%d seed: %s (%s)" % (number + 1, size, seed_result["status"],
                                                           seed_result.get("reason")), flush=True)
                for kind in kinds:
                    if seeded and kind in ("site_first", "cc_first", "cc_rerun"):
                        if kind != "site_first":
                            round_[size][kind] = {"status": "skipped", "reason": "not run on a seeded fleet"}
                        continue
                    reason = _skip_reason(kind, size, round_, rounds, args)
                    if not reason and time.monotonic() > deadline:
                        reason = "--max-total-seconds %d used up" % args.max_total_seconds
                    if reason:
                        round_[size][kind] = {"status": "skipped", "reason": reason}
                        print("round %d N=%d %s: skipped (%s)" % (number + 1, size, kind, reason), flush=True)
                        continue
                    run = fleet.run(kind)
                    round_[size][kind] = run
                    print("round %d N=%d %s: %s, %.1f s wall, %.1f s CPU, %.0f MB tree PSS, changed=%d, load %.2f"
                          % (number + 1, size, kind, run["status"], run["wall_seconds"], run["cpu_seconds"],
                             run["peak_tree_pss_mb"], run["recap"]["changed"], run["load_average_after"][0]),
                          flush=True)
                    if run["status"] == "failed":
                        print(run["output_tail"], file=sys.stderr)
                if not args.keep:
                    shutil.rmtree(fleet.base, ignore_errors=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    summary = summarise(rounds)
    report = {
        "started": started_at, "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "ansible_core": _ansible_version()},
        "settings": {"sizes": sizes, "repeat": args.repeat, "forks": forks, "max_seconds": args.max_seconds,
                     "max_total_seconds": args.max_total_seconds,
                     "run_all": args.run_all, "seed_from": args.seed_from, "due_hosts_per_size": dict((s, len(due_hosts(host_names(s)))) for s in sizes),
                     "memory_reported": "peak_tree_pss_mb: peak sum of PSS of the run's whole process tree, sampled "
                                        "every 0.5 s; max_single_rss_mb: ru_maxrss of the largest single process"},
        "summary": summary, "ratios_wall": ratios(summary), "ratios_cpu": ratios(summary, "cpu_seconds"),
        "rounds": rounds,
    }
    for path in (args.json, args.plot):
        if path:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(report, handle, indent=1, default=str)
    if args.plot:
        with open(args.plot, "w") as handle:
            handle.write(svg_plot(plot_series(summary), "Simulated fleet: wall time per run (median of %d)" % args.repeat))
    loads = [run.get(key) for round_ in rounds for kinds in round_.values() for run in kinds.values()
             for key in ("load_average_before", "load_average_after") if run.get(key)]
    print("\nMachine: %d CPUs; 1-minute load average %.2f-%.2f during the runs; %s to %s UTC; repeat %d; "
          "cells: median wall s · CPU s · peak tree PSS MB" % (
              os.cpu_count(), min(load[0] for load in loads) if loads else 0, max(load[0] for load in loads) if loads else 0,
              started_at, report["finished"], args.repeat))
    print(markdown_table(summary, forks))
    print("\nJSON: %s\nplot: %s" % (args.json, args.plot))


def _skip_reason(kind, size, round_, rounds, args):
    """Why ``kind`` at ``size`` is not started in this round, or None."""
    chain = next(names for names in CHAINS.values() if kind in names)
    for earlier in chain[:chain.index(kind)]:
        status = round_[size].get(earlier, {}).get("status")
        if status not in ("ok", "seeded"):
            return "%s %s" % (earlier, status.replace("_", " ") if status else "not run")
    if args.run_all:
        return None
    smaller = [s for s in round_ if s < size]
    for earlier_size in smaller:
        status = round_[earlier_size].get(kind, {}).get("status")
        if status == "timed_out":
            return "timed out at N=%d" % earlier_size
    points = [(s, run[kind]["wall_seconds"]) for done in rounds for s, run in done.items()
              if s < size and run.get(kind, {}).get("status") == "ok"]
    guess = predict(_medians(points), size)
    if guess is not None and guess > args.max_seconds:
        return "predicted %.0f s > --max-seconds %d" % (guess, args.max_seconds)
    return None


def _medians(points):
    by_size = {}
    for size, seconds in points:
        by_size.setdefault(size, []).append(seconds)
    return [(size, statistics.median(values)) for size, values in sorted(by_size.items())]


def _ansible_version():
    try:
        from ansible.release import __version__
        return __version__
    except ImportError:
        return None


if __name__ == "__main__":
    main()
