# -*- coding: utf-8 -*-
"""The host side of an identity without Ansible: crash consistency under real SIGKILLs, a full
disk (a real tmpfs), links, key modes, locking and leftover temporaries."""

from __future__ import annotations

import errno
import json
import hashlib
import multiprocessing
import os
import signal
import stat
import subprocess
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from ansible_collections.fleet.mtls.plugins.module_utils import host_identity
from ansible_collections.fleet.mtls.plugins.module_utils.errors import MtlsError
from ansible_collections.fleet.mtls.plugins.module_utils.host_identity import install_identity, request_identity
from pki_factory import Pki  # noqa: E402

CN = "web.example.net"
SANS = ["DNS:web.example.net"]
FORK = multiprocessing.get_context("fork")


@pytest.fixture(scope="module")
def pki():
    return Pki()


@pytest.fixture
def etc(tmp_path):
    return str(tmp_path / "etc")


def csr_params(etc, **extra):
    params = {"dir": etc, "name": "web", "common_name": CN, "sans": SANS, "profile": "server"}
    params.update(extra)
    return params


class _PublicOnly:
    """What make_certificate needs of a subject key: its public half (from the CSR)."""

    def __init__(self, public_key):
        self._public_key = public_key

    def public_key(self):
        return self._public_key


def sign(pki, csr_pem, **options):
    csr = x509.load_pem_x509_csr(csr_pem.encode())
    return pki.issuing.issue(CN, key=_PublicOnly(csr.public_key()), sans=SANS, eku=["serverAuth"], **options)


def install_params(etc, pki, leaf, **extra):
    params = {"dir": etc, "name": "web", "certificate": leaf.cert_pem.decode(), "chain": leaf.chain_pem.decode(),
              "trust_bundle_content": pki.trust_bundle_pem.decode()}
    params.update(extra)
    return params


def issue(etc, pki, **csr_extra):
    """One full cycle csr -> sign -> install_identity; returns the installed leaf."""
    request = request_identity(csr_params(etc, **csr_extra))
    leaf = sign(pki, request["csr"])
    install_identity(install_params(etc, pki, leaf))
    return leaf


def files(etc):
    return {name: os.path.join(etc, *parts) for name, parts in (
        ("key", ("private", "web.key")), ("staged", ("private", "web.key.new")), ("crt", ("certs", "web.crt")),
        ("chain", ("certs", "web.chain.pem")), ("csr", ("certs", "web.csr")))}


