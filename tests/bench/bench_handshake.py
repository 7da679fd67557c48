# -*- coding: utf-8 -*-
"""Handshake benchmark: the server CPU that mTLS costs NGINX and Mosquitto.

Run from the repository root with the venv's python (podman and the project's test image needed;
`make images` builds it):

    python tests/bench/bench_handshake.py [--quick] [--handshakes 1000] [--rounds 1] [--concurrency 8]

For each configuration below, one container from localhost/fleet-mtls-test runs NGINX and Mosquitto
with the files the roles install (/etc/nginx/conf.d/fleet-mtls.conf, /etc/mosquitto/conf.d/
fleet-mtls.conf and the ACL file, rendered from roles/*/templates with the roles' defaults by a real
`ansible.builtin.template` run; the certificates under /etc/mtls), ports published on 127.0.0.1
only. A load generator (a bounded thread pool, Python ssl, --concurrency connections in flight)
makes handshakes, each followed by the smallest exchange that proves the connection is up (an HTTP
request answered 204; an MQTT CONNECT answered by CONNACK), and the server's CPU time (utime+stime
of the NGINX worker processes / the Mosquitto process, from /proc/<host pid>/stat) over the
measured window is divided by the completed handshakes. Full handshakes: a fresh session each time;
resumed: every connection offers the session of the one before (the fraction the server really
resumed is reported).

Configurations:
  oneway    our defaults without client certificates: the rendered files with the one line that
            asks for a client certificate turned off (NGINX "ssl_verify_client off", Mosquitto
            "require_certificate false"; the roles render mTLS only);
  mtls      our defaults: EC P-256 keys (keys.DEFAULT_KEY_TYPE), leaf <- issuing CA <- root made by
            plugins/module_utils (ca_store, issuance, crl), the chain file leaf + issuing CA, the
            root as trust bundle, both CAs' CRLs;
  tutorial  the classic tutorial: `openssl genrsa 2048` keys, one self-signed CA (`openssl req
            -x509`) signing server and client with `openssl x509 -req`; same templates;
  and, NGINX only, measured changes of a default: mtls+tickets (mtls_nginx_session_tickets: true),
  mtls+crl10k (the issuing CA's CRL with 10,000 revoked serials), mtls+rootonly (leaves signed by
  the root itself: no issuing CA in the chain).
Prints a JSON report and a Markdown table; the targets of issue 10 are checked on the figures.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import json
import os
import platform
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BIN = os.path.dirname(sys.executable)
DEFAULT_IMAGE = "localhost/fleet-mtls-test:bookworm"
PODMAN_LOCK = "/tmp/podman.lock"
CONTAINER_PREFIX = "fleet-mtls-bench-hs-"
# Another user of the lock (a molecule run) may hold it for minutes.
LOCK_WAIT_SECONDS = 900
PROCESS_MATCH = {"nginx": "nginx: worker process", "mosquitto": "mosquitto"}

SERVERS = ("nginx", "mosquitto")
TLS_VERSIONS = ("TLSv1.2", "TLSv1.3")
MODES = ("full", "resumed")
BASE_CONFIGS = ("oneway", "mtls", "tutorial")
# (name, nginx template overrides, PKI options); NGINX only.
VARIANTS = (("mtls+tickets", {"mtls_nginx_session_tickets": True}, {}),
            ("mtls+crl10k", {}, {"revoked": 10000}),
            ("mtls+rootonly", {}, {"intermediate": False}))
MQTT_CONNACK = 0x20


# ---- pure parts (unit-tested) -------------------------------------------------------------------

def parse_proc_stat(text):
    """(utime, stime) clock ticks from the text of /proc/<pid>/stat.

    The command name (field 2) is in parentheses and may hold spaces or ')': the fields after it
    start at the last ')'. utime and stime are fields 14 and 15 (1-based, proc(5)).
    """
    end = text.rfind(")")
    if end < 0 or "(" not in text[:end]:
        raise ValueError("not a /proc/<pid>/stat line: %r" % text[:80])
    rest = text[end + 1:].split()
    # rest[0] is field 3 (state): field n is rest[n - 3].
    if len(rest) < 13:
        raise ValueError("/proc/<pid>/stat line too short: %r" % text[:80])
    return int(rest[11]), int(rest[12])


def cpu_ticks(stats):
    """Sum of utime+stime over {pid: (utime, stime)}."""
    return sum(utime + stime for utime, stime in stats.values())


def cpu_delta_ticks(before, after):
    """CPU ticks the processes spent between two samples ({pid: (utime, stime)}).

    A process present in both counts its difference; one that appeared meanwhile counts whole. A
    process that went away is an error: its CPU would be lost, the figure too low.
    """
    gone = sorted(set(before) - set(after))
    if gone:
        raise ValueError("server process(es) %s exited during the measurement" % ", ".join(map(str, gone)))
    total = 0
    for pid, (utime, stime) in after.items():
        old_utime, old_stime = before.get(pid, (0, 0))
        delta = utime + stime - old_utime - old_stime
        if delta < 0:
            raise ValueError("CPU time of pid %s went backwards (pid reused?)" % pid)
        total += delta
    return total


def ms_per_handshake(ticks, clock_ticks_per_second, handshakes):
    if handshakes <= 0:
        raise ValueError("no handshake completed: nothing to divide by")
    return 1000.0 * ticks / clock_ticks_per_second / handshakes


def ratio(value, reference):
    """value / reference, None when either is missing or the reference is 0."""
    if value is None or not reference:
        return None
    return value / reference


def add_ratios(rows):
    """Give each row ratio_oneway and ratio_tutorial: same server, TLS version and mode."""
    ms = dict(((row["server"], row["config"], row["tls"], row["mode"]), row["ms"]) for row in rows)
    for row in rows:
        key = (row["server"], row["tls"], row["mode"])
        row["ratio_oneway"] = ratio(row["ms"], ms.get((key[0], "oneway") + key[1:]))
        row["ratio_tutorial"] = ratio(row["ms"], ms.get((key[0], "tutorial") + key[1:]))
    return rows


# Issue 10's target: mTLS with our defaults against one-way (full, resumed) and the tutorial (full).
TARGETS = (("ratio_oneway", "full", 2.0), ("ratio_oneway", "resumed", 1.15), ("ratio_tutorial", "full", 0.5))


def check_targets(rows, config="mtls"):
    """[(server, tls, mode, ratio name, measured, limit, met)] for every target cell of ``config``."""
    verdicts = []
    for row in rows:
        if row["config"] != config:
            continue
        for name, mode, limit in TARGETS:
            if row["mode"] == mode and row.get(name) is not None:
                verdicts.append((row["server"], row["tls"], mode, name, row[name], limit, row[name] <= limit))
    return verdicts


def median_rows(rounds):
    """One row per (server, config, tls, mode) with the median ms of all rounds; counts summed."""
    cells = {}
    for row in (row for rows in rounds for row in rows):
        cells.setdefault((row["server"], row["config"], row["tls"], row["mode"]), []).append(row)
    merged = []
    for key, rows in cells.items():
        merged.append({"server": key[0], "config": key[1], "tls": key[2], "mode": key[3],
                       "handshakes": sum(row["handshakes"] for row in rows),
                       "resumed": sum(row["resumed"] for row in rows),
                       "ms": statistics.median(row["ms"] for row in rows),
                       "ms_all": [row["ms"] for row in rows],
                       "rate": statistics.median(row["rate"] for row in rows)})
    return merged


def _fmt(value, digits=2):
    return "-" if value is None else ("%.*f" % (digits, value))


def markdown_table(rows):
    order = dict((name, n) for n, name in enumerate(BASE_CONFIGS + tuple(v[0] for v in VARIANTS)))
    lines = ["| server | config | TLS | handshake | handshakes (resumed) | server CPU ms / handshake "
             "| ratio to one-way | ratio to tutorial | handshakes/s |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in sorted(rows, key=lambda r: (SERVERS.index(r["server"]), TLS_VERSIONS.index(r["tls"]),
                                           MODES.index(r["mode"]), order.get(r["config"], 99))):
        lines.append("| %s | %s | %s | %s | %d (%d) | %s | %s | %s | %.0f |" % (
            row["server"], row["config"], row["tls"].replace("TLSv", ""), row["mode"], row["handshakes"],
            row["resumed"], _fmt(row["ms"], 3), _fmt(row["ratio_oneway"]), _fmt(row["ratio_tutorial"]),
            row["rate"]))
    return "\n".join(lines)


def mqtt_connect_packet(client_id):
    """An MQTT 3.1.1 CONNECT (clean session, keep-alive 10 s) for ``client_id``."""
    ident = client_id.encode("utf-8")
    body = (b"\x00\x04MQTT" + b"\x04" + b"\x02" + b"\x00\x0a" + len(ident).to_bytes(2, "big") + ident)
    if len(body) > 127:
        raise ValueError("client id too long for this one-byte length encoding")
    return bytes([0x10, len(body)]) + body


def parse_top_hpids(output, match):
    """Host pids of the processes whose command (from `podman top <c> hpid args`) starts with ``match``."""
    pids = []
    for line in output.splitlines()[1:]:
        fields = line.split(None, 1)
        if len(fields) == 2 and fields[0].isdigit() and fields[1].startswith(match):
            pids.append(int(fields[0]))
    return pids


# ---- PKI ----------------------------------------------------------------------------------------

def _collection_path():
    tree = os.path.join(REPO, ".build", "bench-collections")
    link = os.path.join(tree, "ansible_collections", "fleet", "mtls")
    if not os.path.islink(link):
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink(REPO, link)
    return tree


def _write(path, data, mode=0o644):
    # The bench keys are throw-away and must be readable by the container's mosquitto user.
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(data if isinstance(data, bytes) else data.encode())
    os.chmod(path, mode)


def defaults_pki(work, mtls_dir, revoked=0, intermediate=True):
    """Our defaults, by the collection's own library: root -> issuing CA -> server and client leaves.

    ``revoked`` serials go on the issuing CA's CRL; ``intermediate=False`` signs the leaves with the
    root itself (a chain one certificate shorter, to measure what the issuing CA costs).
    """
    sys.path.insert(0, _collection_path())
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.x509.oid import NameOID
    from ansible_collections.fleet.mtls.plugins.module_utils import ca_store, crl, issuance, keys

    ca_dir = os.path.join(work, "ca")
    if not os.path.isdir(os.path.join(ca_dir, "issuing")):
        ca_store.create_root(os.path.join(ca_dir, "root"), "bench-root", common_name="Bench Root")
        ca_store.create_intermediate(os.path.join(ca_dir, "issuing"), "bench-issuing", os.path.join(ca_dir, "root"),
                                     "bench-root", common_name="Bench Issuing")
    root = ca_store.CAStore(os.path.join(ca_dir, "root")).load("bench-root")
    issuing = ca_store.CAStore(os.path.join(ca_dir, "issuing")).load("bench-issuing")
    if not intermediate:
        issuing = root
    for name, profile in (("localhost", "server"), ("bench-client", "client")):
        key = keys.generate_private_key(keys.DEFAULT_KEY_TYPE)
        csr = (x509.CertificateSigningRequestBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
               .sign(key, keys.signing_hash(key)))
        cert = issuance.sign_leaf(issuing, csr.public_bytes(serialization.Encoding.PEM), profile=profile,
                                  sans=["DNS:localhost"] if profile == "server" else None)
        _write(os.path.join(mtls_dir, "private", name + ".key"), keys.serialize_private_key(key))
        _write(os.path.join(mtls_dir, "certs", name + ".chain.pem"),
               cert.public_bytes(serialization.Encoding.PEM) + issuing.intermediates_pem)
    _write(os.path.join(mtls_dir, "trust-bundle.pem"), ca_store.certificate_pem(root.certificate))
    now = ca_store.utcnow()
    entries = [{"serial": "%x" % ca_store.random_serial(), "revoked_at": None} for dummy in range(revoked)]
    crls = [crl.build_crl(root, [] if intermediate else entries, 1, now=now)]
    if intermediate:
        crls.append(crl.build_crl(issuing, entries, 1, now=now))
    _write(os.path.join(mtls_dir, "crl.pem"), b"".join(c.public_bytes(serialization.Encoding.PEM) for c in crls))


def _openssl(*args, cwd):
    subprocess.run(("openssl",) + args, cwd=cwd, check=True, capture_output=True, timeout=120)


def tutorial_pki(work, mtls_dir):
    """The classic tutorial: RSA-2048 from `openssl genrsa 2048`, one self-signed CA signing both."""
    sys.path.insert(0, _collection_path())
    from cryptography.hazmat.primitives import serialization
    from ansible_collections.fleet.mtls.plugins.module_utils import ca_store, crl, keys

    cwd = os.path.join(work, "tutorial")
    os.makedirs(cwd, exist_ok=True)
    _openssl("genrsa", "-out", "ca.key", "2048", cwd=cwd)
    _openssl("req", "-x509", "-new", "-key", "ca.key", "-sha256", "-days", "365", "-subj", "/CN=Tutorial CA",
             "-out", "ca.crt", cwd=cwd)
    with open(os.path.join(cwd, "san.ext"), "w") as handle:
        handle.write("subjectAltName=DNS:localhost\n")
    for name in ("localhost", "bench-client"):
        _openssl("genrsa", "-out", name + ".key", "2048", cwd=cwd)
        _openssl("req", "-new", "-key", name + ".key", "-subj", "/CN=" + name, "-out", name + ".csr", cwd=cwd)
        _openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                 "-sha256", "-days", "365", "-extfile", "san.ext", "-out", name + ".crt", cwd=cwd)
        for suffix, dest in ((".key", os.path.join(mtls_dir, "private", name + ".key")),
                             (".crt", os.path.join(mtls_dir, "certs", name + ".chain.pem"))):
            with open(os.path.join(cwd, name + suffix), "rb") as handle:
                _write(dest, handle.read())
    with open(os.path.join(cwd, "ca.crt"), "rb") as handle:
        ca_pem = handle.read()
    _write(os.path.join(mtls_dir, "trust-bundle.pem"), ca_pem)
    # The templates always name a CRL; the tutorial CA's own, empty (the same thing our CA publishes).
    with open(os.path.join(cwd, "ca.key"), "rb") as handle:
        ca_key = keys.load_private_key(handle.read())
    cert = ca_store.load_certificate(ca_pem, "tutorial CA")
    signer = ca_store.Signer(cwd, cert, ca_key, [cert])
    _write(os.path.join(mtls_dir, "crl.pem"), crl.build_crl(signer, [], 1).public_bytes(serialization.Encoding.PEM))


# ---- rendering ----------------------------------------------------------------------------------

def render_configs(work, configs):
    """Render the roles' templates once per config by a real ansible.builtin.template run."""
    tasks = []
    for config in configs:
        out = os.path.join(work, config["name"])
        site = {"name": "bench", "server_name": "localhost", "listen": 443, "return": "204"}
        nginx_vars = dict(config.get("nginx_vars", {}), mtls_nginx_sites=[site])
        tasks.append({"name": "nginx " + config["name"], "ansible.builtin.template": {
            "src": os.path.join(REPO, "roles", "nginx", "templates", "fleet-mtls.conf.j2"),
            "dest": os.path.join(out, "nginx-fleet-mtls.conf"), "mode": "0644"}, "vars": nginx_vars})
        for template, dest in (("fleet-mtls.conf.j2", "mosquitto-fleet-mtls.conf"),
                               ("fleet-mtls.acl.j2", "mosquitto-fleet-mtls.acl")):
            tasks.append({"name": "mosquitto %s %s" % (config["name"], template), "ansible.builtin.template": {
                "src": os.path.join(REPO, "roles", "mosquitto", "templates", template),
                "dest": os.path.join(out, dest), "mode": "0644"}})
    play = {"hosts": "localhost", "gather_facts": False, "connection": "local",
            # The roles' defaults and their internal vars (what the templates read besides them).
            "vars_files": [path for path in (os.path.join(REPO, "roles", role, kind, "main.yml")
                                             for role in ("nginx", "mosquitto") for kind in ("defaults", "vars"))
                           if os.path.exists(path)],
            "tasks": tasks}
    path = os.path.join(work, "render.yml")
    with open(path, "w") as handle:
        json.dump([play], handle)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=_collection_path(), ANSIBLE_PYTHON_INTERPRETER=sys.executable,
               ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_INVENTORY_UNPARSED_WARNING="false")
    proc = subprocess.run([os.path.join(BIN, "ansible-playbook"), path], capture_output=True, text=True, env=env,
                          cwd=work, timeout=300, check=False)
    if proc.returncode != 0:
        raise SystemExit("rendering the role templates failed:\n%s\n%s" % (proc.stdout[-3000:], proc.stderr[-3000:]))
    for config in configs:
        if config["oneway"]:
            for name, line, oneway in ONEWAY_EDITS:
                turn_off(os.path.join(work, config["name"], name), line, oneway)


