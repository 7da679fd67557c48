# -*- coding: utf-8 -*-
"""CA store hardening: key encryption work factor, symbolic links, concurrent creates, leftovers of
killed runs, and adopting the tutorial's CA (no KeyUsage) by re-certifying its key.

Concurrency and kills use real processes (``sys.executable`` running the library), never threads or
mocks of the code under test.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ansible_collections.fleet.mtls.plugins.module_utils import ca_store, crl, pkcs8
from ansible_collections.fleet.mtls.plugins.module_utils.errors import MtlsError
from ansible_collections.fleet.mtls.plugins.module_utils.index import new_entry
from ansible_collections.fleet.mtls.plugins.module_utils.compat import not_valid_after, not_valid_before, utcnow
from ansible_collections.fleet.mtls.plugins.module_utils.keys import (
    generate_private_key, load_private_key, same_public_key)

from issuance_helpers import ISSUING_PASS, ROOT_PASS, make_pki, tree_digest

COLLECTIONS_ROOT = str(Path(ca_store.__file__).parents[5])
DEBIAN_CRYPTOGRAPHY = "/usr/lib/python3/dist-packages/cryptography"
PKCS8_SOURCE = str(Path(pkcs8.__file__).resolve())


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


def _python(code, *args, wait=True, **kwargs):
    env = dict(os.environ, PYTHONPATH=COLLECTIONS_ROOT)
    command = [sys.executable, "-c", textwrap.dedent(code)] + [str(arg) for arg in args]
    if not wait:
        return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False, **kwargs)


def _legacy_root(path, passphrase):
    """A root store as earlier versions wrote it: ca.key under BestAvailableEncryption (2,048 rounds)."""
    ca_store.create_root(path, passphrase, common_name="Legacy Root")
    store = ca_store.CAStore(path)
    key = store.load(passphrase).key
    legacy = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                               serialization.BestAvailableEncryption(passphrase.encode()))
    with open(store.key_path, "wb") as handle:
        handle.write(legacy)
    assert pkcs8.pbkdf2_iterations(legacy) == pkcs8.LEGACY_PBKDF2_ITERATIONS
    return store, key


# -- 1. key encryption at rest -------------------------------------------------------------------

def test_new_store_key_uses_600k_pbkdf2_and_openssl_reads_it(pki, tmp_path):
    store = ca_store.CAStore(pki[1])
    key_pem = open(store.key_path, "rb").read()
    assert pkcs8.pbkdf2_iterations(key_pem) == 600000 == pkcs8.PBKDF2_ITERATIONS
    assert store.describe()["key_encryption"] == "pbkdf2-sha256:600000"
    parsed = subprocess.run(["openssl", "asn1parse", "-in", store.key_path], capture_output=True, text=True,
                            check=True).stdout
    for name in ("PBES2", "PBKDF2", "hmacWithSHA256", "aes-256-cbc", "INTEGER           :0927C0"):
        assert name in parsed
    out = tmp_path / "plain.pem"
    proc = subprocess.run(["openssl", "pkey", "-in", store.key_path, "-passin", "pass:" + ISSUING_PASS,
                           "-out", str(out)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert same_public_key(load_private_key(out.read_bytes()), store.certificate().public_key())
    wrong = subprocess.run(["openssl", "pkey", "-in", store.key_path, "-passin", "pass:wrong", "-noout"],
                           capture_output=True, text=True, check=False)
    assert wrong.returncode != 0


@pytest.mark.skipif(not os.path.isdir(DEBIAN_CRYPTOGRAPHY), reason="Debian 12 python3-cryptography (38) absent")
def test_pkcs8_envelope_round_trips_on_debian_cryptography_38(tmp_path):
    """Debian 12 hosts run cryptography 38: it writes and reads the envelope, and reads ours."""
    ours = tmp_path / "ours.pem"
    ours.write_bytes(pkcs8.encrypt_pkcs8_pem(generate_private_key("ec_p256"), "pässwort".encode()))
    code = textwrap.dedent("""
        import importlib.util, sys
        import cryptography
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        spec = importlib.util.spec_from_file_location("pkcs8", sys.argv[1])
        pkcs8 = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(pkcs8)
        key = ec.generate_private_key(ec.SECP384R1())
        pem = pkcs8.encrypt_pkcs8_pem(key, "pässwort".encode())
        again = serialization.load_pem_private_key(pem, "pässwort".encode())
        assert again.private_numbers() == key.private_numbers()
        serialization.load_pem_private_key(open(sys.argv[2], "rb").read(), "pässwort".encode())
        open(sys.argv[3], "wb").write(pem)
        print(cryptography.__version__, pkcs8.pbkdf2_iterations(pem))
    """)
    theirs = tmp_path / "theirs.pem"
    proc = subprocess.run(["/usr/bin/python3", "-S", "-c",
                           "import sys; sys.path.insert(0, '/usr/lib/python3/dist-packages'); exec(sys.argv.pop(1))",
                           code, PKCS8_SOURCE, str(ours), str(theirs)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    version, iterations = proc.stdout.split()
    assert version.startswith("38.") and iterations == "600000"
    load_private_key(theirs.read_bytes(), "pässwort")


def test_legacy_key_still_opens_and_next_run_re_encrypts_it(tmp_path):
    path = str(tmp_path / "root")
    store, key = _legacy_root(path, ROOT_PASS)
    assert store.load(ROOT_PASS).key.private_numbers() == key.private_numbers()
    before = tree_digest(path)
    check = ca_store.create_root(path, ROOT_PASS, common_name="Legacy Root", check_mode=True)
    assert check.changed and check.before["key_encryption"] == "pbkdf2-sha256:2048"
    assert check.after["key_encryption"] == "pbkdf2-sha256:600000"
    assert tree_digest(path) == before
    with pytest.raises(MtlsError, match="wrong passphrase"):
        ca_store.create_root(path, "not-the-passphrase", common_name="Legacy Root")
    assert tree_digest(path) == before
    result = ca_store.create_root(path, ROOT_PASS, common_name="Legacy Root")
    assert result.changed and result.after["key_encryption"] == "pbkdf2-sha256:600000"
    changed = [name for name in before if tree_digest(path).get(name) != before[name]]
    assert changed == ["ca.key"]
    assert oct(os.stat(store.key_path).st_mode & 0o777) == "0o600"
    assert store.load(ROOT_PASS).key.private_numbers() == key.private_numbers()
    again = ca_store.create_root(path, ROOT_PASS, common_name="Legacy Root")
    assert again.changed is False


# -- 2. symbolic links ------------------------------------------------------------------------------

def test_symlinked_store_directory_is_refused_clearly(pki, tmp_path):
    link = tmp_path / "root-link"
    link.symlink_to(pki[0])
    for call in (lambda: ca_store.CAStore(str(link)).load(ROOT_PASS),
                 lambda: ca_store.create_root(str(link), ROOT_PASS, common_name="Test Root CA",
                                              subject={"O": "Fleet Test"})):
        with pytest.raises(MtlsError, match="is a symbolic link .*refusing to use it"):
            call()
    # a link to a file used to fail with a raw "[Errno 20] Not a directory"
    target = tmp_path / "file"
    target.write_text("x")
    (tmp_path / "to-file").symlink_to(target)
    with pytest.raises(MtlsError, match="is a symbolic link"):
        ca_store.create_root(str(tmp_path / "to-file"), ROOT_PASS, common_name="R")
    assert target.read_text() == "x"


@pytest.mark.parametrize("name", ["ca.key", "store.json", "ca.crt", "chain.pem", "index.json"])
def test_symlinked_file_inside_the_store_is_refused(pki, tmp_path, name):
    import shutil
    path = tmp_path / "issuing"
    shutil.copytree(pki[1], str(path))
    real = tmp_path / ("real-" + name)
    os.rename(str(path / name), str(real))
    (path / name).symlink_to(real)
    before = tree_digest(tmp_path)
    with pytest.raises(MtlsError, match="%s is a symbolic link: refusing to follow it" % name.replace(".", r"\.")):
        store = ca_store.CAStore(str(path))
        store.load(ISSUING_PASS)
        store.index().entries()
    assert tree_digest(tmp_path) == before


def test_symlinked_lock_file_is_not_followed(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("keep")
    (tmp_path / ".root.lock").symlink_to(victim)
    with pytest.raises(MtlsError, match="lock file .* is a symbolic link"):
        ca_store.create_root(str(tmp_path / "root"), ROOT_PASS, common_name="R")
    assert victim.read_text() == "keep" and not (tmp_path / "root").exists()


# -- 3. concurrent creates --------------------------------------------------------------------------

CREATE = """
    import json, sys, time
    from ansible_collections.fleet.mtls.plugins.module_utils import ca_store
    from ansible_collections.fleet.mtls.plugins.module_utils.errors import MtlsError
    start = float(sys.argv[2])
    while time.time() < start:
        time.sleep(0.001)
    try:
        result = ca_store.create_root(sys.argv[1], "concurrent-pass", common_name="Concurrent Root")
        print(json.dumps({"changed": result.changed, "fingerprint": result.after["fingerprint_sha256"]}))
    except MtlsError as exc:
        print(json.dumps({"error": str(exc)}))
