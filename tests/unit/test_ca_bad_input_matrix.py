# -*- coding: utf-8 -*-
"""Bad-input matrix, CA side (CA store create/adopt, issuance index, CRL): every row is a bad input
or a damaged store that must fail with an MtlsError whose message names the problem, and leave every
byte under the test directory as it was. The only file a refused call may add is the empty lock file
beside a store (``.<store>.lock``, kept by design).

Add a row for every CA-side defect found. Rows run against real stores (a root and an issuing
intermediate made by the library) copied for each row; nothing is mocked.
"""
from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from ansible_collections.fleet.mtls.plugins.module_utils import ca_store, crl
from ansible_collections.fleet.mtls.plugins.module_utils.errors import MtlsError
from ansible_collections.fleet.mtls.plugins.module_utils.keys import generate_private_key, serialize_private_key

from issuance_helpers import ISSUING_PASS, ROOT_PASS, make_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    base = tmp_path_factory.mktemp("matrix-pki")
    root, issuing = make_pki(base)
    legacy = base / "legacy"
    legacy.mkdir()

    def openssl(*args):
        subprocess.run(["openssl"] + list(args), cwd=str(legacy), check=True, capture_output=True)

    openssl("req", "-new", "-x509", "-days", "365", "-nodes", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:P-256", "-keyout", "tutorial.key", "-extensions", "v3_ca", "-subj", "/CN=Tutorial CA",
            "-out", "tutorial.crt")
    openssl("req", "-new", "-x509", "-days", "365", "-nodes", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:P-256", "-keyout", "leaf.key", "-subj", "/CN=leaf", "-addext",
            "basicConstraints=critical,CA:FALSE", "-out", "leaf.crt")
    openssl("req", "-new", "-nodes", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-keyout", "sub.key",
            "-subj", "/CN=Tutorial Sub", "-out", "sub.csr")
    (legacy / "v3_ca.ext").write_text("basicConstraints=critical,CA:TRUE\nsubjectKeyIdentifier=hash\n")
    openssl("x509", "-req", "-in", "sub.csr", "-CA", "tutorial.crt", "-CAkey", "tutorial.key", "-CAcreateserial",
            "-days", "30", "-extfile", "v3_ca.ext", "-out", "sub.crt")
    # an expired CA (openssl 3.0's req cannot backdate): made with cryptography
    key = generate_private_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Expired CA")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc))
            .not_valid_after(datetime.datetime(2021, 1, 1, tzinfo=datetime.timezone.utc))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
            .sign(key, hashes.SHA256()))
    write(legacy / "old.key", serialize_private_key(key))
    write(legacy / "old.crt", cert.public_bytes(serialization.Encoding.PEM))
    return base


@pytest.fixture
def base(pki, tmp_path):
    shutil.copytree(str(pki), str(tmp_path / "w"))
    return tmp_path / "w"


def read(path):
    with open(str(path), "rb") as handle:
        return handle.read()


def write(path, data):
    with open(str(path), "wb") as handle:
        handle.write(data)


def replace_with_link(path):
    real = str(path) + ".real"
    os.rename(str(path), real)
    os.symlink(real, str(path))


def new_root(b, **kwargs):
    args = dict(common_name="New Root")
    args.update(kwargs)
    passphrase = args.pop("passphrase", "new-root-pass")
    return ca_store.create_root(str(args.pop("path", b / "new")), passphrase, **args)


def existing_root(b, **kwargs):
    args = dict(common_name="Test Root CA", subject={"O": "Fleet Test"})
    args.update(kwargs)
    return ca_store.create_root(str(b / "root"), args.pop("passphrase", ROOT_PASS), **args)


def new_intermediate(b, **kwargs):
    args = dict(parent_store_path=str(b / "root"), parent_passphrase=ROOT_PASS, common_name="New Issuing")
    args.update(kwargs)
    return ca_store.create_intermediate(str(args.pop("path", b / "new-issuing")), args.pop("passphrase", "np"),
                                        **args)


def adopt(b, key="tutorial.key", cert="tutorial.crt", **kwargs):
    return ca_store.adopt(str(b / "adopted"), read(b / "legacy" / key), read(b / "legacy" / cert),
                          kwargs.pop("adopt_passphrase", None), kwargs.pop("passphrase", "adopt-pass"), **kwargs)


def revoke(b, revocations=(), passphrase=ISSUING_PASS, **kwargs):
    return crl.revoke_and_publish(str(b / "issuing"), passphrase, revocations, **kwargs)