def read(path):
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def snapshot(directory):
    state = {}
    for root, dirs, names in os.walk(directory):
        for name in dirs + names:
            path = os.path.join(root, name)
            st = os.lstat(path)
            digest = hashlib.sha256(read(path)).hexdigest() if stat.S_ISREG(st.st_mode) else None
            state[os.path.relpath(path, directory)] = (digest, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
    return state


def temporaries(etc):
    return sorted(name for sub in ("private", "certs") if os.path.isdir(os.path.join(etc, sub))
                  for name in os.listdir(os.path.join(etc, sub)) if name.startswith("."))


# --- crash consistency: a real SIGKILL before each rename --------------------------------------

def _killed_before_rename(action, params, renames_done):
    """Child process: run ``action`` and SIGKILL itself right after rename number ``renames_done``
    (0: right before the first one)."""
    real_rename = os.rename
    count = [0]

    def rename(src, dst):
        if renames_done == 0:
            os.kill(os.getpid(), signal.SIGKILL)
        real_rename(src, dst)
        count[0] += 1
        if count[0] == renames_done:
            os.kill(os.getpid(), signal.SIGKILL)

    os.rename = rename
    action(params)
    os._exit(0)


def run_killed(action, params, renames_done):
    child = FORK.Process(target=_killed_before_rename, args=(action, params, renames_done))
    child.start()
    child.join(60)
    return child.exitcode


def _set(etc):
    p = files(etc)
    return (read(p["key"]), read(p["crt"]), read(p["chain"]))


@pytest.mark.parametrize("renames_done", [0, 1, 2, 3])
def test_install_killed_at_each_rename_is_old_or_new_or_reported_then_repaired(etc, pki, renames_done):
    issue(etc, pki)
    old = _set(etc)
    renewal = request_identity(csr_params(etc, force=True))
    assert renewal["key_staged"] is True
    new_leaf = sign(pki, renewal["csr"])
    new = (read(files(etc)["staged"]), new_leaf.cert_pem, new_leaf.chain_pem)

    # key, leaf, chain: three renames (the trust bundle is unchanged), then the staged key goes.
    exitcode = run_killed(install_identity, install_params(etc, pki, new_leaf), renames_done)
    assert exitcode == -signal.SIGKILL
    after_kill = _set(etc)
    check = request_identity(csr_params(etc), check_mode=True)
    if after_kill == old:
        assert check["reason"] == "valid"
    elif after_kill == new:
        assert check["reason"] == "valid"
    else:
        assert check["needs_issue"] is True and check["reason"] in ("key_mismatch", "files_inconsistent"), check
    if renames_done == 0:
        assert temporaries(etc), "a run killed before its first rename leaves its temporaries"

    # The next runs repair the set and remove what the killed run left.
    repair = request_identity(csr_params(etc))
    if repair["needs_issue"]:
        install_identity(install_params(etc, pki, sign(pki, repair["csr"])))
    final = request_identity(csr_params(etc), check_mode=True)
    assert (final["needs_issue"], final["reason"]) == (False, "valid")
    key, crt, chain = _set(etc)
    leaf = x509.load_pem_x509_certificate(crt)
    assert x509.load_pem_x509_certificate(chain) == leaf
    live = serialization.load_pem_private_key(key, None)
    assert live.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) \
        == leaf.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert temporaries(etc) == []


@pytest.mark.parametrize("renames_done", [0, 1])
def test_csr_killed_between_key_and_csr_reuses_the_key(etc, renames_done):
    assert run_killed(request_identity, csr_params(etc), renames_done) == -signal.SIGKILL
    p = files(etc)
    key_before = read(p["key"])
    assert (key_before is not None) == (renames_done == 1) and read(p["csr"]) is None
    result = request_identity(csr_params(etc))
    assert result["key_created"] is (renames_done == 0)
    if key_before is not None:
        assert read(p["key"]) == key_before
    # The CSR's temporary (and before the first rename the key's too) was left by the killed run.
    assert [os.path.basename(path)[:len(".web.key.")] for path in result["leftovers_removed"]] == (
        [".web.csr.", ".web.key."] if renames_done == 0 else [".web.csr."])
    assert temporaries(etc) == []


# --- the files_inconsistent states, each one built directly -----------------------------------

def test_every_mixed_state_is_reported(etc, pki):
    old_leaf = issue(etc, pki)
    p = files(etc)
    renewal = request_identity(csr_params(etc, force=True))
    new_leaf = sign(pki, renewal["csr"])
    old = {"key": read(p["key"]), "crt": old_leaf.cert_pem, "chain": old_leaf.chain_pem}
    new = {"key": read(p["staged"]), "crt": new_leaf.cert_pem, "chain": new_leaf.chain_pem}
    for mix in range(8):
        chosen = dict((name, (new if mix & (1 << bit) else old)[name]) for bit, name in enumerate(("key", "crt", "chain")))
        for name, data in chosen.items():
            with open(p[name], "wb") as handle:
                handle.write(data)
        reason = request_identity(csr_params(etc), check_mode=True)["reason"]
        if mix in (0, 7):
            assert reason in ("valid", "forced")
        else:
            assert reason in ("key_mismatch", "files_inconsistent"), (mix, reason)
    os.unlink(p["chain"])
    assert request_identity(csr_params(etc), check_mode=True)["reason"] == "files_inconsistent"


# --- full disk: a real, small tmpfs ------------------------------------------------------------

