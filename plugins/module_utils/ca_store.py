# -*- coding: utf-8 -*-
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""CA store: one certificate authority per directory.

API: ``CAStore(path)`` names a store directory; ``.exists()``, ``.metadata()`` (store.json),
``.certificate()`` (ca.crt, no passphrase needed), ``.describe()`` (public facts for returns),
``.path_of(name)`` and the ``*_path`` properties (``crl_path``/``crl_json_path`` are written by the
CRL code, the store only owns the names), ``.index()`` (the issuance index) and
``.load(passphrase)`` -> ``Signer`` with ``.certificate``, ``.key``, ``.chain`` (this CA up to the
root, list of certificates), ``.chain_pem`` (bytes), ``.intermediates_pem`` (chain without the
self-signed root), ``.ski`` and ``.check_validity()``.
``create_root(path, passphrase, key_type, common_name, subject, validity_days, path_length)``,
``create_intermediate(path, passphrase, parent_store_path, parent_passphrase, ...)`` and
``adopt(path, key_pem, cert_pem, adopt_passphrase, passphrase, parent_chain_pem=None)`` ensure a
store: they create it when missing (all files staged in a temporary sibling directory that is
renamed into place, so a failed create leaves nothing), return ``CAResult(changed=False)`` when
the store already holds what was asked, and raise ``MtlsError`` on drift (other kind, key type,
subject or certificate) instead of overwriting. Every expected failure (wrong passphrase, missing
store, corrupt file, expired CA) raises ``MtlsError`` naming the problem.
Runs that may write hold ``store_lock(path)`` (the sibling ``.<store>.lock``) from the existence check
on, so of concurrent creates one creates and the others find the store; under it leftovers of killed
runs are removed. A store path or store file that is a symbolic link is refused (reads use
O_NOFOLLOW). An existing store whose key is encrypted below today's work factor is re-encrypted
(``pkcs8.py``) by the next ensure call. ``adopt(..., recertify=True)`` adopts a self-signed root
without KeyUsage through ``recertify_root``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import datetime
import errno
import json
import os
import re
import shutil
import stat
import tempfile

from ansible_collections.fleet.mtls.plugins.module_utils.compat import (
    isoformat, not_valid_after, not_valid_before, utcnow)
from ansible_collections.fleet.mtls.plugins.module_utils.errors import MtlsError
from ansible_collections.fleet.mtls.plugins.module_utils.fsutil import (
    TEMP_SUFFIX, StagedFiles, atomic_write, file_lock, parse_mode, read_file, remove_leftovers, resolve_gid,
    resolve_uid, temporaries_pattern)
from ansible_collections.fleet.mtls.plugins.module_utils.keys import (
    DEFAULT_KEY_TYPE, check_key_type, generate_private_key, key_type_of, load_private_key,
    same_public_key, serialize_private_key, signing_hash)
from ansible_collections.fleet.mtls.plugins.module_utils.names import (
    build_subject, name_constraints_of, subject_string)
from ansible_collections.fleet.mtls.plugins.module_utils.pkcs8 import (
    PBKDF2_ITERATIONS, pbkdf2_iterations, weak_encryption)
from ansible_collections.fleet.mtls.plugins.module_utils.serials import random_serial, serial_hex
from ansible_collections.fleet.mtls.plugins.module_utils.x509_info import fingerprint_sha256, issued_by, load_certificates

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    HAS_CRYPTOGRAPHY = True
except ImportError:
    HAS_CRYPTOGRAPHY = False

STORE_FORMAT = 1
ROOT_VALIDITY_DAYS = 3650
INTERMEDIATE_VALIDITY_DAYS = 1095
ROOT_PATH_LENGTH = 1
INTERMEDIATE_PATH_LENGTH = 0
DEFAULT_STORE_MODE = 0o700
# CA certificates are backdated a little, like leaves, so hosts with a slow clock accept them.
CA_BACKDATE = datetime.timedelta(minutes=5)

STORE_FILES = ("store.json", "ca.key", "ca.crt", "chain.pem", "index.json", "index.lock",
               "crl.pem", "crl.json")
