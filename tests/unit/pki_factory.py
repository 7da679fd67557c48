"""Small test PKI built with cryptography directly, so inspection and probe tests can make the odd
certificates a real CA refuses to issue (expired, not yet valid, wrong EKU, CA without keyCertSign,
path length violations, foreign roots) without depending on the collection's issuing code.

Self-contained on purpose (only cryptography, none of the collection's code): the certificates the
tests judge the collection by are not made by the collection. Works with cryptography 38 too, so the
inspection tests can run against Debian 12's version.
"""

from __future__ import annotations

import datetime
import ipaddress
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

UTC = datetime.timezone.utc
EKU = {"serverAuth": ExtendedKeyUsageOID.SERVER_AUTH, "clientAuth": ExtendedKeyUsageOID.CLIENT_AUTH,
       "codeSigning": ExtendedKeyUsageOID.CODE_SIGNING}


def generate_key(key_type="ec_p256"):
    if key_type == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if key_type.startswith("rsa"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(key_type[3:]))
    return ec.generate_private_key({"ec_p256": ec.SECP256R1(), "ec_p384": ec.SECP384R1()}[key_type])


def _signature_hash(key):
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return None
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size == 384:
        return hashes.SHA384()
    return hashes.SHA256()


def now():
    return datetime.datetime.now(UTC).replace(microsecond=0)


def _general_name(san):
    kind, value = san.split(":", 1)
    if kind == "DNS":
        return x509.DNSName(value)
    if kind == "IP":
        return x509.IPAddress(ipaddress.ip_address(value))
    if kind == "URI":
        return x509.UniformResourceIdentifier(value)
    return x509.RFC822Name(value)


class Identity:
    """A certificate, its private key and the issuing chain above it (issuer first)."""

    def __init__(self, cert, key, chain=()):
        self.cert = cert
        self.key = key
        self.chain = list(chain)

    @property
    def cert_pem(self):
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def chain_pem(self):
        """What a server presents: the certificate and its intermediates, without the root."""
        intermediates = [c for c in self.chain if c.subject != c.issuer]
        return self.cert_pem + b"".join(c.public_bytes(serialization.Encoding.PEM) for c in intermediates)

    def key_pem(self, passphrase=None):
        encryption = (serialization.BestAvailableEncryption(passphrase.encode())
                      if passphrase else serialization.NoEncryption())
        return self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      encryption)

    def write(self, directory, name, passphrase=None):
        """Write NAME.crt, NAME.chain.pem and NAME.key (0600 from birth); returns their paths."""
        paths = {"cert": os.path.join(directory, name + ".crt"),
                 "chain": os.path.join(directory, name + ".chain.pem"),
                 "key": os.path.join(directory, name + ".key")}
        with open(paths["cert"], "wb") as handle:
            handle.write(self.cert_pem)
        with open(paths["chain"], "wb") as handle:
            handle.write(self.chain_pem)
        fd = os.open(paths["key"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(self.key_pem(passphrase))
        return paths

    def issue(self, common_name, **options):
        """Sign a new certificate with this identity (which should be a CA)."""
        return make_certificate(common_name, issuer=self, **options)


def make_certificate(common_name, issuer=None, key_type="ec_p256", ca=False, path_length=None,
                     key_cert_sign=None, eku=None, sans=(), not_before=None, not_after=None, days=30,
                     key=None, with_key_ids=True, organization="fleet-mtls tests", signer_key=None,
                     name_constraints=None):
    """A certificate for ``common_name``; self-signed when ``issuer`` is None.

    ``key_cert_sign`` defaults to ``ca``; ``eku`` is a list of names from EKU (None: no EKU
    extension). ``signer_key`` signs with a different key than the issuer's (bad signature).
    ``name_constraints`` (an x509.NameConstraints) is added as a critical extension.
    """
    key = key or generate_key(key_type)
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
                         x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    start = not_before or now() - datetime.timedelta(minutes=5)
    end = not_after or start + datetime.timedelta(days=days)
    issuer_name = issuer.cert.subject if issuer else subject
    signing_key = signer_key or (issuer.key if issuer else key)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(start).not_valid_after(end)
               .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length if ca else None),
                              critical=True))
    if key_cert_sign is None:
        key_cert_sign = ca
    builder = builder.add_extension(x509.KeyUsage(
        digital_signature=not ca, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=key_cert_sign, crl_sign=ca,
        encipher_only=False, decipher_only=False), critical=True)
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([EKU[name] for name in eku]), critical=False)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName([_general_name(s) for s in sans]),
                                        critical=False)
    if name_constraints is not None:
        builder = builder.add_extension(name_constraints, critical=True)
    if with_key_ids:
        builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                                        critical=False)
        authority_key = issuer.key.public_key() if issuer else key.public_key()
        builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(authority_key),
                                        critical=False)
    cert = builder.sign(signing_key, _signature_hash(signing_key))
    chain = ([issuer.cert] + issuer.chain) if issuer else []
    return Identity(cert, key, chain)


def make_crl(issuer, revoked=(), next_update=None, last_update=None, crl_number=1):
    """A CRL signed by ``issuer`` listing ``revoked`` (certificates or serial numbers)."""
    last = last_update or now() - datetime.timedelta(minutes=5)
    builder = (x509.CertificateRevocationListBuilder().issuer_name(issuer.cert.subject)
               .last_update(last).next_update(next_update or last + datetime.timedelta(days=7))
               .add_extension(x509.CRLNumber(crl_number), critical=False))
    for item in revoked:
        serial = item.serial_number if hasattr(item, "serial_number") else item
        entry = (x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(last)
                 .add_extension(x509.CRLReason(x509.ReasonFlags.key_compromise), critical=False).build())
        builder = builder.add_revoked_certificate(entry)
    return builder.sign(issuer.key, _signature_hash(issuer.key))


def crl_pem(*crls):
    return b"".join(crl.public_bytes(serialization.Encoding.PEM) for crl in crls)


def certs_pem(*certs):
    return b"".join(cert.public_bytes(serialization.Encoding.PEM) for cert in certs)


class Pki:
    """Root -> issuing intermediate, plus a foreign root, the layout the collection deploys."""

    def __init__(self, key_type="ec_p256"):
        self.root = make_certificate("Test Root CA", ca=True, days=3650, key_type=key_type)
        self.issuing = self.root.issue("Test Issuing CA", ca=True, path_length=0, days=1000,
                                       key_type=key_type)
        self.foreign_root = make_certificate("Foreign Root CA", ca=True, days=3650)
        self.foreign_issuing = self.foreign_root.issue("Foreign Issuing CA", ca=True, path_length=0,
                                                       days=1000)

    @property
    def trust_bundle_pem(self):
        return certs_pem(self.root.cert, self.issuing.cert)

    def server(self, common_name="server.test", sans=("DNS:localhost", "IP:127.0.0.1"), **options):
        options.setdefault("eku", ["serverAuth"])
        return self.issuing.issue(common_name, sans=sans, **options)

    def client(self, common_name="client.test", **options):
        options.setdefault("eku", ["clientAuth"])
        return self.issuing.issue(common_name, **options)
