# -*- coding: utf-8 -*-
"""Bad input to the host-side modules (csr, install_identity), as a table that grows with every
defect found: each row prepares its own host directory, every row of a table runs as one task of
ONE playbook, and each must fail with its message while every byte and mode under the row's
directory (the link targets outside ``etc`` included) stays as it was.

Add a row: ``(id, module, prepare, message)``; ``prepare(row)`` lays out ``row.etc`` and returns the
module arguments; ``message`` may name ``{key}``, ``{staged}``, ``{crt}``, ``{chain}``, ``{csr}``,
``{private}``, ``{certs}``, ``{lock}``, ``{bundle}``, ``{crl}``.
"""

from __future__ import annotations

import errno
import os
import subprocess

import pytest
from cryptography.hazmat.primitives import serialization

from host_pki import HostPki, snapshot, write_new_key

CN = "web1.example.net"
SANS = ["DNS:web1.example.net"]


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return HostPki(str(tmp_path_factory.mktemp("pki")))


class Row:
    def __init__(self, root, pki):
        self.root = root
        self.pki = pki
        self.etc = os.path.join(root, "etc")
        self.outside = os.path.join(root, "outside")
        os.makedirs(self.outside, exist_ok=True)
        private, certs = os.path.join(self.etc, "private"), os.path.join(self.etc, "certs")
        self.paths = {"key": os.path.join(private, "web.key"), "staged": os.path.join(private, "web.key.new"),
                      "crt": os.path.join(certs, "web.crt"), "chain": os.path.join(certs, "web.chain.pem"),
                      "csr": os.path.join(certs, "web.csr"), "private": private, "certs": certs,
                      "lock": os.path.join(private, ".web.lock"),
                      "bundle": os.path.join(self.etc, "trust-bundle.pem"), "crl": os.path.join(self.etc, "crl.pem")}

    def issued(self):
        """An identity as csr + install_identity leave it: key, leaf, chain, trust bundle."""
        self.pki.provision(self.etc, "web", CN, SANS)
        with open(self.paths["bundle"], "wb") as handle:
            handle.write(self.pki.trust_bundle)
        return self

    def link(self, name, directory=False):
        """Replace ``name`` with a link to a copy outside ``etc`` (mode 0644: a chmod would show)."""
        path = self.paths[name]
        target = os.path.join(self.outside, name)
        if directory:
            os.makedirs(target)
        elif os.path.exists(path):
            with open(path, "rb") as source, open(target, "wb") as copy:
                copy.write(source.read())
            os.unlink(path)
        else:
            with open(target, "wb") as copy:
                copy.write(b"planted\n")
        if not directory:
            os.chmod(target, 0o644)
        if directory and os.path.isdir(path):
            os.rename(path, target + ".moved")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.symlink(target, path)
        return self

    def csr_args(self, **extra):
        values = {"name": "web", "dir": self.etc, "common_name": CN, "sans": SANS}
        values.update(extra)
        return values

    def staged_install_args(self, **extra):
        """A renewal: a staged key and its signed certificate, ready for install_identity."""
        key = write_new_key(self.paths["staged"])
        cert, chain = self.pki.sign_key(key, CN, SANS)
        return self.install_args(cert, chain, **extra)

    def live_install_args(self, **extra):
        with open(self.paths["key"], "rb") as handle:
            key = serialization.load_pem_private_key(handle.read(), None)
        cert, chain = self.pki.sign_key(key, CN, SANS)
        return self.install_args(cert, chain, **extra)

    def install_args(self, cert, chain, **extra):
        values = {"name": "web", "dir": self.etc, "certificate": cert, "chain": chain,
                  "trust_bundle_content": self.pki.trust_bundle.decode()}
        values.update(extra)
        return values


def _key_as(kind):
    def prepare(row):
        row.issued()
        os.unlink(row.paths["key"])
        if kind == "dir":
            os.makedirs(row.paths["key"])
        else:
            os.mkfifo(row.paths["key"])
        return row.csr_args()
    return prepare


def _dir_is_a_file(row):
    with open(row.etc, "w") as handle:
        handle.write("not a directory\n")
    return row.csr_args()


