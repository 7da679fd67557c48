"""Real TLS servers on 127.0.0.1 for the probe tests: ``openssl s_server`` and ``mosquitto``.

Each server runs under ``timeout`` (so it dies even if the test process is killed), listens on a
free loopback port, and is stopped by pid when the test is done.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time

MAX_LIFETIME_SECONDS = 300
START_TIMEOUT_SECONDS = 10


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _listening(port):
    try:
        with open("/proc/net/tcp") as handle:
            lines = handle.readlines()[1:]
    except OSError:
        return False
    wanted = "0100007F:%04X" % port
    # State 0A is LISTEN; checking it avoids a test connection the server would log as a client.
    return any(line.split()[1] == wanted and line.split()[3] == "0A" for line in lines)


def _group_alive(group_id):
    try:
        os.killpg(group_id, 0)
    except ProcessLookupError:
        return False
    return True


class RunningServer:
    """A server process with a bounded lifetime; ``stop()`` kills it by its own pid."""

    def __init__(self, argv, ports, log_path, cwd=None):
        self.port = ports[0]
        self.log_path = log_path
        self._log = open(log_path, "wb")
        # stdin stays an open pipe: s_server closes connections when its stdin hits EOF.
        # A session of its own: stop() ends the server and its `timeout` wrapper as one group.
        self.process = subprocess.Popen(["timeout", str(MAX_LIFETIME_SECONDS)] + argv, cwd=cwd,
                                        stdin=subprocess.PIPE, stdout=self._log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not all(_listening(port) for port in ports):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("%s did not start on ports %s:\n%s" % (argv[0], ports, self.log()))
            time.sleep(0.05)

    def log(self):
        with open(self.log_path, "rb") as handle:
            return handle.read().decode("utf-8", "replace")

    def stop(self):
        # SIGKILL on `timeout` alone would orphan the server: signal the whole process group.
        for sig, grace in ((signal.SIGTERM, 5), (signal.SIGKILL, 10)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.process.wait(timeout=grace)
                if not _group_alive(self.process.pid):
                    break
            except subprocess.TimeoutExpired:
                continue
        if self.process.stdin:
            self.process.stdin.close()
        self._log.close()


def start_s_server(directory, server_paths, trust_bundle, extra_args=(), tls13_only=False):
    """``openssl s_server`` with the server identity from ``Identity.write()`` paths."""
    port = free_port()
    argv = ["openssl", "s_server", "-accept", "127.0.0.1:%d" % port,
            "-cert", server_paths["cert"], "-key", server_paths["key"],
            "-cert_chain", server_paths["chain"], "-CAfile", trust_bundle]
    if tls13_only:
        argv.append("-tls1_3")
    argv.extend(extra_args)
    return RunningServer(argv, [port], os.path.join(directory, "s_server-%d.log" % port), cwd=directory)


def mosquitto_available():
    return shutil.which("mosquitto") is not None


def start_mosquitto(directory, server_paths, trust_bundle, crl_path):
    """mosquitto with two mTLS listeners: ``ports['identity']`` maps the client certificate to the
    user name (accepts valid identities), ``ports['password']`` still wants a password (CONNACK 5)."""
    ports = {"identity": free_port(), "password": free_port()}
    password_file = os.path.join(directory, "mosquitto.passwd")
    open(password_file, "w").close()
    tls = ("cafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate true\ncrlfile %s\n"
           % (trust_bundle, server_paths["chain"], server_paths["key"], crl_path))
    broker_log = os.path.join(directory, "mosquitto.log")
    # A log file, not stdout: mosquitto block-buffers stdout when it is not a terminal.
    config = ("per_listener_settings true\nuser root\nlog_dest file %s\nlog_type all\n"
              "listener %d 127.0.0.1\n%suse_identity_as_username true\nallow_anonymous false\n"
              "listener %d 127.0.0.1\n%sallow_anonymous false\npassword_file %s\n"
              % (broker_log, ports["identity"], tls, ports["password"], tls, password_file))
    config_path = os.path.join(directory, "mosquitto.conf")
    with open(config_path, "w") as handle:
        handle.write(config)
    server = RunningServer(["mosquitto", "-c", config_path], [ports["identity"], ports["password"]],
                           os.path.join(directory, "mosquitto.stdout"))
    server.log_path = broker_log
    server.ports = ports
    return server
