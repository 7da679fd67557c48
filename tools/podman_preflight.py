"""Prove that this host can run the test fleet before anything depends on it.

    podman_preflight.py STAMP_FILE FINGERPRINT

Starts one throwaway container on a throwaway podman network and resolves a network
alias from inside it, which exercises everything a molecule scenario or the demo needs:
the OCI runtime, cgroups, the default ulimits, the network backend (netavark), its
firewall tool (iptables) and container DNS (aardvark-dns). On failure it names the
likely missing piece and the command that fixes it, instead of a bare netavark error
minutes later in a scenario.

The check costs a few seconds; it is skipped when STAMP_FILE already holds FINGERPRINT
(the caller's digest of the installed packages and podman settings), so it runs again
only when set-up changed something or the check has not passed on this host before.

The container image is made from this host's own binaries (sh, sleep, getent and the
libraries they load): no registry is needed and it is a few megabytes.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import uuid
from dataclasses import dataclass

IMAGE = "localhost/fleet-mtls-preflight:1"
IMAGE_BINARIES = ("/bin/sh", "/bin/sleep", "/usr/bin/getent")
NETAVARK_PATHS = ("/usr/lib/podman/netavark", "/usr/libexec/podman/netavark")
AARDVARK_PATHS = ("/usr/lib/podman/aardvark-dns", "/usr/libexec/podman/aardvark-dns")
CONTAINERS_CONF = "/etc/containers/containers.conf"
# Every podman call is bounded: a hung runtime must fail the check, not the session.
PODMAN_TIMEOUT = 90


@dataclass(frozen=True)
class Facts:
    """What the host has, read before the container is started."""

    iptables: bool
    netavark: bool
    aardvark: bool
    runtime: str
    runtime_found: bool


@dataclass(frozen=True)
class Diagnosis:
    piece: str
    why: str
    fix: str


# (pattern in podman's error, diagnosis) in order: the first match wins. Patterns are
# the messages seen on Debian 12's podman 4.3 / netavark 1.4 / runc / crun 1.8.
KNOWN_ERRORS = (
    (
        re.compile(r"cgroups in hybrid mode not supported"),
        Diagnosis(
            "runtime",
            "crun refuses the hybrid (v1 + unified) cgroups of this VM",
            f'set engine.runtime = "runc" in {CONTAINERS_CONF} and apt-get install runc '
            "(make setup does both)",
        ),
    ),
    (
        re.compile(r"setrlimit|RLIMIT_NOFILE|rlimit.*operation not permitted", re.IGNORECASE),
        Diagnosis(
            "ulimits",
            "the sandbox cannot raise rlimits to podman's defaults (nofile 1048576)",
            f'set containers.default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"] '
            f"in {CONTAINERS_CONF} (make setup does)",
        ),
    ),
    (
        re.compile(r"OCI runtime .*not found|default OCI runtime|executable file .*runc.* not found"),
        Diagnosis("runtime", "the configured OCI runtime is not installed", "apt-get install runc"),
    ),
    (
        re.compile(r"conmon.*(not found|no such file)", re.IGNORECASE),
        Diagnosis("runtime", "conmon (podman's container monitor) is missing", "apt-get install conmon"),
    ),
    (
        re.compile(r"cgroup", re.IGNORECASE),
        Diagnosis(
            "cgroups",
            "the runtime could not set up the container's cgroups",
            f'check `podman info` (cgroupManager, cgroupVersion); with hybrid cgroups use runc: '
            f'engine.runtime = "runc" in {CONTAINERS_CONF}',
        ),
    ),
)

FIREWALL = Diagnosis(
    "firewall tool",
    "netavark 1.4 drives the firewall through the iptables binary, which is not installed",
    "apt-get install iptables",
)
NETWORK_BACKEND = Diagnosis(
    "network backend",
    "podman's network backend netavark is not installed",
    "apt-get install netavark aardvark-dns",
)
CONTAINER_DNS = Diagnosis(
    "container DNS",
    "containers on one network cannot resolve each other's names (aardvark-dns)",
    "apt-get install aardvark-dns",
)


def diagnose(error: str, facts: Facts) -> Diagnosis:
    """The likely missing piece behind a failed preflight, from podman's words and the facts."""
    if not facts.runtime_found:
        return Diagnosis(
            "runtime",
            f"the OCI runtime {facts.runtime!r} is not on this host",
            f"apt-get install {facts.runtime}",
        )
    for pattern, diagnosis in KNOWN_ERRORS:
        if pattern.search(error):
            return diagnosis
    if "netavark" in error or "network" in error.lower():
        if not facts.netavark:
            return NETWORK_BACKEND
        if not facts.iptables:
            return FIREWALL
        return Diagnosis(
            "network backend",
            "netavark could not set up the container's network",
            "read the error above and `podman info --format '{{.Host.NetworkBackend}}'`",
        )
    if "name resolution failed" in error:
        return CONTAINER_DNS if facts.aardvark else Diagnosis(
            CONTAINER_DNS.piece, "aardvark-dns is not installed", CONTAINER_DNS.fix
        )
    if not facts.iptables:
        return FIREWALL
    return Diagnosis("unknown", "podman failed for a reason this check does not know", "read the error above")