# Temporaries this module makes (fsutil.temporaries_pattern; mkdtemp adds fsutil.TEMP_SUFFIX): what a
# killed run leaves, removed by the next ``ca`` run under the store's creation lock.
_OWN_TEMPS = temporaries_pattern(("store.json", "ca.key", "ca.crt", "chain.pem"))


def load_certificate(data, source):
    """The first certificate of PEM ``data`` (a CA store file holds one)."""
    if data is None:
        raise MtlsError("%s is missing" % source)
    return load_certificates(data, source)[0]


def certificate_pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def is_self_signed(cert):
    return cert.issuer == cert.subject


def _ca_constraints(cert):
    """(is_ca, path_length, can_sign_certificates) of a certificate."""
    try:
        basic = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return False, None, False
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        can_sign = usage.key_cert_sign
    except x509.ExtensionNotFound:
        can_sign = False
    return basic.ca, basic.path_length, can_sign


def subject_key_identifier(cert):
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        return x509.SubjectKeyIdentifier.from_public_key(cert.public_key())


def key_encryption(key_pem):
    """How a CA key is encrypted at rest, for returns: 'pbkdf2-sha256:<iterations>' or 'other'."""
    iterations = pbkdf2_iterations(key_pem)
    return "pbkdf2-sha256:%d" % iterations if iterations is not None else "other"


def check_passphrase(passphrase, what="CA passphrase"):
    if passphrase is None or passphrase == "":
        raise MtlsError("%s is required and must not be empty: the CA key is encrypted at rest" % what)
    return passphrase


class Signer:
    """A loaded CA: certificate, private key and the chain up to the root."""

    def __init__(self, store_path, certificate, key, chain):
        self.store_path = store_path
        self.certificate = certificate
        self.key = key
        self.chain = chain
        self.chain_pem = b"".join(certificate_pem(cert) for cert in chain)
        self.intermediates_pem = b"".join(
            certificate_pem(cert) for cert in chain if not is_self_signed(cert))
        self.key_type = key_type_of(key)
        self.hash_algorithm = signing_hash(key)
        self.ski = subject_key_identifier(certificate)
        self.not_before = not_valid_before(certificate)
        self.not_after = not_valid_after(certificate)

    def check_validity(self, now=None):
        """Raise when this CA cannot sign at ``now`` (expired or not yet valid)."""
        now = now or utcnow()
        name = subject_string(self.certificate.subject)
        if now >= self.not_after:
            raise MtlsError("CA certificate %s (store %s) expired on %s: rotate the CA before issuing"
                            % (name, self.store_path, isoformat(self.not_after)))
        if now < self.not_before:
            raise MtlsError("CA certificate %s (store %s) is not valid before %s (check the clock)"
                            % (name, self.store_path, isoformat(self.not_before)))