"""


def test_ten_concurrent_creates_of_one_store(tmp_path):
    path = tmp_path / "ca" / "root"
    start = time.time() + 2.0
    procs = [_python(CREATE, path, start, wait=False) for dummy in range(10)]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0 and "Traceback" not in err, err
        results.append(json.loads(out))
    assert not [r for r in results if "error" in r], results
    assert sorted(r["changed"] for r in results) == [False] * 9 + [True]
    assert len(set(r["fingerprint"] for r in results)) == 1
    assert sorted(os.listdir(str(tmp_path / "ca"))) == [".root.lock", "root"]
    ca_store.CAStore(str(path)).load("concurrent-pass")


# -- 4. leftovers of killed runs --------------------------------------------------------------------

KILL_AT_RENAME = """
    import os, sys, time
    real_rename = os.rename
    def hang(src, dst):
        if os.path.basename(dst) == sys.argv[3]:
            open(sys.argv[2], "w").close()
            time.sleep(600)
        real_rename(src, dst)
    os.rename = hang
    from ansible_collections.fleet.mtls.plugins.module_utils import ca_store
    from ansible_collections.fleet.mtls.plugins.module_utils.index import new_entry
    import datetime
    store_path = sys.argv[1]
    if sys.argv[4] == "create":
        ca_store.create_root(store_path, "killed-pass", common_name="Killed Root")
    else:
        now = datetime.datetime.now(datetime.timezone.utc)
        entries = [new_entry(n + 1, "web", "h%d" % n, "CN=h%d" % n, ["h%d.example" % n], "server", now, now)
                   for n in range(3000)]
        ca_store.CAStore(store_path).index().record(entries)
