# -*- coding: utf-8 -*-
from __future__ import annotations

import datetime
import json
import os
import stat
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from ansible_collections.fleet.mtls.plugins.module_utils import ca_store, fsutil, serials
from ansible_collections.fleet.mtls.plugins.module_utils.compat import not_valid_after, not_valid_before, utcnow
from ansible_collections.fleet.mtls.plugins.module_utils.errors import MtlsError
from ansible_collections.fleet.mtls.plugins.module_utils.keys import generate_private_key, serialize_private_key

from issuance_helpers import ISSUING_PASS, ROOT_PASS, make_pki, openssl_verify, pkilint, tree_digest


def ext(cert, cls):
    return cert.extensions.get_extension_for_class(cls)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


def test_root_layout_and_extensions(pki, tmp_path):
    root, dummy = pki
    store = ca_store.CAStore(root)
    assert sorted(os.listdir(root)) == ["ca.crt", "ca.key", "chain.pem", "index.json", "index.lock", "store.json"]
    assert stat.S_IMODE(os.stat(root).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(store.key_path).st_mode) == 0o600
    meta = json.load(open(store.store_json_path))
    assert meta["kind"] == "root" and meta["key_type"] == "ec_p256" and meta["parent"] is None and meta["format"] == 1
    key_pem = open(store.key_path, "rb").read()
    assert b"ENCRYPTED PRIVATE KEY" in key_pem
    cert = store.certificate()
    basic = ext(cert, x509.BasicConstraints)
    assert basic.critical and basic.value.ca and basic.value.path_length == 1
    usage = ext(cert, x509.KeyUsage)
    assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign and usage.value.digital_signature
    ski = ext(cert, x509.SubjectKeyIdentifier).value.digest
    assert ext(cert, x509.AuthorityKeyIdentifier).value.key_identifier == ski
    assert 0 < cert.serial_number < 2 ** 159
    assert cert.subject.rfc4514_string() == "CN=Test Root CA,O=Fleet Test"
    lifetime = not_valid_after(cert) - not_valid_before(cert)
    assert datetime.timedelta(days=3650) <= lifetime <= datetime.timedelta(days=3650, minutes=6)
    assert pkilint(ca_store.certificate_pem(cert).decode(), tmp_path) == ""
    assert store.path_of("crl.pem") == os.path.join(store.path, "crl.pem") == store.crl_path
    with pytest.raises(MtlsError, match="not a CA store file"):
        store.path_of("../etc/passwd")