class CAStore:
    """Paths and read access of one CA store directory."""

    def __init__(self, path):
        if not path:
            raise MtlsError("CA store path is empty")
        self.path = os.path.abspath(os.path.expanduser(path))
        self.check_not_symlink()

    def check_not_symlink(self):
        """A store directory is never reached through a symbolic link (the link could be re-pointed)."""
        if os.path.islink(self.path):
            raise MtlsError("CA store path %s is a symbolic link (to %s): refusing to use it; give the real "
                            "directory as the store path" % (self.path, os.readlink(self.path)))
        if os.path.exists(self.path) and not os.path.isdir(self.path):
            raise MtlsError("CA store path %s exists and is not a directory" % self.path)

    def read(self, name, what):
        """Bytes of store file ``name`` (None when missing), never through a symbolic link."""
        return read_file(self.path_of(name), what, follow_symlinks=False)

    def path_of(self, name):
        if name not in STORE_FILES:
            raise MtlsError("%r is not a CA store file (known: %s)" % (name, ", ".join(STORE_FILES)))
        return os.path.join(self.path, name)

    store_json_path = property(lambda self: self.path_of("store.json"))
    key_path = property(lambda self: self.path_of("ca.key"))
    cert_path = property(lambda self: self.path_of("ca.crt"))
    chain_path = property(lambda self: self.path_of("chain.pem"))
    index_path = property(lambda self: self.path_of("index.json"))
    index_lock_path = property(lambda self: self.path_of("index.lock"))
    crl_path = property(lambda self: self.path_of("crl.pem"))
    crl_json_path = property(lambda self: self.path_of("crl.json"))

    def exists(self):
        return os.path.lexists(self.store_json_path)

    def require(self):
        if not self.exists():
            if os.path.isdir(self.path) and os.listdir(self.path):
                raise MtlsError("%s is not a CA store: store.json is missing" % self.path)
            raise MtlsError("CA store %s does not exist: create it with fleet.mtls.ca first" % self.path)

    def metadata(self):
        self.require()
        data = self.read("store.json", "CA store metadata")
        try:
            meta = json.loads(data.decode("utf-8"))
        except ValueError as exc:
            raise MtlsError("CA store metadata %s is corrupt: %s" % (self.store_json_path, exc))
        if not isinstance(meta, dict) or meta.get("kind") not in ("root", "intermediate"):
            raise MtlsError("CA store metadata %s is corrupt: no valid 'kind'" % self.store_json_path)
        if meta.get("format") != STORE_FORMAT:
            raise MtlsError("CA store %s has format %r; this version reads format %d"
                            % (self.path, meta.get("format"), STORE_FORMAT))
        return meta

    def certificate(self):
        self.require()
        return load_certificate(self.read("ca.crt", "CA certificate"),
                                "CA certificate %s" % self.cert_path)

    def chain(self):
        self.require()
        data = self.read("chain.pem", "CA chain")
        if data is None:
            raise MtlsError("CA chain %s is missing: the store is incomplete" % self.chain_path)
        return load_certificates(data, "CA chain %s" % self.chain_path)

    def load(self, passphrase, allow_expired=False):
        """Signer for this store; checks passphrase, key/certificate match and validity."""
        self.metadata()
        check_passphrase(passphrase)
        cert = self.certificate()
        chain = self.chain()
        if chain[0].fingerprint(hashes.SHA256()) != cert.fingerprint(hashes.SHA256()):
            raise MtlsError("CA chain %s does not start with ca.crt: the store is inconsistent"
                            % self.chain_path)
        key = load_private_key(self.read("ca.key", "CA key"), passphrase,
                               source="CA key %s" % self.key_path)
        if not same_public_key(key, cert.public_key()):
            raise MtlsError("CA key %s does not match CA certificate %s" % (self.key_path, self.cert_path))
        signer = Signer(self.path, cert, key, chain)
        if not allow_expired:
            signer.check_validity()
        return signer

    def index(self):
        from ansible_collections.fleet.mtls.plugins.module_utils.index import IssuanceIndex
        self.require()
        return IssuanceIndex(self.index_path, self.index_lock_path)

    def describe(self):
        """Public facts about the store (no secrets): what modules return."""
        meta = self.metadata()
        cert = self.certificate()
        return {
            "path": self.path,
            "kind": meta["kind"],
            "key_type": meta.get("key_type"),
            "parent": meta.get("parent"),
            "subject": subject_string(cert.subject),
            "issuer": subject_string(cert.issuer),
            "serial": serial_hex(cert.serial_number),
            "not_before": isoformat(not_valid_before(cert)),
            "not_after": isoformat(not_valid_after(cert)),
            "fingerprint_sha256": fingerprint_sha256(cert),
            "certificate": certificate_pem(cert).decode("ascii"),
            "chain": b"".join(certificate_pem(ca) for ca in self.chain()).decode("ascii"),
            "key_encryption": key_encryption(self.read("ca.key", "CA key")),
            "recertified_from": meta.get("recertified_from"),
        }


class CAResult:
    """What an ensure call did: ``changed``, the store, and before/after facts for diffs."""

    def __init__(self, changed, store, before, after):
        self.changed = changed
        self.store = store
        self.before = before
        self.after = after