@pytest.fixture
def small_disk(tmp_path):
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount_point)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root): %s" % proc.stderr.strip())
    try:
        yield str(mount_point)
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=True)


def fill(directory):
    """Take every free block of the filesystem; returns the filler's path."""
    path = os.path.join(directory, "filler")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for dummy in range(1 << 20):  # bounded: far more blocks than any test disk has
            os.write(fd, b"\0" * 4096)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return path


def test_full_disk_first_csr_leaves_nothing(small_disk):
    etc = os.path.join(small_disk, "etc")
    filler = fill(small_disk)
    with pytest.raises(MtlsError, match="No space left on device"):
        request_identity(csr_params(etc))
    assert sorted(os.listdir(small_disk)) == ["filler"]
    os.unlink(filler)
    assert request_identity(csr_params(etc))["key_created"] is True


def test_full_disk_renewal_csr_and_install_change_nothing(small_disk, pki):
    etc = os.path.join(small_disk, "etc")
    issue(etc, pki)
    filler = fill(small_disk)
    before = snapshot(etc)
    with pytest.raises(MtlsError, match="No space left on device"):
        request_identity(csr_params(etc, force=True))
    assert snapshot(etc) == before
    os.unlink(filler)
    renewal = request_identity(csr_params(etc, force=True))
    leaf = sign(pki, renewal["csr"])
    filler = fill(small_disk)
    before = snapshot(etc)
    with pytest.raises(MtlsError, match="No space left on device"):
        install_identity(install_params(etc, pki, leaf, crl_content=None))
    assert snapshot(etc) == before
    os.unlink(filler)
    assert install_identity(install_params(etc, pki, leaf))["key_promoted"] is True


# --- links, modes, bad input ---------------------------------------------------------------------

def test_live_key_link_is_refused_and_its_target_untouched(etc, tmp_path, pki):
    issue(etc, pki)
    p = files(etc)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_bytes(read(p["key"]))
    os.chmod(str(elsewhere), 0o644)
    os.unlink(p["key"])
    os.symlink(str(elsewhere), p["key"])
    before = snapshot(etc)
    for action, params in ((request_identity, csr_params(etc, mode="0640", group="0")),
                           (install_identity, install_params(etc, pki, sign(pki, request_csr_for(elsewhere))))):
        with pytest.raises(MtlsError, match="private key %s is a symbolic link" % p["key"]):
            action(params)
    assert snapshot(etc) == before
    assert stat.S_IMODE(os.stat(str(elsewhere)).st_mode) == 0o644


def request_csr_for(key_path):
    """A CSR for the key in ``key_path`` (made here, not by the csr module)."""
    key = serialization.load_pem_private_key(read(str(key_path)), None)
    return (x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CN)]))
            .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode())


@pytest.mark.parametrize("which", ["staged", "crt", "chain", "csr"])
def test_links_at_other_identity_files_are_refused(etc, tmp_path, pki, which):
    issue(etc, pki)
    p = files(etc)
    target = tmp_path / "target"
    target.write_bytes(read(p[which]) if os.path.exists(p[which]) else b"x")
    if os.path.exists(p[which]):
        os.unlink(p[which])
    os.symlink(str(target), p[which])
    before = snapshot(etc)
    with pytest.raises(MtlsError, match="%s is a symbolic link" % p[which]):
        request_identity(csr_params(etc, force=True))
    assert snapshot(etc) == before


@pytest.mark.parametrize("sub", ["private", "certs"])
def test_linked_identity_directory_is_refused(etc, tmp_path, sub):
    real = tmp_path / "real"
    real.mkdir()
    os.makedirs(etc)
    os.symlink(str(real), os.path.join(etc, sub))
    with pytest.raises(MtlsError, match="%s is a symbolic link" % os.path.join(etc, sub)):
        request_identity(csr_params(etc))
    assert list(real.iterdir()) == []