def test_intermediate_chain_pathlen_and_openssl(pki, tmp_path):
    root, issuing = pki
    store = ca_store.CAStore(issuing)
    signer = store.load(ISSUING_PASS)
    assert [c.subject.rfc4514_string() for c in signer.chain] == ["CN=Test Issuing CA", "CN=Test Root CA,O=Fleet Test"]
    assert signer.chain_pem == open(store.chain_path, "rb").read()
    assert signer.intermediates_pem == ca_store.certificate_pem(signer.certificate)
    assert ext(signer.certificate, x509.BasicConstraints).value.path_length == 0
    root_ski = ext(ca_store.CAStore(root).certificate(), x509.SubjectKeyIdentifier).value.digest
    assert ext(signer.certificate, x509.AuthorityKeyIdentifier).value.key_identifier == root_ski
    assert not_valid_after(signer.certificate) - utcnow() < datetime.timedelta(days=1096)
    proc = subprocess.run(["openssl", "verify", "-CAfile", os.path.join(root, "ca.crt"),
                           os.path.join(issuing, "ca.crt")], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.load(open(store.store_json_path))["parent"] == os.path.abspath(root)
    assert pkilint(ca_store.certificate_pem(signer.certificate).decode(), tmp_path) == ""


def test_idempotent_second_run_changes_nothing(pki):
    root, issuing = pki
    before = tree_digest(root)
    again = ca_store.create_root(root, ROOT_PASS, common_name="Test Root CA", subject={"O": "Fleet Test"})
    assert again.changed is False and again.before == again.after
    again = ca_store.create_intermediate(issuing, ISSUING_PASS, root, ROOT_PASS, common_name="Test Issuing CA")
    assert again.changed is False
    assert tree_digest(root) == before


@pytest.mark.parametrize("change, message", [
    (dict(key_type="rsa2048"), "key type is ec_p256, not rsa2048"),
    (dict(common_name="Other Root"), "subject is CN=Test Root CA,O=Fleet Test, not CN=Other Root"),
    (dict(path_length=3), "path length is 1, not 3"),
])
def test_drift_is_reported_not_overwritten(pki, change, message):
    root, dummy = pki
    before = tree_digest(root)
    args = dict(common_name="Test Root CA", subject={"O": "Fleet Test"})
    args.update(change)
    with pytest.raises(MtlsError, match="already exists and differs") as info:
        ca_store.create_root(root, ROOT_PASS, **args)
    assert message in str(info.value)
    assert tree_digest(root) == before


def test_existing_store_with_wrong_passphrase_fails(pki):
    root, dummy = pki
    with pytest.raises(MtlsError, match="wrong passphrase for CA key"):
        ca_store.create_root(root, "not-the-passphrase", common_name="Test Root CA", subject={"O": "Fleet Test"})


def test_kind_drift(pki):
    root, dummy = pki
    with pytest.raises(MtlsError, match="kind is root, not intermediate"):
        ca_store.create_intermediate(root, ROOT_PASS, pki[1], ISSUING_PASS, common_name="Test Root CA")


@pytest.mark.parametrize("passphrase", [None, ""])
def test_new_store_needs_passphrase(tmp_path, passphrase):
    with pytest.raises(MtlsError, match="passphrase is required and must not be empty"):
        ca_store.create_root(str(tmp_path / "r"), passphrase, common_name="R")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("args, message", [
    (dict(key_type="dsa1024"), "unknown key type 'dsa1024'"),
    (dict(validity_days=0), "validity_days must be a positive"),
    (dict(path_length=-1), "path_length must be a non-negative"),
    (dict(common_name=None), "the subject is empty"),
    (dict(subject={"C": "Germany"}), "two-letter code"),
])
def test_bad_root_options(tmp_path, args, message):
    options = dict(common_name="R")
    options.update(args)
    with pytest.raises(MtlsError, match=message):
        ca_store.create_root(str(tmp_path / "r"), "pw", **options)
    assert os.listdir(str(tmp_path)) == []


def test_all_key_types(tmp_path):
    for key_type in ("ec_p384", "rsa2048", "ed25519"):
        result = ca_store.create_root(str(tmp_path / key_type), "pw", key_type=key_type, common_name=key_type)
        signer = result.store.load("pw")
        assert signer.key_type == key_type


def test_intermediate_never_outlives_parent(tmp_path):
    root = str(tmp_path / "root")
    ca_store.create_root(root, "pw", common_name="Short Root", validity_days=30)
    with pytest.raises(MtlsError, match="after the parent CA expires"):
        ca_store.create_intermediate(str(tmp_path / "i"), "pw2", root, "pw", common_name="I", validity_days=31)
    # Only the empty lock files of the two stores (left in place by design) beside the root.
    assert sorted(os.listdir(str(tmp_path))) == [".i.lock", ".root.lock", "root"]
    result = ca_store.create_intermediate(str(tmp_path / "i"), "pw2", root, "pw", common_name="I",
                                          validity_days=365, truncate_to_parent=True)
    parent_end = not_valid_after(ca_store.CAStore(root).certificate())
    assert not_valid_after(result.store.certificate()) == parent_end


def test_intermediate_path_length_must_fit_parent(tmp_path):
    root = str(tmp_path / "root")
    ca_store.create_root(root, "pw", common_name="R", path_length=0)
    with pytest.raises(MtlsError, match="path_length must be at most -1|allows path length 0"):
        ca_store.create_intermediate(str(tmp_path / "i"), "pw2", root, "pw", common_name="I")


def test_intermediate_needs_parent_passphrase_and_store(tmp_path, pki):
    root, dummy = pki
    with pytest.raises(MtlsError, match="wrong passphrase"):
        ca_store.create_intermediate(str(tmp_path / "i"), "x", root, "wrong", common_name="I")
    with pytest.raises(MtlsError, match="does not exist"):
        ca_store.create_intermediate(str(tmp_path / "i"), "x", str(tmp_path / "nope"), "pw", common_name="I")
    assert not (tmp_path / "i").exists()


def test_check_mode_writes_nothing(tmp_path, pki):
    result = ca_store.create_root(str(tmp_path / "r"), "pw", common_name="R", check_mode=True)
    assert result.changed and result.after["subject"] == "CN=R"
    result = ca_store.create_intermediate(str(tmp_path / "i"), "pw", pki[0], ROOT_PASS, common_name="I",
                                          check_mode=True)
    assert result.changed and result.after["kind"] == "intermediate"
    assert os.listdir(str(tmp_path)) == []


def test_load_errors(tmp_path, pki):
    with pytest.raises(MtlsError, match="CA store .* does not exist"):
        ca_store.CAStore(str(tmp_path / "missing")).load("pw")
    with pytest.raises(MtlsError, match="wrong passphrase for CA key"):
        ca_store.CAStore(pki[1]).load("wrong")
    with pytest.raises(MtlsError, match="CA passphrase is required"):
        ca_store.CAStore(pki[1]).load("")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "x").write_text("x")
    with pytest.raises(MtlsError, match="is not a CA store: store.json is missing"):
        ca_store.CAStore(str(tmp_path / "junk")).load("pw")