def _ca_extensions(builder, public_key, issuer_ski, path_length, ski=None):
    ski = ski or x509.SubjectKeyIdentifier.from_public_key(public_key)
    aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski or ski)
    return (builder
            .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False), critical=True)
            .add_extension(ski, critical=False)
            .add_extension(aki, critical=False))


def _store_mode(mode):
    mode = parse_mode(mode, DEFAULT_STORE_MODE)
    if isinstance(mode, bool) or not 0 <= mode <= 0o7777:
        raise MtlsError("store mode %o is out of range: expected an octal mode such as '0700'" % mode)
    if mode & 0o002:
        raise MtlsError("store mode %04o lets every user write in the CA store: use '0700' (or '0750' for a group)"
                        % mode)
    return mode


def _check_validity_days(validity_days):
    if not isinstance(validity_days, int) or isinstance(validity_days, bool) or validity_days <= 0:
        raise MtlsError("validity_days must be a positive number of days, got %r" % (validity_days,))


def _check_path_length(path_length):
    if path_length is not None and (not isinstance(path_length, int) or path_length < 0):
        raise MtlsError("path_length must be a non-negative integer or null, got %r" % (path_length,))


def _build_ca_certificate(subject, key, issuer_cert, issuer_key, validity_days, path_length,
                          not_after_limit=None, truncate=False, name_constraints=None):
    now = utcnow()
    not_before = now - CA_BACKDATE
    not_after = now + datetime.timedelta(days=validity_days)
    if not_after_limit is not None:
        if issuer_cert is not None and not_before < not_valid_before(issuer_cert):
            not_before = not_valid_before(issuer_cert)
        if not_after > not_after_limit:
            if not truncate:
                raise MtlsError(
                    "validity_days=%d would end on %s, after the parent CA expires (%s): lower "
                    "validity_days or set truncate_to_parent"
                    % (validity_days, isoformat(not_after), isoformat(not_after_limit)))
            not_after = not_after_limit
    builder = (x509.CertificateBuilder()
               .subject_name(subject)
               .issuer_name(issuer_cert.subject if issuer_cert is not None else subject)
               .public_key(key.public_key())
               .serial_number(random_serial())
               .not_valid_before(not_before)
               .not_valid_after(not_after))
    issuer_ski = subject_key_identifier(issuer_cert) if issuer_cert is not None else None
    builder = _ca_extensions(builder, key.public_key(), issuer_ski, path_length)
    if name_constraints is not None:
        # RFC 5280 4.2.1.10: conforming CAs mark NameConstraints critical.
        builder = builder.add_extension(name_constraints, critical=True)
    signing_key = issuer_key if issuer_key is not None else key
    return builder.sign(signing_key, signing_hash(signing_key))


def _write_new_store(store, files, mode, owner, group):
    """Stage every file in a temporary sibling directory, then rename it into place."""
    parent = _ensure_parent(store)
    if os.path.exists(store.path):
        if not os.path.isdir(store.path) or os.listdir(store.path):
            raise MtlsError("%s exists and is not an empty directory: refusing to make a CA store there"
                            % store.path)
    uid, gid = resolve_uid(owner), resolve_gid(group)
    try:
        staging = tempfile.mkdtemp(prefix=".%s.new-" % os.path.basename(store.path), dir=parent)
    except OSError as exc:
        raise MtlsError("cannot create a staging directory in %s: %s" % (parent, exc.strerror or exc))
    try:
        os.chmod(staging, mode)
        if uid != -1 or gid != -1:
            os.chown(staging, uid, gid)
        with StagedFiles() as staged:
            for name, data, file_mode in files:
                staged.stage(os.path.join(staging, name), data, file_mode, owner, group)
            staged.commit()
        # rename(2) replaces an empty directory atomically; anything else was refused above.
        os.rename(staging, store.path)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise MtlsError("cannot create CA store %s: %s" % (store.path, exc.strerror or exc))
    except Exception:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _ensure_parent(store):
    parent = os.path.dirname(store.path)
    if not os.path.isdir(parent):
        try:
            os.makedirs(parent, 0o755)
        except OSError as exc:
            if exc.errno != errno.EEXIST or not os.path.isdir(parent):
                raise MtlsError("cannot create %s: %s" % (parent, exc.strerror or exc))
    return parent