def replace_with_directory(path):
    os.unlink(str(path))
    os.mkdir(str(path))


def mkfifo(path):
    os.unlink(str(path))
    os.mkfifo(str(path))


# (id, damage(base) or None, call(base), message regex)
MATRIX = [
    # -- create_root: arguments
    ("root: empty passphrase", None, lambda b: new_root(b, passphrase=""), "passphrase is required and must not be empty"),
    ("root: no passphrase", None, lambda b: new_root(b, passphrase=None), "passphrase is required"),
    ("root: unknown key type", None, lambda b: new_root(b, key_type="dsa"), "unknown key type 'dsa'"),
    ("root: zero validity", None, lambda b: new_root(b, validity_days=0), "validity_days must be a positive"),
    ("root: text validity", None, lambda b: new_root(b, validity_days="ten"), "validity_days must be a positive"),
    ("root: negative path length", None, lambda b: new_root(b, path_length=-1), "path_length must be a non-negative"),
    ("root: bad mode", None, lambda b: new_root(b, mode="rwx"), "invalid file mode 'rwx'"),
    ("root: mode out of range", None, lambda b: new_root(b, mode="77777"), "store mode 77777 is out of range"),
    ("root: world-writable mode", None, lambda b: new_root(b, mode="0777"), "store mode 0777 lets every user write"),
    ("root: unknown owner", None, lambda b: new_root(b, owner="no-such-user-mtls"), "unknown owner"),
    ("root: unknown group", None, lambda b: new_root(b, group="no-such-group-mtls"), "unknown group"),
    ("root: unknown subject attribute", None, lambda b: new_root(b, subject={"XX": "y"}), "unknown subject attribute"),
    ("root: empty path", None, lambda b: new_root(b, path=""), "CA store path is empty"),
    # -- create_root: what is at the path
    ("root: path is a link to a store", lambda b: os.symlink(str(b / "root"), str(b / "new")),
     new_root, r"new is a symbolic link \(to .*root\): refusing to use it"),
    ("root: path is a link to a file", lambda b: os.symlink(str(b / "legacy" / "tutorial.crt"), str(b / "new")),
     new_root, "is a symbolic link"),
    ("root: dangling link", lambda b: os.symlink(str(b / "nowhere"), str(b / "new")),
     new_root, "is a symbolic link"),
    ("root: path is a file", lambda b: write(b / "new", b"x"), new_root,
     "exists and is not a directory"),
    ("root: path is a non-empty directory", lambda b: (os.mkdir(str(b / "new")), write(b / "new" / "notes", b"n")),
     new_root, "exists and is not an empty directory"),
    ("root: parent is a file", lambda b: write(b / "file", b"x"), lambda b: new_root(b, path=b / "file" / "ca"),
     "(cannot create|not a directory)"),
    # -- existing root
    ("root: wrong passphrase", None, lambda b: existing_root(b, passphrase="wrong"), "wrong passphrase for CA key"),
    ("root: drift subject", None, lambda b: existing_root(b, common_name="Other"), "already exists and differs.*subject"),
    ("root: drift key type", None, lambda b: existing_root(b, key_type="rsa2048"), "key type is ec_p256, not rsa2048"),
    ("root: drift path length", None, lambda b: existing_root(b, path_length=3), "path length is 1, not 3"),
    ("store.json corrupt", lambda b: write(b / "root" / "store.json", b"{nope"), existing_root,
     "CA store metadata .* is corrupt"),
    ("store.json not an object", lambda b: write(b / "root" / "store.json", b"[1]"), existing_root,
     "no valid 'kind'"),
    ("store.json other format", lambda b: write(b / "root" / "store.json", json.dumps(
        {"kind": "root", "format": 99}).encode()), existing_root, "has format 99"),
    ("store.json is a link", lambda b: replace_with_link(b / "root" / "store.json"), existing_root,
     r"store\.json is a symbolic link: refusing to follow it"),
    ("store.json is a directory", lambda b: replace_with_directory(b / "root" / "store.json"),
     existing_root, "(not a regular file|Is a directory)"),
    ("ca.key missing", lambda b: os.unlink(str(b / "root" / "ca.key")), existing_root,
     "CA key .* is missing"),
    ("ca.key garbage", lambda b: write(b / "root" / "ca.key", b"garbage"), existing_root,
     "CA key .* not a readable PEM private key"),
    ("ca.key unencrypted", lambda b: write(b / "root" / "ca.key", serialize_private_key(generate_private_key())),
     existing_root, "not encrypted but a passphrase was given"),
    ("ca.key of another CA", lambda b: shutil.copy(str(b / "issuing" / "ca.key"), str(b / "root" / "ca.key")),
     existing_root, "wrong passphrase|does not match CA certificate"),
    ("ca.key is a link", lambda b: replace_with_link(b / "root" / "ca.key"), existing_root,
     r"ca\.key is a symbolic link: refusing to follow it"),
    ("ca.key is a FIFO", lambda b: mkfifo(b / "root" / "ca.key"), existing_root,
     "is not a regular file"),
    ("ca.crt garbage", lambda b: write(b / "root" / "ca.crt", b"garbage"), existing_root,
     "CA certificate"),
    ("ca.crt is a link", lambda b: replace_with_link(b / "root" / "ca.crt"), existing_root,
     r"ca\.crt is a symbolic link"),
    ("chain.pem missing", lambda b: os.unlink(str(b / "root" / "chain.pem")), existing_root,
     "CA chain .* is missing: the store is incomplete"),
    ("chain.pem of another CA", lambda b: shutil.copy(str(b / "issuing" / "ca.crt"), str(b / "root" / "chain.pem")),
     existing_root, "does not start with ca.crt"),
    # -- create_intermediate
    ("intermediate: no parent", None, lambda b: new_intermediate(b, parent_store_path=None), "needs parent_path"),
    ("intermediate: missing parent", None, lambda b: new_intermediate(b, parent_store_path=str(b / "none")),
     "does not exist: create it with fleet.mtls.ca first"),
    ("intermediate: parent is a link", lambda b: os.symlink(str(b / "root"), str(b / "root-link")),
     lambda b: new_intermediate(b, parent_store_path=str(b / "root-link")), "is a symbolic link"),
    ("intermediate: wrong parent passphrase", None, lambda b: new_intermediate(b, parent_passphrase="wrong"),
     "wrong passphrase for CA key"),
    ("intermediate: empty parent passphrase", None, lambda b: new_intermediate(b, parent_passphrase=""),
     "parent CA passphrase is required"),
    ("intermediate: own parent", None, lambda b: new_intermediate(b, path=b / "root"), "cannot be its own parent"),
    ("intermediate: outlives parent", None, lambda b: new_intermediate(b, validity_days=4000),
     "after the parent CA expires"),
    ("intermediate: path length too long", None, lambda b: new_intermediate(b, path_length=1),
     "path_length must be at most 0"),
    ("intermediate: parent cannot sign CAs", None,
     lambda b: new_intermediate(b, parent_store_path=str(b / "issuing"), parent_passphrase=ISSUING_PASS),
     "allows path length 0 below it"),
    # -- adopt
    ("adopt: tutorial CA without recertify", None, adopt,
     "KeyUsage keyCertSign is missing.*Remedy: set adopt_recertify=true"),
    ("adopt: leaf certificate", None, lambda b: adopt(b, "leaf.key", "leaf.crt", recertify=True),
     "is not a CA: BasicConstraints CA:TRUE is missing"),
    ("adopt: key of another certificate", None, lambda b: adopt(b, "leaf.key", "tutorial.crt", recertify=True),
     "key to adopt does not match"),
    ("adopt: intermediate without KeyUsage", None,
     lambda b: adopt(b, "sub.key", "sub.crt", recertify=True, parent_chain_pem=read(b / "legacy" / "tutorial.crt")),
     "Only a self-signed root can be re-certified"),
    ("adopt: expired CA", None, lambda b: adopt(b, "old.key", "old.crt"), "expired on 2021-01-01"),
    ("adopt: certificate is a key", None, lambda b: adopt(b, "tutorial.key", "tutorial.key"),
     "certificate to adopt holds no certificate"),
    ("adopt: key is garbage", lambda b: write(b / "legacy" / "tutorial.key", b"garbage"),
     lambda b: adopt(b, recertify=True), "key to adopt is not a readable PEM private key"),
    ("adopt: passphrase for a plain key", None, lambda b: adopt(b, recertify=True, adopt_passphrase="x"),
     "not encrypted but a passphrase was given"),
    ("adopt: empty store passphrase", None, lambda b: adopt(b, recertify=True, passphrase=""),
     "passphrase is required"),
    ("adopt: chain does not issue it", None,
     lambda b: adopt(b, recertify=True, parent_chain_pem=read(b / "legacy" / "leaf.crt")),
     "Only a self-signed root can be re-certified"),
    # -- CRL and index
    ("crl: wrong passphrase", None, lambda b: revoke(b, passphrase="wrong"), "wrong passphrase for CA key"),
    ("crl: unknown serial", None, lambda b: revoke(b, [{"serial": "abcdef"}]), "no certificate with serial abcdef"),
    ("crl: serial not hex", None, lambda b: revoke(b, [{"serial": "xyz"}]), "invalid serial 'xyz'"),
    ("crl: unknown reason", None, lambda b: revoke(b, [{"identity": "web", "reason": "boredom"}]),
     "unknown revocation reason 'boredom'"),
    ("crl: request not a mapping", None, lambda b: revoke(b, ["abc"]), "revocation 1 must be a mapping"),
    ("crl: unknown request key", None, lambda b: revoke(b, [{"identity": "web", "why": 1}]), "unknown keys why"),
    ("crl: serial and identity", None, lambda b: revoke(b, [{"identity": "web", "serial": "01"}]),
     "exactly one of serial or identity"),
    ("crl: next update zero", None, lambda b: revoke(b, next_update_days=0), "next_update_days must be"),
    ("crl: refresh not below next update", None, lambda b: revoke(b, next_update_days=2, refresh_days=2),
     "refresh_days .* must be lower"),
    ("crl: state corrupt", lambda b: write(b / "issuing" / "crl.json", b"{"), revoke,
     "CRL state .* is corrupt"),
    ("crl: state without number", lambda b: write(b / "issuing" / "crl.json", b"{}"), revoke,
     "no integer crl_number"),
    ("crl: crl.pem is a link", lambda b: (write(b / "issuing" / "crl.pem", b"x"),
                                          replace_with_link(b / "issuing" / "crl.pem")),
     revoke, r"crl\.pem is a symbolic link"),
    ("crl: crl.json is a link", lambda b: (write(b / "issuing" / "crl.json", b"{}"),
                                           replace_with_link(b / "issuing" / "crl.json")),
     revoke, r"crl\.json is a symbolic link"),
    ("index corrupt", lambda b: write(b / "issuing" / "index.json", b"[["), revoke,
     "issuance index .* is corrupt"),
    ("index without entries", lambda b: write(b / "issuing" / "index.json", b'{"format": 1}'), revoke,
     "no 'entries' list"),
    ("index other format", lambda b: write(b / "issuing" / "index.json", b'{"format": 7, "entries": []}'),
     revoke, "has format 7"),
    ("index is a link", lambda b: replace_with_link(b / "issuing" / "index.json"), revoke,
     r"index\.json is a symbolic link"),
    ("index lock is a link", lambda b: (os.unlink(str(b / "issuing" / "index.lock")),
                                        os.symlink(str(b / "legacy" / "tutorial.crt"), str(b / "issuing" / "index.lock"))),
     revoke, "lock file .* is a symbolic link"),
    ("crl: store is a link", lambda b: (os.rename(str(b / "issuing"), str(b / "issuing.real")),
                                        os.symlink(str(b / "issuing.real"), str(b / "issuing"))),
     revoke, "is a symbolic link"),
    ("crl: missing store", lambda b: shutil.rmtree(str(b / "issuing")), revoke,
     "does not exist: create it with fleet.mtls.ca first"),
]