def _copy_store(src, dst):
    import shutil
    shutil.copytree(src, dst)
    return dst


@pytest.mark.parametrize("name, content, message", [
    ("store.json", b"{not json", "metadata .* is corrupt"),
    ("store.json", b'{"kind": "root", "format": 9}', "has format 9"),
    ("ca.crt", b"garbage", "holds no PEM certificate|is not a PEM certificate"),
    ("ca.key", b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
     "wrong passphrase for CA key|not a readable PEM private key"),
    ("chain.pem", None, "CA chain .* does not start with ca.crt"),
])
def test_corrupt_store_files(tmp_path, pki, name, content, message):
    path = _copy_store(pki[1], str(tmp_path / "copy"))
    if content is None:  # chain of another CA
        content = open(os.path.join(pki[0], "chain.pem"), "rb").read()
    with open(os.path.join(path, name), "wb") as handle:
        handle.write(content)
    with pytest.raises(MtlsError, match=message):
        ca_store.CAStore(path).load(ISSUING_PASS)


def test_key_not_matching_certificate(tmp_path, pki):
    path = _copy_store(pki[1], str(tmp_path / "copy"))
    with open(os.path.join(path, "ca.key"), "wb") as handle:
        handle.write(serialize_private_key(generate_private_key(), ISSUING_PASS))
    with pytest.raises(MtlsError, match="does not match CA certificate"):
        ca_store.CAStore(path).load(ISSUING_PASS)


def _expired_root(path):
    """A root that expired yesterday, written as a store (the API refuses to make one)."""
    key = generate_private_key()
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "Old Root")])
    now = utcnow()
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(serials.random_serial())
            .not_valid_before(now - datetime.timedelta(days=30)).not_valid_after(now - datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
            .sign(key, hashes.SHA256()))
    ca_store._write_new_store(ca_store.CAStore(path), ca_store._store_files(
        "root", "ec_p256", None, serialize_private_key(key, "pw"), cert, ca_store.certificate_pem(cert)),
        0o700, None, None)
    return key, cert


def test_expired_ca_cannot_sign(tmp_path):
    path = str(tmp_path / "old")
    _expired_root(path)
    with pytest.raises(MtlsError, match="expired on"):
        ca_store.CAStore(path).load("pw")
    assert ca_store.CAStore(path).load("pw", allow_expired=True).certificate is not None


def test_failed_create_leaves_nothing(tmp_path, monkeypatch):
    real = fsutil._write_temp

    def failing(path, *args, **kwargs):
        if path.endswith("chain.pem"):
            raise OSError(28, "No space left on device")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(fsutil, "_write_temp", failing)
    with pytest.raises(MtlsError, match="No space left on device"):
        ca_store.create_root(str(tmp_path / "r"), "pw", common_name="R")
    assert os.listdir(str(tmp_path)) == [".r.lock"] and os.path.getsize(str(tmp_path / ".r.lock")) == 0


def test_refuses_non_empty_directory(tmp_path):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "notes.txt").write_text("mine")
    with pytest.raises(MtlsError, match="not a CA store|not an empty directory"):
        ca_store.create_root(str(tmp_path / "r"), "pw", common_name="R")
    assert os.listdir(str(tmp_path / "r")) == ["notes.txt"]


def test_empty_directory_becomes_store(tmp_path):
    (tmp_path / "r").mkdir()
    ca_store.create_root(str(tmp_path / "r"), "pw", common_name="R")
    assert ca_store.CAStore(str(tmp_path / "r")).exists()


# -- adoption of openssl-made CAs ---------------------------------------------------------------

def _openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=str(cwd), check=True, capture_output=True)


@pytest.fixture
def openssl_ca(tmp_path):
    """A root and an intermediate made by the openssl CLI (root key encrypted with 'legacy')."""
    d = tmp_path / "legacy"
    d.mkdir()
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-keyout", "root.key",
             "-passout", "pass:legacy", "-out", "root.crt", "-days", "365", "-subj", "/CN=Legacy Root",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             cwd=d)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "int.key", "-out", "int.csr",
             "-subj", "/CN=Legacy Issuing", cwd=d)
    (d / "int.ext").write_text("basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n")
    _openssl("x509", "-req", "-in", "int.csr", "-CA", "root.crt", "-CAkey", "root.key", "-passin", "pass:legacy",
             "-CAcreateserial", "-out", "int.crt", "-days", "200", "-extfile", "int.ext", cwd=d)
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
             "leaf.key", "-out", "leaf.crt", "-days", "30", "-subj", "/CN=not-a-ca",
             "-addext", "basicConstraints=critical,CA:FALSE", cwd=d)
    return d


def _read(path):
    return open(str(path), "rb").read()