# One-way TLS: the rendered mTLS files with the one line that asks for a client certificate turned
# off (the roles render mTLS only).
ONEWAY_EDITS = (("nginx-fleet-mtls.conf", "    ssl_verify_client on;\n", "    ssl_verify_client off;\n"),
                ("mosquitto-fleet-mtls.conf", "require_certificate true\n", "require_certificate false\n"))


def turn_off(path, line, replacement):
    with open(path) as handle:
        text = handle.read()
    if text.count(line) != 1:
        raise SystemExit("%s: expected exactly one %r line to turn off" % (path, line.strip()))
    with open(path, "w") as handle:
        handle.write(text.replace(line, replacement))


# ---- podman -------------------------------------------------------------------------------------

def podman(*args, timeout=LOCK_WAIT_SECONDS, check=True):
    proc = subprocess.run(("flock", PODMAN_LOCK, "podman") + args, capture_output=True, text=True,
                          timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError("podman %s failed (rc=%d): %s" % (" ".join(args[:3]), proc.returncode,
                                                             (proc.stderr or proc.stdout)[-2000:]))
    return proc


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """One container running NGINX and Mosquitto with one config's files."""

    def __init__(self, work, config, image):
        self.image = image
        self.name = CONTAINER_PREFIX + "%d-%s" % (os.getpid(), config["name"].replace("+", "-"))
        self.dir = os.path.join(work, config["name"])
        self.ports = {"nginx": free_port(), "mosquitto": free_port()}
        self.server_pids = {}

    def start(self):
        # What the packages' systemd units do before starting the daemons, then the daemons.
        script = ("install -d -o mosquitto /run/mosquitto /var/log/mosquitto && nginx -t -q && nginx && "
                  "exec mosquitto -c /etc/mosquitto/mosquitto.conf")
        podman("run", "-d", "--name", self.name, "--entrypoint", "/bin/sh",
               "-p", "127.0.0.1:%d:443" % self.ports["nginx"], "-p", "127.0.0.1:%d:8883" % self.ports["mosquitto"],
               "-v", "%s:/etc/mtls:ro" % os.path.join(self.dir, "mtls"),
               "-v", "%s:/etc/nginx/conf.d/fleet-mtls.conf:ro" % os.path.join(self.dir, "nginx-fleet-mtls.conf"),
               "-v", "%s:/etc/mosquitto/conf.d/fleet-mtls.conf:ro" % os.path.join(self.dir, "mosquitto-fleet-mtls.conf"),
               "-v", "%s:/etc/mosquitto/fleet-mtls.acl:ro" % os.path.join(self.dir, "mosquitto-fleet-mtls.acl"),
               self.image, "-c", script)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            out = podman("top", self.name, "hpid", "args", check=False).stdout
            found = dict((server, parse_top_hpids(out, PROCESS_MATCH[server])) for server in SERVERS)
            if all(found.values()) and all(self._listening(port) for port in self.ports.values()):
                # Looked up once: the measurement itself never waits for the podman lock.
                self.server_pids = found
                return
            time.sleep(0.5)
        logs = podman("logs", self.name, check=False)
        raise RuntimeError("container %s did not start nginx and mosquitto:\n%s%s"
                           % (self.name, logs.stdout[-2000:], logs.stderr[-2000:]))

    @staticmethod
    def _listening(port):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2):
                return True
        except OSError:
            return False

    def pids(self, server):
        return self.server_pids[server]

    def stop(self):
        podman("rm", "-f", "-t", "2", self.name, check=False, timeout=LOCK_WAIT_SECONDS)