def store_lock_path(path):
    """The lock serializing runs that create or maintain the store at ``path``: a sibling file,
    because the store directory itself appears only at the end of a create."""
    path = CAStore(path).path
    return os.path.join(os.path.dirname(path), ".%s.lock" % os.path.basename(path))


def _staging_pattern(store):
    return re.compile(re.escape(".%s.new-" % os.path.basename(store.path)) + TEMP_SUFFIX)


@contextlib.contextmanager
def store_lock(path):
    """Hold the store's lock; on entry remove what killed runs of ``ca`` left (staging directories
    beside the store, temporaries of store files inside it), never following a symbolic link."""
    store = CAStore(path)
    parent = _ensure_parent(store)
    with file_lock(store_lock_path(store.path)):
        store.check_not_symlink()
        removed = remove_leftovers(parent, _staging_pattern(store))
        if os.path.isdir(store.path):
            removed += remove_leftovers(store.path, _OWN_TEMPS)
        yield removed


def _locked_unless_check(store, check_mode):
    """``store_lock`` for a run that may write; check mode writes nothing, so it takes no lock. Of
    concurrent creates of one store exactly one creates it, the others find it and check it."""
    return contextlib.nullcontext([]) if check_mode else store_lock(store.path)


def _upgrade_key_encryption(outcome, passphrase, check_mode):
    """Re-encrypt an existing store's CA key made with a weaker scheme (the 2,048-iteration PBKDF2 of
    earlier versions) at today's work factor; the key and everything else stay as they are."""
    store = outcome.store
    key_pem = store.read("ca.key", "CA key")
    if not weak_encryption(key_pem):
        return outcome
    after = dict(outcome.after, key_encryption="pbkdf2-sha256:%d" % PBKDF2_ITERATIONS)
    if not check_mode:
        key = load_private_key(key_pem, passphrase, source="CA key %s" % store.key_path)
        info = os.lstat(store.key_path)
        atomic_write(store.key_path, serialize_private_key(key, passphrase), stat.S_IMODE(info.st_mode),
                     info.st_uid, info.st_gid)
        after = store.describe()
    return CAResult(True, store, outcome.before, after)


def _store_files(kind, key_type, parent, key_pem, cert, chain_pem, extra_meta=None):
    meta = {"kind": kind, "key_type": key_type, "created": isoformat(utcnow()), "parent": parent,
            "format": STORE_FORMAT}
    meta.update(extra_meta or {})
    return [
        ("ca.key", key_pem, 0o600),
        ("ca.crt", certificate_pem(cert), 0o644),
        ("chain.pem", chain_pem, 0o644),
        ("index.json", b'{"format": 1, "entries": [\n]}\n', 0o644),
        ("index.lock", b"", 0o600),
        ("store.json", (json.dumps(meta, indent=2, sort_keys=True) + "\n").encode("utf-8"), 0o644),
    ]


def _planned_facts(path, kind, key_type, subject, validity_days):
    """Facts of a store about to be created (check mode has no certificate to read yet)."""
    not_after = utcnow() + datetime.timedelta(days=validity_days)
    return {"path": path, "kind": kind, "key_type": key_type, "subject": subject_string(subject),
            "not_after": isoformat(not_after)}