CSR_ROWS = [
    ("mode-0666", lambda row: row.csr_args(mode="0666"), "mode 0666 is refused for a private key file"),
    ("mode-0644", lambda row: row.issued().csr_args(mode="0644"), "mode 0644 is refused for a private key file"),
    ("mode-0660", lambda row: row.csr_args(mode="0660"), "mode 0660 is refused"),
    ("mode-0700", lambda row: row.csr_args(mode="0700"), "choose one of 0600, 0640, 0400, 0440"),
    ("mode-int-420", lambda row: row.csr_args(mode=420), "mode 0644 is refused"),
    ("mode-garbage", lambda row: row.csr_args(mode="rw-r-----"), "invalid file mode 'rw-r-----'"),
    ("live-key-link-chmod", lambda row: row.issued().link("key").csr_args(mode="0640", group="root"),
     "private key {key} is a symbolic link"),
    ("staged-key-link", lambda row: row.issued().link("staged").csr_args(force=True),
     "staged private key {staged} is a symbolic link"),
    ("certificate-link", lambda row: row.issued().link("crt").csr_args(), "certificate {crt} is a symbolic link"),
    ("chain-link", lambda row: row.issued().link("chain").csr_args(), "chain {chain} is a symbolic link"),
    ("csr-link", lambda row: row.issued().link("csr").csr_args(force=True), "CSR {csr} is a symbolic link"),
    ("private-dir-link", lambda row: row.link("private", directory=True).csr_args(),
     "private key directory {private} is a symbolic link"),
    ("certs-dir-link", lambda row: row.issued().link("certs", directory=True).csr_args(),
     "certificate directory {certs} is a symbolic link"),
    ("lock-link", lambda row: row.issued().link("lock").csr_args(force=True), "lock file {lock} is a symbolic link"),
    ("unknown-owner", lambda row: row.issued().csr_args(owner="no-such-user-x", force=True),
     "unknown owner 'no-such-user-x'"),
    ("unknown-group", lambda row: row.csr_args(group="no-such-group-x"), "unknown group 'no-such-group-x'"),
    ("dir-is-a-file", _dir_is_a_file, "exists and is not a directory"),
    ("key-is-a-directory", _key_as("dir"), "private key {key} is not a regular file"),
    ("key-is-a-fifo", _key_as("fifo"), "private key {key} is not a regular file"),
]


def _then_link(row, make_args, name, **link_options):
    args = make_args()
    row.link(name, **link_options)
    return args


def _chain_dir(row):
    row.issued()
    os.unlink(row.paths["chain"])
    os.makedirs(row.paths["chain"])
    return row.live_install_args()


INSTALL_ROWS = [
    ("mode-0644", lambda row: row.issued().live_install_args(mode="0644"), "mode 0644 is refused for a private key"),
    ("mode-0666", lambda row: row.issued().staged_install_args(mode="0666"), "mode 0666 is refused"),
    ("certificate-mode-0666", lambda row: row.issued().live_install_args(certificate_mode="0666"),
     "certificate_mode 0666 is refused"),
    ("live-key-link", lambda row: _then_link(row.issued(), row.live_install_args, "key"),
     "private key {key} is a symbolic link"),
    ("staged-key-link", lambda row: _then_link(row.issued(), row.staged_install_args, "staged"),
     "staged private key {staged} is a symbolic link"),
    ("certificate-link", lambda row: row.issued().link("crt").live_install_args(), "certificate {crt} is a symbolic link"),
    ("chain-link", lambda row: row.issued().link("chain").live_install_args(), "certificate {chain} is a symbolic link"),
    ("bundle-link", lambda row: row.issued().link("bundle").live_install_args(), "trust bundle {bundle} is a symbolic link"),
    ("crl-link", lambda row: row.issued().link("crl").live_install_args(crl_content=row.pki.crl.decode()),
     "crl {crl} is a symbolic link"),
    ("private-dir-link", lambda row: _then_link(row.issued(), row.live_install_args, "private", directory=True),
     "private key directory {private} is a symbolic link"),
    ("certs-dir-link", lambda row: row.issued().link("certs", directory=True).live_install_args(),
     "certificate directory {certs} is a symbolic link"),
    ("lock-link", lambda row: row.issued().link("lock").live_install_args(), "lock file {lock} is a symbolic link"),
    ("unknown-owner", lambda row: row.issued().live_install_args(owner="no-such-user-x"), "unknown owner 'no-such-user-x'"),
    ("unknown-group", lambda row: row.issued().staged_install_args(group="no-such-group-x"),
     "unknown group 'no-such-group-x'"),
    ("chain-is-a-directory", _chain_dir, "certificate {chain} is not a regular file"),
]