def _without_empty_locks(digest, before):
    """The digest minus empty lock files a call added beside a store (by design), checked to be empty."""
    empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    return dict((name, value) for name, value in digest.items()
                if name in before or not (name.endswith(".lock") and value == empty))


@pytest.mark.parametrize("damage, call, message", [row[1:] for row in MATRIX], ids=[row[0] for row in MATRIX])
def test_ca_bad_input_is_refused_and_changes_nothing(base, damage, call, message):
    if damage is not None:
        damage(base)
    before = _digest(base)
    with pytest.raises(MtlsError, match=message):
        call(base)
    assert _without_empty_locks(_digest(base), before) == before


def _digest(path):
    """{relative path: sha256} of every file, links and FIFOs recorded as what they are, never read."""
    result = {}
    for directory, dirnames, filenames in os.walk(str(path)):
        for name in dirnames + filenames:
            full = os.path.join(directory, name)
            rel = os.path.relpath(full, str(path))
            if os.path.islink(full):
                result[rel] = "link -> %s" % os.readlink(full)
            elif not os.path.isfile(full):
                result[rel] = "dir" if os.path.isdir(full) else "special"
            else:
                result[rel] = hashlib.sha256(read(full)).hexdigest()
    return result


def test_matrix_has_no_duplicate_ids():
    assert len(set(row[0] for row in MATRIX)) == len(MATRIX) >= 70
