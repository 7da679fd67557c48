# -*- coding: utf-8 -*-
"""Failures through the roles and playbooks are never swallowed.

Real ansible-playbook runs of the fleet.mtls roles and playbooks against simulated hosts on
localhost (``ansible_connection: local``, each host its own ``mtls_dir``; the CA holder is the
inventory host ``ca`` with the store in a scratch directory). One fleet per test module is set up
once with fleet.mtls.site and kept as a pristine copy; every case starts from that copy, breaks one
thing, and must end with

- a non-zero exit status of ansible-playbook,
- the clear message of what failed in the output (the module's own words, and the host and
  identity concerned where there is one),
- the CA store and every host's mtls_dir exactly as they were (paths, types, modes, contents).
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
import shutil
import socket
import stat
import subprocess

import pytest

from conftest import _ansible_playbook, _collections_path

PASSPHRASE = "correct-horse-battery-staple"
HOSTS = ("h1", "h2")
# A playbook that runs only the identity role (the role level), as a user's own playbook would.
IDENTITY_PLAY = [{"hosts": "mtls_clients", "gather_facts": False,
                  "tasks": [{"name": "Identities", "ansible.builtin.import_role": {"name": "fleet.mtls.identity"}}]}]
CA_PLAY = [{"hosts": "mtls_ca", "gather_facts": False,
            "tasks": [{"name": "CA", "ansible.builtin.import_role": {"name": "fleet.mtls.ca"}}]}]
# A new identity for h1 and h2: signing it is what fails in the signer cases (the hosts' own
# identities are valid and would not be signed at all).
NEW_IDENTITY = {"name": "extra", "profile": "client"}


def _closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Fleet:
    """The scratch fleet: ``ca_dir``, ``host_dir(name)``, ``run(playbook, extra_vars)``."""

    def __init__(self, base):
        self.base = str(base)
        self.ca_dir = os.path.join(self.base, "ca")
        self.hosts_dir = os.path.join(self.base, "hosts")
        self.pristine = os.path.join(self.base, "pristine")
        self.inventory = self.write_inventory("inventory.json", {})
        for name, play in (("identity.yml", IDENTITY_PLAY), ("ca.yml", CA_PLAY)):
            with open(os.path.join(self.base, name), "w") as handle:
                json.dump(play, handle)

    def host_dir(self, name):
        return os.path.join(self.hosts_dir, name)

    def write_inventory(self, name, ca_host_vars):
        import sys
        inventory = {"all": {
            "vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                     "mtls_ca_dir": self.ca_dir, "mtls_ca_passphrase": PASSPHRASE,
                     "mtls_identity_gather_facts": False},
            "children": {
                "mtls_ca": {"hosts": {"ca": ca_host_vars}},
                "mtls_clients": {"hosts": dict((host, {"mtls_dir": self.host_dir(host)}) for host in HOSTS)}}}}
        path = os.path.join(self.base, name)
        with open(path, "w") as handle:
            json.dump(inventory, handle)
        return path

    def run(self, playbook, extra_vars=None, inventory=None, check=False, limit=None):
        if not playbook.startswith("fleet.mtls."):
            playbook = os.path.join(self.base, playbook)
        argv = [_ansible_playbook(), "-i", inventory or self.inventory, playbook] + (["--check"] if check else [])
        argv += ["--limit", limit] if limit else []
        if extra_vars:
            argv += ["-e", json.dumps(extra_vars)]
        env = dict(os.environ)
        env.update({
            "ANSIBLE_COLLECTIONS_PATH": _collections_path(),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_PIPELINING": "true",
            "ANSIBLE_HOST_KEY_CHECKING": "false",
            "ANSIBLE_RETRY_FILES_ENABLED": "false",
            "ANSIBLE_LOCALHOST_WARNING": "false",
        })
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=self.base, timeout=1200,
                              check=False)
        return proc.returncode, proc.stdout + proc.stderr

    def save_pristine(self):
        shutil.copytree(self.ca_dir, os.path.join(self.pristine, "ca"), symlinks=True)
        shutil.copytree(self.hosts_dir, os.path.join(self.pristine, "hosts"), symlinks=True)

    def restore(self):
        for live, name in ((self.ca_dir, "ca"), (self.hosts_dir, "hosts")):
            if os.path.lexists(live):
                shutil.rmtree(live)
            shutil.copytree(os.path.join(self.pristine, name), live, symlinks=True)

    def snapshot(self):
        """relative path -> (type, mode, sha256 or link target) of the CA store and every host dir."""
        state = {}
        for top in (self.ca_dir, self.hosts_dir):
            for root, dirs, files in os.walk(top):
                for name in dirs + files:
                    path = os.path.join(root, name)
                    info = os.lstat(path)
                    rel = os.path.relpath(path, self.base)
                    if stat.S_ISLNK(info.st_mode):
                        state[rel] = ("link", os.readlink(path))
                    elif stat.S_ISDIR(info.st_mode):
                        state[rel] = ("dir", oct(stat.S_IMODE(info.st_mode)))
                    else:
                        with open(path, "rb") as handle:
                            digest = hashlib.sha256(handle.read()).hexdigest()
                        state[rel] = ("file", oct(stat.S_IMODE(info.st_mode)), digest)
        return state


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    """A CA holder and two client hosts, set up once by fleet.mtls.site."""
    built = Fleet(tmp_path_factory.mktemp("fleet"))
    rc, output = built.run("fleet.mtls.site")
    assert rc == 0, output[-6000:]
    for host in HOSTS:
        assert os.path.exists(os.path.join(built.host_dir(host), "certs", "%s.crt" % host)), output[-3000:]
    built.save_pristine()
    return built


# ------------------------------------------------------------------ what each case breaks


def _garbage(*parts):
    def breaks(fleet):
        with open(os.path.join(fleet.ca_dir, *parts), "w") as handle:
            handle.write("this is not what the file should hold\n")
    return breaks


def _remove_store(name):
    def breaks(fleet):
        shutil.rmtree(os.path.join(fleet.ca_dir, name))
    return breaks


def _bundle_a_directory(host):
    def breaks(fleet):
        bundle = os.path.join(fleet.host_dir(host), "trust-bundle.pem")
        os.unlink(bundle)
        os.mkdir(bundle)
    return breaks


def _unreachable_ca(fleet):
    return fleet.write_inventory("unreachable.json", {"ansible_connection": "ssh", "ansible_host": "127.0.0.1",
                                                      "ansible_port": _closed_port(), "ansible_user": "nobody"})


class Case:
    def __init__(self, name, playbook, extra_vars=None, expect=(), breaks=None, inventory=None, may_change=(),
                 limit=None):
        self.name, self.playbook, self.extra_vars, self.limit = name, playbook, extra_vars or {}, limit
        self.expect, self.breaks, self.inventory, self.may_change = expect, breaks, inventory, may_change

    def __repr__(self):
        return self.name


WRONG = {"mtls_ca_passphrase": "wrongwrongwrong"}
EXTRA = {"mtls_identities": [NEW_IDENTITY]}
SIGNER_FAILED = r"Signing on ca failed for 2 request\(s\) \(h1/extra, h2/extra\); nothing was installed"

CASES = [
    # The issue's own reproduction: the renewal keys staged for the forced requests are removed
    # again; the saved CSR (the last request, a cache no service reads) is the one file left changed.
    Case("identity: wrong passphrase, forced renewal", "identity.yml",
         dict(WRONG, mtls_identity_force=True),
         [r"Signing on ca failed for 2 request\(s\) \(h1/h1, h2/h2\)",
          r"wrong passphrase for CA key \S+/issuing-1/ca\.key"],
         may_change=("hosts/*/certs/*.csr",)),
    Case("identity: wrong passphrase, new identity", "identity.yml", dict(WRONG, **EXTRA),
         [SIGNER_FAILED + " and the keys made for them were removed", r"wrong passphrase for CA key"]),
    Case("identity: no passphrase", "identity.yml", dict(EXTRA, mtls_ca_passphrase=""),
         [SIGNER_FAILED, r"mtls_ca_passphrase is not set for h1 nor for the CA holder ca"]),
    Case("site: wrong passphrase", "fleet.mtls.site", WRONG,
         [r"failed: \[ca\] \(item=root-1 \(generation 1\)\)", r"wrong passphrase for CA key \S+/root-1/ca\.key"]),
    Case("site: passphrase too short", "fleet.mtls.site", {"mtls_ca_passphrase": "short"},
         [r"mtls_ca_passphrase is undefined, not a string or shorter than 8 characters"]),
    Case("ca role: wrong passphrase", "ca.yml", WRONG, [r"wrong passphrase for CA key \S+/root-1/ca\.key"]),
    Case("identity: no CA store", "identity.yml", {"mtls_ca_dir": "/nonexistent/fleet-mtls-ca"},
         [r"rotation\.json, trust-bundle\.pem, crl-bundle\.pem, signing-ca\.pem missing in "
          r"/nonexistent/fleet-mtls-ca on ca: run the fleet\.mtls\.ca role"]),
    Case("identity: issuing store gone", "identity.yml", EXTRA,
         [SIGNER_FAILED, r"CA store \S+/issuing-1 does not exist"], breaks=_remove_store("issuing-1")),
    Case("identity: ca.key garbage", "identity.yml", EXTRA,
         [SIGNER_FAILED, r"\S+/issuing-1/ca\.key"], breaks=_garbage("issuing-1", "ca.key")),
    Case("site: store.json garbage", "fleet.mtls.site", {},
         [r"CA store metadata \S+/root-1/store\.json is corrupt"], breaks=_garbage("root-1", "store.json")),
    Case("rotate: rotation.json garbage", "fleet.mtls.rotate", {},
         [r"rotation\.json"], breaks=_garbage("rotation.json")),
    Case("identity: validity beyond the issuer", "identity.yml",
         {"mtls_identities": [dict(NEW_IDENTITY, validity_days=5000)]},
         [SIGNER_FAILED, r"request 1 \(identity extra on host h1\): .*validity_days=5000 would end on .*after the issuing CA expires"]),
    Case("identity: bad SAN", "identity.yml",
         {"mtls_identities": [dict(NEW_IDENTITY, profile="server", sans=["DNS:bad name.example"])]},
         [r"fatal: \[h1\]", r"identity extra: .*bad name\.example"]),
    Case("identity: unknown profile", "identity.yml", {"mtls_identities": [dict(NEW_IDENTITY, profile="superuser")]},
         [r"value of profile must be one of: server, client, server_client, got: superuser found in mtls_identities"]),
    Case("identity: traversal in the name", "identity.yml", {"mtls_identities": [dict(NEW_IDENTITY, name="../x")]},
         [r'h1: mtls_identities\[0\] \(\\?"\.\./x\\?"\): name must be 1-128 letters, digits']),
    Case("identity: key mode that lets others read", "identity.yml",
         {"mtls_identities": [dict(NEW_IDENTITY, mode="0644")]},
         [r"fatal: \[h1\]", r"identity extra: mode 0644 is refused for a private key file"]),
    Case("identity: key mode that is no mode", "identity.yml", {"mtls_identities": [dict(NEW_IDENTITY, mode="u=rw")]},
         [r"fatal: \[h1\]", r"identity extra: .*invalid file mode 'u=rw'"]),
    Case("identity: CA holder unreachable", "identity.yml", {},
         [r"UNREACHABLE!", r"ca.*port \d+: Connection refused"], inventory=_unreachable_ca),
    Case("revoke: unknown identity", "fleet.mtls.revoke", {"mtls_revoke_host": "h1", "mtls_revoke_identity": "nobody"},
         [r"No certificate of identity nobody on host h1 was issued by a trusted CA generation \(issuing-1\)"]),
    Case("revoke: unknown serial", "fleet.mtls.revoke", {"mtls_revoke_serial": "0xdeadbeef"},
         [r"No certificate with serial 0xdeadbeef was issued by a trusted CA generation"]),
    Case("revoke: unknown reason", "fleet.mtls.revoke",
         {"mtls_revoke_host": "h1", "mtls_revoke_reason": "boredom"},
         [r"mtls_revoke_reason must be an RFC 5280 reason .*\(got boredom\)"]),
    Case("revoke: wrong passphrase", "fleet.mtls.revoke", dict(WRONG, mtls_revoke_host="h1"),
         [r"failed: \[ca\] \(item=issuing-1: [0-9a-f]+\)", r"wrong passphrase for CA key \S+/issuing-1/ca\.key"]),
    Case("rotate: batch that is no batch", "fleet.mtls.rotate", {"mtls_rotate_batch": "0%"},
         [r"mtls_rotate_batch a host count or a percentage from 1% to 100% \(got 0%\)"]),
    Case("rotate_ca: unknown scope", "fleet.mtls.rotate_ca", {"mtls_rotate_ca_scope": "sideways"},
         [r"mtls_rotate_ca_scope must be issuing or root \(got sideways\)"]),
    Case("report: threshold that is no number", "fleet.mtls.report", {"mtls_report_warn_days": "three weeks"},
         [r"fleet\.mtls\.report_settings: mtls_report_warn_days must be a number of days >= 0, got 'three weeks'"]),
    Case("report: trust bundle that cannot be read", "fleet.mtls.report", {},
         [r"fatal: \[h1\]: FAILED!.*h1\.crt \(identity h1\)", r"cannot read trust_bundle \S+/h1/trust-bundle\.pem: Is a directory"],
         breaks=_bundle_a_directory("h1")),
    Case("report: flag that is no flag", "fleet.mtls.report", {"mtls_report_fail_on_problems": "maybe"},
         [r"mtls_report_fail_on_problems must be a boolean \(true or false\), got 'maybe'"]),
]


def _changed(before, after, may_change):
    def allowed(path):
        return any(fnmatch.fnmatch(path, pattern) for pattern in may_change)
    return sorted(path for path in set(before) | set(after)
                  if before.get(path) != after.get(path) and not allowed(path))


def _check_failure(fleet, case, inventory=None):
    before = fleet.snapshot()
    rc, output = fleet.run(case.playbook, case.extra_vars, inventory=inventory, limit=case.limit)
    excerpt = output[-8000:]
    assert rc != 0, "%s exited 0:\n%s" % (case.name, excerpt)
    for pattern in case.expect:
        assert re.search(pattern, output), "%r not in the output:\n%s" % (pattern, excerpt)
    # The failure is the module's or the role's own, never a later templating error on a result
    # that was not there.
    assert "has no attribute" not in output, excerpt
    assert _changed(before, fleet.snapshot(), case.may_change) == [], excerpt
    return output


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_failure_stops_the_run_with_its_message_and_changes_nothing(fleet, case):
    fleet.restore()
    if case.breaks:
        case.breaks(fleet)
    inventory = case.inventory(fleet) if case.inventory else None
    output = _check_failure(fleet, case, inventory)
    assert PASSPHRASE not in output and "wrongwrongwrong" not in output


@pytest.fixture
def full_host_dir(fleet):
    """h1's mtls_dir on a tmpfs with no room left (mounted here as root, unmounted afterwards)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    fleet.restore()
    host = fleet.host_dir("h1")
    keep = os.path.join(fleet.base, "h1-content")
    if os.path.lexists(keep):
        shutil.rmtree(keep)
    shutil.move(host, keep)
    os.mkdir(host, 0o755)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0755", "fleet-mtls-full", host], check=True)
    try:
        for name in os.listdir(keep):
            source, target = os.path.join(keep, name), os.path.join(host, name)
            if os.path.isdir(source):
                shutil.copytree(source, target, symlinks=True)
            else:
                shutil.copy2(source, target)
        shutil.copystat(keep, host)
        # Fill what is left, so the next block written fails with ENOSPC.
        filler = os.open(os.path.join(host, "filler"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            while os.write(filler, b"\0" * 4096):
                pass
        except OSError:
            pass
        finally:
            os.close(filler)
        yield host
    finally:
        subprocess.run(["umount", host], check=True)
        shutil.rmtree(keep)


def test_full_disk_on_the_host_stops_the_run_and_changes_nothing(fleet, full_host_dir):
    # Limited to h1: a forced renewal of h2 would rightly go on and change h2.
    case = Case("identity: full disk on h1", "identity.yml", {"mtls_identity_force": True},
                [r"failed: \[h1\] \(item=h1\)", r"cannot write \S+/hosts/h1/private/h1\.key\.new: No space left on device"],
                limit="h1")
    _check_failure(fleet, case)


def test_check_mode_still_announces_what_it_would_issue(fleet):
    """A dry run is no failure: it says what it would issue and changes nothing."""
    fleet.restore()
    before = fleet.snapshot()
    rc, output = fleet.run("identity.yml", EXTRA, check=True)
    assert rc == 0, output[-6000:]
    assert "Would issue: h1/extra/missing, h2/extra/missing" in output, output[-6000:]
    assert _changed(before, fleet.snapshot(), ()) == []


def test_check_mode_of_a_ca_rotation_plans_it_and_changes_nothing(fleet):
    """rotate_ca --check on a fleet with no rotation under way: the plan is reported, no phase runs
    (each needs what the one before wrote), the CA store and every host stay as they were."""
    fleet.restore()
    before = fleet.snapshot()
    rc, output = fleet.run("fleet.mtls.rotate_ca", {"mtls_rotate_ca_scope": "root"}, check=True)
    assert rc == 0, output[-6000:]
    assert re.search(r"root rotation from generation 1 to 2.*; this run: no phase \(check mode\)", output), \
        output[-4000:]
    assert _changed(before, fleet.snapshot(), ()) == []


def test_signing_that_succeeds_installs_and_removes_nothing(fleet):
    """The rescue is only for failures: a new identity is issued and installed on both hosts."""
    fleet.restore()
    rc, output = fleet.run("identity.yml", EXTRA)
    assert rc == 0, output[-6000:]
    assert "Issuing: h1/extra/missing, h2/extra/missing" in output
    for host in HOSTS:
        for path in ("private/extra.key", "certs/extra.crt", "certs/extra.chain.pem"):
            assert os.path.exists(os.path.join(fleet.host_dir(host), path)), (host, path, output[-3000:])