def test_lock_file_link_is_refused(etc, tmp_path):
    os.makedirs(os.path.join(etc, "private"))
    os.symlink(str(tmp_path / "planted"), os.path.join(etc, "private", ".web.lock"))
    with pytest.raises(MtlsError, match="lock file .*is a symbolic link"):
        request_identity(csr_params(etc))
    assert not (tmp_path / "planted").exists()


@pytest.mark.parametrize("mode", ["0644", "0666", "0660", "0700", "0604", "0200", "04600"])
def test_key_modes_outside_the_allowed_set_are_refused(etc, pki, mode):
    with pytest.raises(MtlsError, match="mode %04o is refused for a private key file" % int(mode, 8)):
        request_identity(csr_params(etc, mode=mode))
    assert not os.path.exists(etc)
    with pytest.raises(MtlsError, match="mode %04o is refused" % int(mode, 8)):
        install_identity({"dir": etc, "trust_bundle_content": pki.trust_bundle_pem.decode(), "mode": mode})


@pytest.mark.parametrize("mode", ["0600", "0640", "0400", "0440"])
def test_allowed_key_modes(etc, mode):
    request_identity(csr_params(etc, mode=mode))
    assert stat.S_IMODE(os.stat(files(etc)["key"]).st_mode) == int(mode, 8)


def test_group_writable_certificate_mode_is_refused(etc, pki):
    with pytest.raises(MtlsError, match="certificate_mode 0664 is refused"):
        install_identity({"dir": etc, "trust_bundle_content": pki.trust_bundle_pem.decode(),
                          "certificate_mode": "0664"})


# --- leftovers and the lock ------------------------------------------------------------------

def test_leftover_temporaries_are_removed_but_nothing_else(etc, tmp_path):
    request_identity(csr_params(etc))
    private, certs = os.path.join(etc, "private"), os.path.join(etc, "certs")
    old = time.time() - 60
    ours = [os.path.join(private, ".web.key.ab12cd_9"), os.path.join(private, ".web.key.new.zzzzzzzz"),
            os.path.join(certs, ".web.crt.00000000"), os.path.join(certs, ".web.chain.pem.abcdefgh"),
            os.path.join(certs, ".web.csr.qwertyui")]
    foreign = [os.path.join(private, ".other.key.ab12cd_9"), os.path.join(private, ".web.key.short"),
               os.path.join(private, "web.key.ab12cd_9"), os.path.join(certs, ".web.crt.ABCDEFGH")]
    for path in ours + foreign:
        with open(path, "wb") as handle:
            handle.write(b"complete key from a killed run")
        os.utime(path, (old, old))
    bait = tmp_path / "bait"
    bait.write_text("do not touch")
    link = os.path.join(private, ".web.key.linklink")
    os.symlink(str(bait), link)
    result = request_identity(csr_params(etc))
    assert sorted(result["leftovers_removed"]) == sorted(ours)
    assert result["changed"] is True
    assert all(os.path.exists(path) for path in foreign) and os.path.islink(link) and bait.exists()
    assert not any(os.path.exists(path) for path in ours)
    assert not os.path.exists(os.path.join(private, ".web.lock"))


def _csr_worker(params, queue):
    try:
        queue.put(request_identity(params)["csr"])
    except Exception as exc:  # pragma: no cover - reported to the parent
        queue.put("error: %r" % exc)


def test_concurrent_library_runs_hand_out_one_csr_for_the_key_that_stays(etc):
    queue = FORK.Queue()
    params = csr_params(etc, key_type="rsa2048")
    workers = [FORK.Process(target=_csr_worker, args=(params, queue)) for dummy in range(10)]
    for worker in workers:
        worker.start()
    results = [queue.get(timeout=120) for dummy in workers]
    for worker in workers:
        worker.join(30)
    key = serialization.load_pem_private_key(read(files(etc)["key"]), None)
    wanted = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    for csr_pem in results:
        assert not csr_pem.startswith("error"), csr_pem
        public = x509.load_pem_x509_csr(csr_pem.encode()).public_key()
        assert public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) == wanted
    assert len(set(results)) == 1
    assert temporaries(etc) == []