def test_adopt_openssl_root_and_intermediate(tmp_path, openssl_ca):
    d = openssl_ca
    result = ca_store.adopt(str(tmp_path / "root"), _read(d / "root.key"), _read(d / "root.crt"), "legacy", "newpass")
    assert result.changed and result.after["kind"] == "root"
    store = ca_store.CAStore(str(tmp_path / "root"))
    signer = store.load("newpass")
    assert signer.certificate.fingerprint(hashes.SHA256()) == x509.load_pem_x509_certificate(
        _read(d / "root.crt")).fingerprint(hashes.SHA256())
    # re-encrypted under the store passphrase, not the old one
    with pytest.raises(MtlsError, match="wrong passphrase"):
        store.load("legacy")
    before = tree_digest(store.path)
    again = ca_store.adopt(str(tmp_path / "root"), _read(d / "root.key"), _read(d / "root.crt"), "legacy", "newpass")
    assert again.changed is False and tree_digest(store.path) == before

    result = ca_store.adopt(str(tmp_path / "int"), _read(d / "int.key"), _read(d / "int.crt"), None, "intpass",
                            parent_chain_pem=_read(d / "root.crt"))
    assert result.after["kind"] == "intermediate" and result.after["key_type"] == "rsa2048"
    signer = ca_store.CAStore(str(tmp_path / "int")).load("intpass")
    assert len(signer.chain) == 2
    key_pem = _read(tmp_path / "int" / "ca.key")
    assert b"ENCRYPTED" in key_pem


def test_adopt_drift_other_certificate(tmp_path, openssl_ca):
    d = openssl_ca
    ca_store.adopt(str(tmp_path / "root"), _read(d / "root.key"), _read(d / "root.crt"), "legacy", "newpass")
    with pytest.raises(MtlsError, match="kind is root, not intermediate"):
        ca_store.adopt(str(tmp_path / "root"), _read(d / "int.key"), _read(d / "int.crt"), None, "newpass",
                       parent_chain_pem=_read(d / "root.crt"))


@pytest.mark.parametrize("key, cert, adopt_pass, chain, message", [
    ("leaf.key", "leaf.crt", None, None, "is not a CA: BasicConstraints CA:TRUE is missing"),
    ("int.key", "root.crt", None, None, "does not match the certificate to adopt"),
    ("root.key", "root.crt", "wrong", None, "wrong passphrase for key to adopt"),
    ("root.key", "root.crt", None, None, "is encrypted: a passphrase is required"),
    ("int.key", "int.crt", None, None, "is not a self-signed root"),
    ("int.key", "int.crt", None, "leaf.crt", "does not start with the issuer"),
    ("int.key", "int.key", None, None, "holds no certificate|no PEM certificate"),
])
def test_adopt_rejects(tmp_path, openssl_ca, key, cert, adopt_pass, chain, message):
    d = openssl_ca
    with pytest.raises(MtlsError, match=message):
        ca_store.adopt(str(tmp_path / "s"), _read(d / key), _read(d / cert), adopt_pass, "pw",
                       parent_chain_pem=_read(d / chain) if chain else None)
    assert not (tmp_path / "s").exists()


def test_adopt_ca_without_key_cert_sign(tmp_path):
    d = tmp_path
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "k.pem",
             "-out", "c.pem", "-days", "30", "-subj", "/CN=No Sign", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,digitalSignature", cwd=d)
    with pytest.raises(MtlsError, match="KeyUsage keyCertSign is missing"):
        ca_store.adopt(str(tmp_path / "s"), _read(d / "k.pem"), _read(d / "c.pem"), None, "pw")


def test_adopt_expired_is_refused(tmp_path):
    key, cert = _expired_root(str(tmp_path / "scratch"))
    with pytest.raises(MtlsError, match="expired on"):
        ca_store.adopt(str(tmp_path / "s"), serialize_private_key(key), cert.public_bytes(serialization.Encoding.PEM),
                       None, "pw")


def test_signed_leaf_from_adopted_ca_verifies(tmp_path, openssl_ca):
    from ansible_collections.fleet.mtls.plugins.module_utils.issuance import sign_leaf
    from issuance_helpers import make_csr
    d = openssl_ca
    ca_store.adopt(str(tmp_path / "int"), _read(d / "int.key"), _read(d / "int.crt"), None, "intpass",
                   parent_chain_pem=_read(d / "root.crt"))
    signer = ca_store.CAStore(str(tmp_path / "int")).load("intpass")
    leaf = sign_leaf(signer, make_csr("svc.example.com"), validity_days=30)
    proc = openssl_verify(str(d / "root.crt"), str(d / "int.crt"),
                          leaf.public_bytes(serialization.Encoding.PEM).decode(), tmp_path, purpose="sslserver")
    assert proc.returncode == 0, proc.stdout + proc.stderr