def sample(pids):
    stats = {}
    for pid in pids:
        with open("/proc/%d/stat" % pid) as handle:
            stats[pid] = parse_proc_stat(handle.read())
    return stats


# ---- load generator -----------------------------------------------------------------------------

def client_context(tls, mtls_dir, with_cert):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    version = ssl.TLSVersion.TLSv1_2 if tls == "TLSv1.2" else ssl.TLSVersion.TLSv1_3
    ctx.minimum_version = ctx.maximum_version = version
    ctx.load_verify_locations(os.path.join(mtls_dir, "trust-bundle.pem"))
    if with_cert:
        ctx.load_cert_chain(os.path.join(mtls_dir, "certs", "bench-client.chain.pem"),
                            os.path.join(mtls_dir, "private", "bench-client.key"))
    return ctx


def _recv_all(sock, limit=65536):
    data = b""
    while len(data) < limit:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def one_connection(server, port, ctx, session, n):
    """One handshake plus the smallest exchange; (session for the next, resumed?)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        # Without it the client's small writes wait for a delayed ACK (40 ms), not for the server.
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with ctx.wrap_socket(raw, server_hostname="localhost", session=session) as sock:
            if server == "nginx":
                sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                reply = _recv_all(sock)
                if not reply.startswith(b"HTTP/1.1 204"):
                    raise RuntimeError("nginx answered %r" % reply[:60])
            else:
                sock.sendall(mqtt_connect_packet("bench-%d" % n))
                reply = sock.recv(4)
                if not reply or reply[0] != MQTT_CONNACK:
                    raise RuntimeError("mosquitto answered %r" % reply)
                sock.sendall(b"\xe0\x00")  # DISCONNECT
            return sock.session, sock.session_reused


def drive(server, port, ctx, mode, count, seconds, concurrency, on_start=None):
    """Make up to ``count`` connections within ``seconds``, ``concurrency`` in flight.

    Bounded twice: by count and by the deadline. ``on_start`` is called once every worker has made
    its set-up connection (resumed mode) and before the first counted one. Returns (completed,
    resumed, elapsed seconds).
    """
    lock = threading.Lock()
    state = {"next": 0, "done": 0, "resumed": 0}
    barrier = threading.Barrier(concurrency + 1)

    def worker(slot):
        session = None
        if mode == "resumed":
            session = one_connection(server, port, ctx, None, -1 - slot)[0]
        barrier.wait(timeout=60)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with lock:
                if state["next"] >= count:
                    return
                state["next"] += 1
                n = state["next"]
            new_session, reused = one_connection(server, port, ctx, session if mode == "resumed" else None, n)
            if mode == "resumed":
                session = new_session
            with lock:
                state["done"] += 1
                state["resumed"] += 1 if reused else 0

    with concurrent.futures.ThreadPoolExecutor(max_workers=concurrency) as pool:
        futures = [pool.submit(worker, slot) for slot in range(concurrency)]
        try:
            barrier.wait(timeout=60)
        except threading.BrokenBarrierError:
            for future in futures:
                if future.done():
                    future.result()
            raise
        if on_start:
            on_start()
        started = time.monotonic()
        for future in futures:
            future.result()
        elapsed = time.monotonic() - started
    return state["done"], state["resumed"], elapsed


def measure(srv, server, config, tls, mode, args, clk_tck):
    mtls_dir = os.path.join(srv.dir, "mtls")
    ctx = client_context(tls, mtls_dir, with_cert=not config["oneway"])
    # Warm-up (workers' lazy state, the session cache): not counted.
    drive(server, srv.ports[server], ctx, mode, max(20, args.handshakes // 20), args.max_seconds, args.concurrency)
    pids = srv.pids(server)
    samples = {}
    done, resumed, elapsed = drive(server, srv.ports[server], ctx, mode, args.handshakes, args.max_seconds,
                                   args.concurrency, on_start=lambda: samples.update(before=sample(pids)))
    ticks = cpu_delta_ticks(samples["before"], sample(pids))
    row = {"server": server, "config": config["name"], "tls": tls, "mode": mode, "handshakes": done,
           "resumed": resumed, "cpu_ticks": ticks, "ms": ms_per_handshake(ticks, clk_tck, done),
           "rate": done / elapsed if elapsed else 0.0, "seconds": elapsed}
    print("  %-9s %-13s %s %-7s %5d handshakes (%d resumed) %.3f ms CPU each, %.0f/s"
          % (server, config["name"], tls, mode, done, resumed, row["ms"], row["rate"]), file=sys.stderr, flush=True)
    return row


def configs_for(args):
    configs = [{"name": "oneway", "oneway": True, "pki": "defaults"},
               {"name": "mtls", "oneway": False, "pki": "defaults"},
               {"name": "tutorial", "oneway": False, "pki": "tutorial"}]
    if not args.no_variants:
        for name, nginx_vars, pki_options in VARIANTS:
            configs.append({"name": name, "oneway": False, "pki": "defaults", "nginx_vars": nginx_vars,
                            "pki_options": pki_options, "servers": ("nginx",)})
    return configs


def loadavg():
    with open("/proc/loadavg") as handle:
        return " ".join(handle.read().split()[:3])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--handshakes", type=int, default=1000, help="measured handshakes per cell (default 1000)")
    parser.add_argument("--concurrency", type=int, default=8, help="connections in flight (default 8)")
    parser.add_argument("--rounds", type=int, default=1, help="rounds over all configs; medians reported (default 1)")
    parser.add_argument("--max-seconds", type=float, default=20, help="time bound of one cell (default 20)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 150 handshakes, 1 round, no variants")
    parser.add_argument("--no-variants", action="store_true", help="skip the mtls+tickets and mtls+crl10k runs")
    parser.add_argument("--image", default=DEFAULT_IMAGE, help="test image to run the servers in (default %(default)s)")
    parser.add_argument("--json", default=os.path.join(REPO, ".build", "bench", "handshake.json"))
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    if args.quick:
        args.handshakes, args.rounds, args.no_variants = 150, 1, True
    for bound in ("handshakes", "concurrency", "rounds"):
        if getattr(args, bound) < 1:
            parser.error("--%s must be 1 or more" % bound)
    if not shutil.which("podman"):
        raise SystemExit("podman is needed (the servers run in the project's test image %s)" % args.image)
    if podman("image", "exists", args.image, check=False).returncode != 0:
        raise SystemExit("image %s is missing: build it with `make images`" % args.image)
    clk_tck = os.sysconf("SC_CLK_TCK")
    # A kill (timeout, Ctrl-C) still removes the containers: SIGTERM unwinds like SystemExit.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    work = tempfile.mkdtemp(prefix="bench-handshake-")
    started = datetime.datetime.now(datetime.timezone.utc)
    report = {"image": args.image, "host": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version(),
              "openssl_client": ssl.OPENSSL_VERSION, "args": vars(args), "started": started.isoformat(timespec="seconds"),
              "loadavg_before": loadavg()}
    servers = []
    try:
        configs = configs_for(args)
        for config in configs:
            mtls_dir = os.path.join(work, config["name"], "mtls")
            if config["pki"] == "tutorial":
                tutorial_pki(work, mtls_dir)
            else:
                defaults_pki(work, mtls_dir, **config.get("pki_options", {}))
        render_configs(work, configs)
        rounds = []
        for number in range(args.rounds):
            rows = []
            for config in configs:
                print("round %d, %s (load %s)" % (number + 1, config["name"], loadavg()), file=sys.stderr, flush=True)
                srv = Server(work, config, args.image)
                servers.append(srv)
                srv.start()
                try:
                    for server in config.get("servers", SERVERS):
                        for tls in TLS_VERSIONS:
                            for mode in MODES:
                                rows.append(measure(srv, server, config, tls, mode, args, clk_tck))
                finally:
                    srv.stop()
                    servers.remove(srv)
            rounds.append(rows)
        report["loadavg_after"] = loadavg()
        report["rows"] = add_ratios(median_rows(rounds))
        report["targets"] = [dict(zip(("server", "tls", "mode", "ratio", "measured", "limit", "met"), verdict))
                             for verdict in check_targets(report["rows"])]
        report["seconds"] = (datetime.datetime.now(datetime.timezone.utc) - started).total_seconds()
    finally:
        for srv in servers:
            srv.stop()
        if args.keep:
            print("kept %s" % work, file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    os.makedirs(os.path.dirname(args.json), exist_ok=True)
    with open(args.json, "w") as handle:
        json.dump(report, handle, indent=2)
    print(json.dumps({key: value for key, value in report.items() if key != "rows"}, indent=2))
    print()
    print(markdown_table(report["rows"]))
    print()
    for verdict in report["targets"]:
        print("target %s %s %s %s = %.2f (limit %.2f): %s" % (verdict["server"], verdict["tls"], verdict["mode"],
              verdict["ratio"], verdict["measured"], verdict["limit"], "met" if verdict["met"] else "NOT met"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
