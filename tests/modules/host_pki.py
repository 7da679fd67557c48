# -*- coding: utf-8 -*-
"""A test CA for the host-side module tests, independent of the collection's issuing code.

tests/fixtures/test-pki.sh (plain openssl) makes root -> issuing intermediate and a foreign root;
leaves are signed here from the CSRs the modules produce, with any validity window, so tests can
put a certificate inside the renewal window, expire it or date it in the future.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
import stat
import subprocess

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURE = os.path.join(REPO, "tests", "fixtures", "test-pki.sh")
UTC = datetime.timezone.utc
DAY = datetime.timedelta(days=1)
EKU = {"server": [ExtendedKeyUsageOID.SERVER_AUTH], "client": [ExtendedKeyUsageOID.CLIENT_AUTH],
       "server_client": [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]}


def now():
    return datetime.datetime.now(UTC).replace(microsecond=0)


def _read(path):
    with open(path, "rb") as handle:
        return handle.read()


def pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


class CA:
    def __init__(self, directory):
        self.directory = directory
        self.cert = x509.load_pem_x509_certificate(_read(os.path.join(directory, "ca.crt")))
        self.key = serialization.load_pem_private_key(_read(os.path.join(directory, "ca.key")), None)


class HostPki:
    """``sign(csr_pem, ...)`` -> (leaf PEM, chain PEM); ``trust_bundle`` / ``crl`` PEM bytes."""

    def __init__(self, directory):
        subprocess.run(["bash", FIXTURE, "init", directory], check=True, capture_output=True)
        self.directory = directory
        self.root = CA(os.path.join(directory, "ca", "root"))
        self.issuing = CA(os.path.join(directory, "ca", "intermediate"))
        self.rogue = CA(os.path.join(directory, "ca", "rogue"))
        self.trust_bundle_path = os.path.join(directory, "trust-bundle.pem")

    @property
    def trust_bundle(self):
        return _read(self.trust_bundle_path)

    @property
    def crl(self):
        return _read(os.path.join(self.directory, "crl.pem"))

    def sign(self, csr_pem, profile="server", not_before=None, not_after=None, issuer=None, public_key=None):
        issuer = issuer or self.issuing
        csr = x509.load_pem_x509_csr(csr_pem.encode() if isinstance(csr_pem, str) else csr_pem)
        start = not_before or now() - datetime.timedelta(minutes=5)
        end = not_after or start + 90 * DAY
        builder = (x509.CertificateBuilder().subject_name(csr.subject).issuer_name(issuer.cert.subject)
                   .public_key(public_key or csr.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(start).not_valid_after(end)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.ExtendedKeyUsage(EKU[profile]), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
                                  critical=False))
        try:
            sans = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            builder = builder.add_extension(sans, critical=False)
        except x509.ExtensionNotFound:
            pass
        algorithm = None if isinstance(issuer.key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
        cert = builder.sign(issuer.key, algorithm)
        chain = pem(cert) + (pem(issuer.cert) if issuer is self.issuing else b"")
        return pem(cert).decode(), chain.decode()

    def sign_key(self, key, common_name, sans, profile="server", **sign_options):
        """Leaf and chain PEM for ``key`` (a CSR is made and signed as the CA would)."""
        general_names = [x509.IPAddress(ipaddress.ip_address(value[3:])) if value.startswith("IP:")
                         else x509.DNSName(value[4:]) for value in sans]
        csr = (x509.CertificateSigningRequestBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
               .add_extension(x509.SubjectAlternativeName(general_names), critical=False)
               .sign(key, hashes.SHA256()))
        return self.sign(csr.public_bytes(serialization.Encoding.PEM), profile, **sign_options)

    def provision(self, etc, name, common_name, sans, profile="server", **sign_options):
        """Lay out an issued identity the way csr + install_identity would (without running them,
        which keeps tests fast): private/NAME.key (0600), certs/NAME.crt and certs/NAME.chain.pem.
        Returns the leaf PEM."""
        key = write_new_key(os.path.join(etc, "private", name + ".key"))
        cert_pem, chain_pem = self.sign_key(key, common_name, sans, profile, **sign_options)
        install_files(etc, name, cert_pem, chain_pem)
        return cert_pem

    def revoke_with_openssl(self, cert_pem, work_dir):
        """CRL of the issuing CA revoking ``cert_pem`` (made by ``openssl ca``, not by us)."""
        path = os.path.join(work_dir, "revoke-me.crt")
        with open(path, "w") as handle:
            handle.write(cert_pem)
        config = os.path.join(self.issuing.directory, "openssl.cnf")
        out = os.path.join(work_dir, "issuing-crl.pem")
        subprocess.run(["openssl", "ca", "-batch", "-config", config, "-revoke", path,
                        "-crl_reason", "keyCompromise"], check=True, capture_output=True)
        subprocess.run(["openssl", "ca", "-batch", "-config", config, "-gencrl", "-out", out],
                       check=True, capture_output=True)
        return _read(out) + _read(os.path.join(self.root.directory, "crl.pem"))


def install_files(etc, name, cert_pem, chain_pem=None):
    """certs/NAME.crt and certs/NAME.chain.pem as install_identity writes them (chain: the leaf alone
    unless given)."""
    os.makedirs(os.path.join(etc, "certs"), exist_ok=True)
    for suffix, data in ((".crt", cert_pem), (".chain.pem", chain_pem or cert_pem)):
        with open(os.path.join(etc, "certs", name + suffix), "w") as handle:
            handle.write(data)


def write_new_key(path):
    """A new EC P-256 key written to ``path`` with mode 0600 from birth; returns the key."""
    key = ec.generate_private_key(ec.SECP256R1())
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return key


def snapshot(directory):
    """Every file and directory under ``directory``: content hash, mode, owner (for byte-identity)."""
    state = {}
    if not os.path.exists(directory):
        return state
    for root, dirs, files in os.walk(directory):
        for name in dirs + files:
            path = os.path.join(root, name)
            st = os.lstat(path)
            digest = None
            if stat.S_ISREG(st.st_mode):
                digest = hashlib.sha256(_read(path)).hexdigest()
            state[os.path.relpath(path, directory)] = (digest, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
    return state


def file_mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def public_key_of_key_file(path):
    key = serialization.load_pem_private_key(_read(path), None)
    return key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def public_key_of(pem_text):
    data = pem_text.encode() if isinstance(pem_text, str) else pem_text
    if b"CERTIFICATE REQUEST" in data:
        obj = x509.load_pem_x509_csr(data)
    else:
        obj = x509.load_pem_x509_certificate(data)
    return obj.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
