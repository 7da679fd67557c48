"""Make a client certificate that expired yesterday, signed by a real fleet.mtls CA store.

No signer hands out expired certificates on purpose, so the test builds this one itself:
    expired_cert.py STORE_DIR PASSPHRASE_FILE COMMON_NAME OUT_PREFIX
writes OUT_PREFIX.key (0600) and OUT_PREFIX.crt (leaf followed by the store's CA certificate).
"""

import datetime
import os
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def main(store_dir, passphrase_file, common_name, out_prefix):
    with open(passphrase_file, "rb") as handle:
        passphrase = handle.read().strip()
    with open(os.path.join(store_dir, "ca.key"), "rb") as handle:
        ca_key = serialization.load_pem_private_key(handle.read(), passphrase)
    with open(os.path.join(store_dir, "ca.crt"), "rb") as handle:
        ca_pem = handle.read()
    ca_cert = x509.load_pem_x509_certificate(ca_pem)

    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=2))
        .not_valid_after(now - datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key_fd = os.open(out_prefix + ".key", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(key_fd, "wb") as handle:
        handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    with open(out_prefix + ".crt", "wb") as handle:
        handle.write(cert.public_bytes(serialization.Encoding.PEM) + ca_pem)


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    main(*sys.argv[1:])