def _check_existing(store, kind, key_type, subject, passphrase, path_length=None, cert=None,
                    name_constraints=None):
    """An existing store must hold what was asked; anything else is drift, reported not fixed."""
    meta = store.metadata()
    existing = store.certificate()
    problems = []
    if meta["kind"] != kind:
        problems.append("kind is %s, not %s" % (meta["kind"], kind))
    if key_type is not None and meta.get("key_type") != key_type:
        problems.append("key type is %s, not %s" % (meta.get("key_type"), key_type))
    if subject is not None and existing.subject != subject:
        problems.append("subject is %s, not %s" % (subject_string(existing.subject), subject_string(subject)))
    if path_length is not None:
        dummy, existing_length, dummy2 = _ca_constraints(existing)
        if existing_length != path_length:
            problems.append("path length is %s, not %s" % (existing_length, path_length))
    if name_constraints is not None and name_constraints_of(existing) != name_constraints:
        problems.append("name constraints are %s, not %s" % (name_constraints_of(existing), name_constraints))
    if cert is not None and existing.fingerprint(hashes.SHA256()) != cert.fingerprint(hashes.SHA256()):
        problems.append("it holds another CA certificate (%s)" % fingerprint_sha256(existing))
    if problems:
        raise MtlsError("CA store %s already exists and differs from the request: %s. A CA is never "
                        "replaced in place: use a new store path (a new CA generation)"
                        % (store.path, "; ".join(problems)), drift=problems)
    # The passphrase must still open it: a run that "succeeds" with a wrong one would hide the problem.
    store.load(passphrase, allow_expired=True)
    facts = store.describe()
    return CAResult(False, store, facts, facts)


def create_root(path, passphrase, key_type=DEFAULT_KEY_TYPE, common_name=None, subject=None,
                validity_days=ROOT_VALIDITY_DAYS, path_length=ROOT_PATH_LENGTH, mode=DEFAULT_STORE_MODE,
                owner=None, group=None, check_mode=False, name_constraints=None):
    """Ensure a self-signed root CA store at ``path``.

    ``name_constraints`` (``names.build_name_constraints()``, or None) is written into the CA
    certificate as a critical NameConstraints extension; the signer enforces it for every leaf.
    """
    store = CAStore(path)
    check_passphrase(passphrase)
    key_type = check_key_type(key_type or DEFAULT_KEY_TYPE)
    name = build_subject(common_name, subject)
    _check_validity_days(validity_days)
    _check_path_length(path_length)
    mode = _store_mode(mode)
    with _locked_unless_check(store, check_mode):
        if store.exists():
            return _upgrade_key_encryption(
                _check_existing(store, "root", key_type, name, passphrase, path_length,
                                name_constraints=name_constraints), passphrase, check_mode)
        if check_mode:
            return CAResult(True, store, {}, _planned_facts(store.path, "root", key_type, name, validity_days))
        key = generate_private_key(key_type)
        cert = _build_ca_certificate(name, key, None, None, validity_days, path_length,
                                     name_constraints=name_constraints)
        files = _store_files("root", key_type, None, serialize_private_key(key, passphrase), cert,
                             certificate_pem(cert))
        _write_new_store(store, files, mode, owner, group)
        return CAResult(True, store, {}, store.describe())


def create_intermediate(path, passphrase, parent_store_path, parent_passphrase, key_type=DEFAULT_KEY_TYPE,
                        common_name=None, subject=None, validity_days=INTERMEDIATE_VALIDITY_DAYS,
                        path_length=INTERMEDIATE_PATH_LENGTH, truncate_to_parent=False,
                        mode=DEFAULT_STORE_MODE, owner=None, group=None, check_mode=False,
                        name_constraints=None):
    """Ensure an intermediate CA store at ``path`` signed by the CA in ``parent_store_path``.

    The intermediate never outlives its parent: a longer ``validity_days`` fails unless
    ``truncate_to_parent`` clips it to the parent's notAfter.
    """
    store = CAStore(path)
    check_passphrase(passphrase)
    if not parent_store_path:
        raise MtlsError("an intermediate CA needs parent_path: the store of the CA that signs it")
    parent_store = CAStore(parent_store_path)
    if parent_store.path == store.path:
        raise MtlsError("an intermediate CA cannot be its own parent (%s)" % store.path)
    key_type = check_key_type(key_type or DEFAULT_KEY_TYPE)
    name = build_subject(common_name, subject)
    _check_validity_days(validity_days)
    _check_path_length(path_length)
    mode = _store_mode(mode)
    if not store.exists():
        parent_store.require()  # before the lock: a missing parent leaves not even the lock file behind
    with _locked_unless_check(store, check_mode):
        if store.exists():
            return _upgrade_key_encryption(
                _check_existing(store, "intermediate", key_type, name, passphrase, path_length,
                                name_constraints=name_constraints), passphrase, check_mode)
        parent = parent_store.load(check_passphrase(parent_passphrase, "parent CA passphrase"))
        dummy, parent_length, dummy2 = _ca_constraints(parent.certificate)
        if parent_length is not None and (path_length is None or path_length >= parent_length):
            raise MtlsError("parent CA %s allows path length %d below it: the intermediate's path_length "
                            "must be at most %d" % (parent_store.path, parent_length, parent_length - 1))
        if check_mode:
            return CAResult(True, store, {},
                            _planned_facts(store.path, "intermediate", key_type, name, validity_days))
        key = generate_private_key(key_type)
        cert = _build_ca_certificate(name, key, parent.certificate, parent.key, validity_days, path_length,
                                     not_after_limit=parent.not_after, truncate=truncate_to_parent,
                                     name_constraints=name_constraints)
        files = _store_files("intermediate", key_type, parent_store.path, serialize_private_key(key, passphrase),
                             cert, certificate_pem(cert) + parent.chain_pem)
        _write_new_store(store, files, mode, owner, group)
        return CAResult(True, store, {}, store.describe())