def read_facts() -> Facts:
    runtime = configured_runtime()
    return Facts(
        iptables=shutil.which("iptables") is not None,
        netavark=any(os.path.exists(path) for path in NETAVARK_PATHS),
        aardvark=any(os.path.exists(path) for path in AARDVARK_PATHS),
        runtime=runtime,
        runtime_found=shutil.which(runtime) is not None,
    )


def configured_runtime() -> str:
    try:
        with open(CONTAINERS_CONF, encoding="utf-8") as conf:
            for line in conf:
                match = re.match(r'\s*runtime\s*=\s*"([^"]+)"', line)
                if match:
                    return match.group(1)
    except FileNotFoundError:
        pass
    return "crun"


def podman(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        ("podman", *args), input=stdin, capture_output=True, timeout=PODMAN_TIMEOUT, check=False
    )


def shared_libraries(binary: str) -> list[str]:
    """The libraries `binary` loads (ldd's resolved paths, loader included)."""
    out = subprocess.run(("ldd", binary), capture_output=True, text=True, check=False).stdout
    paths = []
    for line in out.splitlines():
        match = re.search(r"(/\S+)\s+\(0x", line)
        if match:
            paths.append(match.group(1))
    return paths


def image_tarball() -> bytes:
    """A root filesystem holding IMAGE_BINARIES, their libraries and an nsswitch.conf."""
    files = []
    for binary in IMAGE_BINARIES:
        files.append(binary)
        files.extend(shared_libraries(binary))
    with tempfile.TemporaryDirectory(prefix="fleet-mtls-preflight-") as tmp:
        nsswitch = os.path.join(tmp, "nsswitch.conf")
        with open(nsswitch, "w", encoding="ascii") as handle:
            handle.write("hosts: files dns\n")
        archive_path = os.path.join(tmp, "rootfs.tar")
        with tarfile.open(archive_path, "w") as archive:
            for path in sorted(set(files)):
                archive.add(os.path.realpath(path), arcname=path.lstrip("/"))
            archive.add(nsswitch, arcname="etc/nsswitch.conf")
        with open(archive_path, "rb") as handle:
            return handle.read()


def ensure_image() -> str:
    if podman("image", "exists", IMAGE).returncode == 0:
        return ""
    result = podman("import", "-", IMAGE, stdin=image_tarball())
    return "" if result.returncode == 0 else result.stderr.decode(errors="replace")


def run_check() -> str:
    """Empty string when a container on a fresh network starts and resolves an alias."""
    error = ensure_image()
    if error:
        return error
    suffix = uuid.uuid4().hex[:8]
    network = f"fleet-mtls-preflight-{suffix}"
    container = f"fleet-mtls-preflight-{suffix}"
    alias = f"preflight-alias-{suffix}"
    created = podman("network", "create", network)
    if created.returncode != 0:
        return created.stderr.decode(errors="replace")
    try:
        # The alias exists only in the network's DNS (not /etc/hosts), so resolving it
        # proves aardvark-dns answers; a short bounded retry covers its start-up.
        script = (
            f"i=0; while [ $i -lt 10 ]; do getent hosts {alias} >/dev/null && exit 0; "
            f"i=$((i+1)); sleep 0.5; done; echo 'name resolution failed for {alias}' >&2; exit 3"
        )
        result = podman(
            "run", "--rm", "--name", container, "--network", network, "--network-alias", alias,
            IMAGE, "/bin/sh", "-c", script,
        )
        if result.returncode != 0:
            return (result.stderr or result.stdout).decode(errors="replace") or f"exit {result.returncode}"
        return ""
    except subprocess.TimeoutExpired:
        return f"podman run did not finish within {PODMAN_TIMEOUT} s"
    finally:
        podman("rm", "--force", "--ignore", container)
        podman("network", "rm", "--force", network)


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    stamp, fingerprint = argv[1], argv[2]
    try:
        with open(stamp, encoding="ascii") as handle:
            if handle.read().strip() == fingerprint:
                print("==> podman preflight passed before on this host (nothing changed since)")
                return 0
    except FileNotFoundError:
        pass
    if shutil.which("podman") is None:
        print("ERROR: podman preflight: podman is not installed; run 'make setup' as root", file=sys.stderr)
        return 1
    try:
        error = run_check()
    except subprocess.TimeoutExpired as exc:
        error = f"{' '.join(exc.cmd)} did not finish within {PODMAN_TIMEOUT} s"
    if error:
        found = diagnose(error, read_facts())
        print(
            "ERROR: podman preflight failed: a container on a podman network could not run.\n"
            f"  podman said: {error.strip()}\n"
            f"  likely missing piece: {found.piece}: {found.why}\n"
            f"  fix: {found.fix}",
            file=sys.stderr,
        )
        return 1
    os.makedirs(os.path.dirname(stamp), exist_ok=True)
    with open(stamp + ".tmp", "w", encoding="ascii") as handle:
        handle.write(fingerprint + "\n")
    os.replace(stamp + ".tmp", stamp)
    print("==> podman preflight passed: container started on a fresh network and resolved a network alias")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