def test_check_mode_takes_no_lock_and_writes_nothing(etc):
    request_identity(csr_params(etc))
    before = snapshot(etc)
    assert request_identity(csr_params(etc), check_mode=True)["changed"] is False
    assert snapshot(etc) == before
    assert host_identity.CSR_MODE == 0o644


MANIFEST_WEB = {"name": "web", "profile": "server", "common_name": CN, "sans": SANS, "key_type": "ec_p256",
                "validity_days": 90, "renew_fraction": 0.333, "renew_days": None, "new_key_on_renew": True,
                "owner": "root", "group": "root", "mode": "0600", "central_key": False}


def _manifest(etc):
    with open(os.path.join(etc, "manifest.json")) as handle:
        return json.load(handle)


def test_the_manifest_rides_with_the_install_root_owned_and_written_last(etc, pki):
    request = request_identity(csr_params(etc, group="daemon", mode="0640"))
    leaf = sign(pki, request["csr"])
    consumer = {"name": "app", "identities": ["web"], "apply": {"default": {"service": "app"}}}
    params = install_params(etc, pki, leaf, group="daemon", mode="0640",
                            manifest_identities=[dict(MANIFEST_WEB, group="daemon", mode="0640", extra="not kept")],
                            manifest_consumers=[consumer])
    # In check mode it is reported and not written.
    dry = install_identity(params, check_mode=True, diff=True)
    assert dry["changed"] and dry["manifest_changed"]
    assert "manifest.json: recorded (identities web; consumers app)" in dry["diff"]["after"]
    assert not os.path.exists(os.path.join(etc, "manifest.json"))

    result = install_identity(params)
    assert result["changed"] and result["manifest_changed"] and result["changes"]["certificate"]
    recorded = _manifest(etc)
    assert recorded["identities"] == [dict(MANIFEST_WEB, group="daemon", mode="0640")]
    assert recorded["consumers"] == [consumer]
    # Root's 0644 file, not the identity's group: every run reads it as root.
    info = os.stat(os.path.join(etc, "manifest.json"))
    assert (stat.S_IMODE(info.st_mode), info.st_gid) == (0o644, 0)
    assert os.stat(files(etc)["crt"]).st_gid != 0

    again = install_identity(params)
    assert not again["changed"] and not again["manifest_changed"]
    # A manifest change alone changes nothing a service reads.
    alone = install_identity({"dir": etc, "manifest_identities": [dict(MANIFEST_WEB, validity_days=30)]})
    assert alone["changed"] and alone["manifest_changed"] and not any(alone["changes"].values())
    assert _manifest(etc)["identities"][0]["validity_days"] == 30 and _manifest(etc)["consumers"] == [consumer]


def test_a_refused_install_records_nothing_in_the_manifest(etc, pki):
    request = request_identity(csr_params(etc))
    leaf = sign(pki, request["csr"])
    other = Pki()
    with pytest.raises(MtlsError, match="does not verify against the trust bundle"):
        install_identity(install_params(etc, pki, leaf, trust_bundle_content=other.trust_bundle_pem.decode(),
                                        manifest_identities=[MANIFEST_WEB]))
    assert not os.path.exists(os.path.join(etc, "manifest.json"))
    assert not os.path.exists(files(etc)["crt"])


@pytest.mark.parametrize("option, value", [
    ("manifest_identities", [{"profile": "server"}]),
    ("manifest_consumers", ["app"]),
])
def test_manifest_entries_without_a_name_are_refused_naming_the_option(etc, pki, option, value):
    leaf = sign(pki, request_identity(csr_params(etc))["csr"])
    with pytest.raises(MtlsError, match="%s to record must be entries" % option):
        install_identity(install_params(etc, pki, leaf, **{option: value}))
    assert not os.path.exists(os.path.join(etc, "manifest.json"))
    assert not os.path.exists(files(etc)["crt"])