def _run_table(ansible_tasks, tmp_path, pki, module, rows, prepare_root=None):
    prepared = []
    for number, (row_id, prepare, message) in enumerate(rows):
        root = str(tmp_path / ("row-%02d-%s" % (number, row_id)))
        os.makedirs(root)
        if prepare_root:
            prepare_root(root)
        row = Row(root, pki)
        args = prepare(row)
        if prepare_root:
            fill(root)
        prepared.append((row_id, row, args, message, snapshot(root)))
    runs = ansible_tasks([(module, args) for dummy, dummy2, args, dummy3, dummy4 in prepared])
    problems = []
    for (row_id, row, args, message, before), run in zip(prepared, runs):
        expected = message.format(**row.paths)
        if run.get("failed") is not True:
            problems.append("%s: did not fail (%s)" % (row_id, {k: run.get(k) for k in ("changed", "reason")}))
        elif expected not in run.get("msg", ""):
            problems.append("%s: message %r lacks %r" % (row_id, run.get("msg"), expected))
        elif "Traceback" in run.get("module_stderr", "") + run.get("exception", ""):
            problems.append("%s: traceback" % row_id)
        if snapshot(row.root) != before:
            problems.append("%s: files under %s changed" % (row_id, row.root))
    assert "PRIVATE KEY-----" not in runs[0].output
    assert not problems, "\n".join(problems)


def test_csr_bad_input_matrix(ansible_tasks, tmp_path, pki):
    _run_table(ansible_tasks, tmp_path, pki, "csr", CSR_ROWS)


def test_install_identity_bad_input_matrix(ansible_tasks, tmp_path, pki):
    _run_table(ansible_tasks, tmp_path, pki, "install_identity", INSTALL_ROWS)


# --- a full disk: every row on its own small tmpfs, filled after the row is prepared ----------

def fill(directory):
    fd = os.open(os.path.join(directory, "filler"), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for dummy in range(1 << 20):  # bounded: far more blocks than the test disk has
            os.write(fd, b"\0" * 4096)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)


@pytest.fixture
def mounts():
    mounted = []

    def mount(root):
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", root],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            pytest.skip("cannot mount a tmpfs here (needs root): %s" % proc.stderr.strip())
        mounted.append(root)

    yield mount
    for root in reversed(mounted):
        subprocess.run(["umount", "-l", root], check=True)


FULL_DISK_ROWS = [
    ("csr-first-issue", "csr", lambda row: row.csr_args(), "No space left on device"),
    ("csr-renewal", "csr", lambda row: row.issued().csr_args(force=True), "No space left on device"),
    ("csr-renewal-and-mode-drift", "csr", lambda row: _drifted(row).csr_args(force=True), "No space left on device"),
    ("install-renewal", "install_identity", lambda row: row.issued().staged_install_args(), "No space left on device"),
    ("install-bundle-and-crl", "install_identity",
     lambda row: row.issued().live_install_args(crl_content=row.pki.crl.decode()), "No space left on device"),
]


def _drifted(row):
    """An issued identity whose key mode drifted: the fix-up must wait for the writes, so it too
    is left undone when they fail."""
    row.issued()
    os.chmod(row.paths["key"], 0o640)
    return row


@pytest.mark.parametrize("module", ["csr", "install_identity"])
def test_full_disk_matrix(ansible_tasks, tmp_path, pki, mounts, module):
    rows = [(row_id, prepare, message) for row_id, row_module, prepare, message in FULL_DISK_ROWS
            if row_module == module]
    _run_table(ansible_tasks, tmp_path, pki, module, rows, prepare_root=mounts)