"""


def _kill_at_rename(tmp_path, store_path, target_name, what):
    ready = tmp_path / ("ready-" + what)
    proc = _python(KILL_AT_RENAME, store_path, ready, target_name, what, wait=False)
    deadline = time.time() + 60
    while not ready.exists():
        assert proc.poll() is None, proc.communicate()[1]
        assert time.time() < deadline, "the run never reached its rename"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def test_sigkilled_create_leaves_staging_that_the_next_run_removes(tmp_path):
    base = tmp_path / "ca"
    base.mkdir()
    _kill_at_rename(tmp_path, base / "root", "root", "create")
    staging = [name for name in os.listdir(str(base)) if name.startswith(".root.new-")]
    assert len(staging) == 1 and not (base / "root").exists()
    assert b"ENCRYPTED PRIVATE KEY" in (base / staging[0] / "ca.key").read_bytes()
    # a link that matches our pattern is removed itself, its target is never touched
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("keep")
    (base / ".root.new-linklink").symlink_to(outside, target_is_directory=True)
    (base / ".root.new-notours").mkdir()  # 7 characters: not our naming pattern, stays
    result = ca_store.create_root(str(base / "root"), "killed-pass", common_name="Killed Root")
    assert result.changed
    assert sorted(os.listdir(str(base))) == [".root.lock", ".root.new-notours", "root"]
    assert (outside / "precious").read_text() == "keep"


def test_sigkilled_index_write_leaves_a_temp_that_the_next_write_removes(tmp_path):
    path = tmp_path / "root"
    ca_store.create_root(str(path), "killed-pass", common_name="Killed Root")
    _kill_at_rename(tmp_path, path, "index.json", "index")
    temps = [name for name in os.listdir(str(path)) if name.startswith(".index.json.")]
    assert len(temps) == 1 and os.path.getsize(str(path / temps[0])) > 100000
    index = ca_store.CAStore(str(path)).index()
    assert index.entries() == []  # the live index is the old one, and reading removes nothing
    assert (path / temps[0]).exists()
    now = utcnow()
    index.record([new_entry(7, "web", "h", "CN=h", ["h.example"], "server", now, now)])
    assert not [name for name in os.listdir(str(path)) if name.startswith(".index.json.")]
    assert [e["serial"] for e in index.entries()] == ["7"]


def test_ca_and_crl_runs_remove_their_own_temporaries_only(pki, tmp_path):
    import shutil
    path = tmp_path / "issuing"
    shutil.copytree(pki[1], str(path))
    for name in (".ca.key.k1llEd_1", ".store.json.abcdefgh", ".crl.pem.abcdefgh", ".crl.json.abcdefgh",
                 ".ca.key.toolong123", "notes.ca.key.abcdefgh"):
        (path / name).write_bytes(b"left by a killed run")
    ca_store.create_intermediate(str(path), ISSUING_PASS, pki[0], ROOT_PASS, common_name="Test Issuing CA")
    left = sorted(name for name in os.listdir(str(path)) if name not in ca_store.STORE_FILES)
    assert left == [".ca.key.toolong123", ".crl.json.abcdefgh", ".crl.pem.abcdefgh", "notes.ca.key.abcdefgh"]
    crl.revoke_and_publish(str(path), ISSUING_PASS)
    left = sorted(name for name in os.listdir(str(path)) if name not in ca_store.STORE_FILES + ("crl.lock",))
    assert left == [".ca.key.toolong123", "notes.ca.key.abcdefgh"]


def test_check_mode_removes_nothing(tmp_path):
    base = tmp_path / "ca"
    (base / ".root.new-abcdefgh").mkdir(parents=True)
    before = tree_digest(tmp_path)
    result = ca_store.create_root(str(base / "root"), "pw", common_name="R", check_mode=True)
    assert result.changed and tree_digest(tmp_path) == before


# -- 5. adopting the tutorial's CA --------------------------------------------------------------------

def _sh(*args, cwd):
    proc = subprocess.run(list(args), cwd=str(cwd), capture_output=True, text=True, check=False)
    assert proc.returncode == 0, "%s: %s" % (" ".join(args), proc.stderr)
    return proc


def _strict_verify(ca_crt, leaf, cwd):
    return subprocess.run(["openssl", "verify", "-x509_strict", "-CAfile", str(ca_crt), str(leaf)], cwd=str(cwd),
                          capture_output=True, text=True, check=False)


@pytest.fixture(params=["encrypted", "nodes"])
def tutorial_ca(request, tmp_path):
    """The classic mTLS tutorial, command by command (RSA 2048 instead of 4096 to keep the test quick)."""
    d = tmp_path / "tutorial"
    d.mkdir()
    if request.param == "encrypted":
        _sh("openssl", "genrsa", "-aes256", "-passout", "pass:tutorial", "-out", "ca.key", "2048", cwd=d)
        _sh("openssl", "req", "-new", "-x509", "-days", "365", "-key", "ca.key", "-passin", "pass:tutorial",
            "-extensions", "v3_ca", "-subj", "/C=DE/O=Tutorial/CN=Tutorial CA", "-out", "ca.crt", cwd=d)
        ca_pass = ["-passin", "pass:tutorial"]
    else:
        _sh("openssl", "req", "-new", "-x509", "-days", "365", "-nodes", "-newkey", "rsa:2048", "-keyout", "ca.key",
            "-extensions", "v3_ca", "-subj", "/C=DE/O=Tutorial/CN=Tutorial CA", "-out", "ca.crt", cwd=d)
        ca_pass = []
    (d / "leaf.ext").write_text("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                                "extendedKeyUsage=clientAuth\nsubjectKeyIdentifier=hash\n"
                                "authorityKeyIdentifier=keyid,issuer\n")
    for leaf, extfile in (("client", []), ("client-v3", ["-extfile", "leaf.ext"])):
        _sh("openssl", "genrsa", "-out", leaf + ".key", "2048", cwd=d)
        _sh("openssl", "req", "-new", "-key", leaf + ".key", "-subj", "/CN=" + leaf, "-out", leaf + ".csr", cwd=d)
        _sh("openssl", "x509", "-req", "-days", "365", "-in", leaf + ".csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", leaf + ".crt", *(ca_pass + extfile), cwd=d)
    return d, "tutorial" if ca_pass else None


def test_tutorial_ca_is_refused_with_the_remedy(tutorial_ca, tmp_path):
    d, adopt_pass = tutorial_ca
    proc = _strict_verify(d / "ca.crt", d / "client.crt", d)
    assert proc.returncode != 0 and "key usage" in (proc.stdout + proc.stderr)
    with pytest.raises(MtlsError, match="KeyUsage keyCertSign is missing.*Remedy: set adopt_recertify=true"):
        ca_store.adopt(str(tmp_path / "store"), (d / "ca.key").read_bytes(), (d / "ca.crt").read_bytes(), adopt_pass,
                       "store-pass")
    assert os.listdir(str(tmp_path)) == ["tutorial"]  # refused before anything is written


def test_tutorial_ca_recertified_keeps_its_leaves_verifying(tutorial_ca, tmp_path):
    d, adopt_pass = tutorial_ca
    old = x509.load_pem_x509_certificate((d / "ca.crt").read_bytes())
    args = (str(tmp_path / "store"), (d / "ca.key").read_bytes(), (d / "ca.crt").read_bytes(), adopt_pass, "store-pass")
    check = ca_store.adopt(*args, recertify=True, check_mode=True)
    assert check.changed and not (tmp_path / "store").exists()
    result = ca_store.adopt(*args, recertify=True)
    assert result.changed and result.after["kind"] == "root" and result.after["key_type"] == "rsa2048"
    store = ca_store.CAStore(str(tmp_path / "store"))
    new = store.certificate()
    assert new.subject == old.subject == new.issuer and same_public_key(new.public_key(), old.public_key())
    assert (not_valid_before(new), not_valid_after(new)) == (not_valid_before(old), not_valid_after(old))
    assert new.serial_number != old.serial_number
    basic = new.extensions.get_extension_for_class(x509.BasicConstraints)
    usage = new.extensions.get_extension_for_class(x509.KeyUsage)
    assert basic.critical and basic.value.ca and usage.critical and usage.value.key_cert_sign and usage.value.crl_sign
    old_ski = old.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert new.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value == old_ski
    assert result.after["recertified_from"] == json.load(open(store.store_json_path))["recertified_from"]
    # the old leaves (v1, and v3 with an Authority Key Identifier) verify strictly against the new CA cert
    for leaf in ("client.crt", "client-v3.crt"):
        proc = _strict_verify(store.cert_path, d / leaf, d)
        assert proc.returncode == 0 and proc.stdout.strip().endswith(": OK"), proc.stdout + proc.stderr
    # the same inputs again: unchanged; the original files were not touched
    assert ca_store.adopt(*args, recertify=True).changed is False
    assert x509.load_pem_x509_certificate((d / "ca.crt").read_bytes()) == old
    assert store.load("store-pass").certificate == new


def test_recertify_never_widens_an_explicit_key_usage_or_an_intermediate(tmp_path, pki):
    d = tmp_path
    _sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "k.pem",
        "-out", "c.pem", "-days", "30", "-subj", "/CN=No Sign", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,digitalSignature", cwd=d)
    with pytest.raises(MtlsError, match="restricts the key on purpose"):
        ca_store.adopt(str(d / "s"), (d / "k.pem").read_bytes(), (d / "c.pem").read_bytes(), None, "pw", recertify=True)
    assert not (d / "s").exists()