def adopt(path, key_pem, cert_pem, adopt_passphrase, passphrase, parent_chain_pem=None,
          parent_path=None, mode=DEFAULT_STORE_MODE, owner=None, group=None, check_mode=False, recertify=False):
    """Ensure a store holding an existing CA (e.g. made with openssl).

    The certificate must be a CA (BasicConstraints CA:TRUE, keyCertSign) and match the key; the key is
    re-encrypted under the store ``passphrase``. The chain is the certificate followed by
    ``parent_chain_pem`` when given, else the certificate must be a self-signed root.
    A self-signed root with CA:TRUE but no KeyUsage extension at all (``openssl req -x509 -extensions
    v3_ca``) is refused with the remedy, or with ``recertify`` stored as ``recertify_root`` makes it;
    store.json then records the adopted certificate's fingerprint as ``recertified_from``, so adopting
    the same input again is unchanged.
    """
    store = CAStore(path)
    check_passphrase(passphrase)
    mode = _store_mode(mode)
    cert = load_certificate(cert_pem, "certificate to adopt")
    is_ca, path_length, can_sign = _ca_constraints(cert)
    if not is_ca:
        raise MtlsError("certificate to adopt (%s) is not a CA: BasicConstraints CA:TRUE is missing"
                        % subject_string(cert.subject))
    needs_recertify = not can_sign and not _has_extension(cert, x509.KeyUsage)
    if not can_sign and not needs_recertify:
        raise MtlsError("certificate to adopt (%s) may not sign certificates: KeyUsage keyCertSign is missing "
                        "from its KeyUsage extension, which restricts the key on purpose; it cannot be adopted "
                        "as a CA" % subject_string(cert.subject))
    if needs_recertify and (parent_chain_pem or not is_self_signed(cert)):
        raise MtlsError("certificate to adopt (%s) may not sign certificates: KeyUsage keyCertSign is missing "
                        "(the certificate has no KeyUsage extension). Only a self-signed root can be "
                        "re-certified here; have its parent CA re-issue it with keyUsage=critical,keyCertSign,"
                        "cRLSign and adopt that" % subject_string(cert.subject))
    if needs_recertify and not recertify:
        raise MtlsError(
            "certificate to adopt (%s) may not sign certificates: KeyUsage keyCertSign is missing (the "
            "certificate has no KeyUsage extension, as `openssl req -x509 -extensions v3_ca` makes it; strict "
            "verifiers such as `openssl verify -x509_strict` refuse its leaves). Remedy: set "
            "adopt_recertify=true to store a new self-signed certificate for the same key, subject and "
            "validity with proper CA extensions (certificates this CA already signed keep verifying against "
            "it), or make a new certificate for the key with keyUsage=critical,keyCertSign,cRLSign and adopt "
            "that" % subject_string(cert.subject))
    key = load_private_key(key_pem, adopt_passphrase, source="key to adopt")
    if not same_public_key(key, cert.public_key()):
        raise MtlsError("key to adopt does not match the certificate to adopt (%s)" % subject_string(cert.subject))
    key_type = key_type_of(key)
    if parent_chain_pem:
        parents = load_certificates(parent_chain_pem, "parent chain to adopt")
        if not issued_by(cert, parents[0]):
            raise MtlsError("parent chain to adopt does not start with the issuer of %s"
                            % subject_string(cert.subject))
        kind = "intermediate"
        chain_pem = certificate_pem(cert) + b"".join(certificate_pem(p) for p in parents)
    else:
        if not is_self_signed(cert) or not issued_by(cert, cert):
            raise MtlsError("certificate to adopt (%s) is not a self-signed root: give its parent chain "
                            "(adopt_chain) to adopt an intermediate" % subject_string(cert.subject))
        kind = "root"
        chain_pem = certificate_pem(cert)
    with _locked_unless_check(store, check_mode):
        if store.exists():
            expected = cert
            if needs_recertify and store.metadata().get("recertified_from") == fingerprint_sha256(cert):
                expected = store.certificate()
            return _upgrade_key_encryption(_check_existing(store, kind, key_type, None, passphrase, cert=expected),
                                           passphrase, check_mode)
        if now_expired(cert):
            raise MtlsError("certificate to adopt (%s) expired on %s"
                            % (subject_string(cert.subject), isoformat(not_valid_after(cert))))
        if check_mode:
            facts = {"path": store.path, "kind": kind, "key_type": key_type, "subject": subject_string(cert.subject),
                     "not_after": isoformat(not_valid_after(cert)),
                     "recertified_from": fingerprint_sha256(cert) if needs_recertify else None}
            return CAResult(True, store, {}, facts)
        extra_meta = None
        if needs_recertify:
            extra_meta = {"recertified_from": fingerprint_sha256(cert)}
            cert = recertify_root(cert, key)
            chain_pem = certificate_pem(cert)
        files = _store_files(kind, key_type, parent_path, serialize_private_key(key, passphrase), cert, chain_pem,
                             extra_meta)
        _write_new_store(store, files, mode, owner, group)
        return CAResult(True, store, {}, store.describe())


def _has_extension(cert, extension_class):
    try:
        cert.extensions.get_extension_for_class(extension_class)
        return True
    except x509.ExtensionNotFound:
        return False


def recertify_root(cert, key):
    """A new self-signed certificate for the key of root ``cert``: same subject, key, validity and
    path length, the store's CA extensions (BasicConstraints CA:TRUE and KeyUsage keyCertSign, cRLSign
    critical), the old subject key identifier when it had one (else SHA-1 of the public key, as openssl's
    ``subjectKeyIdentifier=hash`` computes it), so the Authority Key Identifier of every leaf it signed
    still names it. The serial is new: an issuer and serial name one certificate (RFC 5280 4.1.2.2).
    Other extensions of the old certificate are carried over unchanged.
    """
    dummy, path_length, dummy2 = _ca_constraints(cert)
    ski = subject_key_identifier(cert)
    replaced = (x509.BasicConstraints, x509.KeyUsage, x509.SubjectKeyIdentifier, x509.AuthorityKeyIdentifier)
    builder = (x509.CertificateBuilder()
               .subject_name(cert.subject)
               .issuer_name(cert.subject)
               .public_key(key.public_key())
               .serial_number(random_serial())
               .not_valid_before(not_valid_before(cert))
               .not_valid_after(not_valid_after(cert)))
    for extension in cert.extensions:
        if not isinstance(extension.value, replaced):
            builder = builder.add_extension(extension.value, critical=extension.critical)
    builder = _ca_extensions(builder, key.public_key(), None, path_length, ski=ski)
    return builder.sign(key, signing_hash(key))


def now_expired(cert, now=None):
    return (now or utcnow()) >= not_valid_after(cert)
