# -*- coding: utf-8 -*-
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private keys: the supported key types, generation, loading and serialization."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.fleet.mtls.plugins.module_utils.errors import MtlsError
from ansible_collections.fleet.mtls.plugins.module_utils.fsutil import parse_mode
from ansible_collections.fleet.mtls.plugins.module_utils.pkcs8 import encrypt_pkcs8_pem

try:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
    HAS_CRYPTOGRAPHY = True
except ImportError:
    HAS_CRYPTOGRAPHY = False

# Order matters only for documentation: the first one is the default.
KEY_TYPES = ("ec_p256", "ec_p384", "rsa2048", "rsa3072", "rsa4096", "ed25519")
DEFAULT_KEY_TYPE = "ec_p256"

# The only modes a private key file may have: owner read(-write), optionally group read (a service
# group reading the key after dropping privileges). Nobody else reads, nobody but the owner writes.
PRIVATE_KEY_MODES = (0o600, 0o640, 0o400, 0o440)
DEFAULT_PRIVATE_KEY_MODE = 0o600

_RSA_BITS = {"rsa2048": 2048, "rsa3072": 3072, "rsa4096": 4096}


def check_key_type(key_type):
    if key_type not in KEY_TYPES:
        raise MtlsError("unknown key type %r: choose one of %s" % (key_type, ", ".join(KEY_TYPES)))
    return key_type


def private_key_mode(mode, option="mode"):
    """The one rule for private key file modes, shared by every module that writes keys.

    ``mode`` as accepted by ``parse_mode`` (None: 0600); anything outside ``PRIVATE_KEY_MODES``
    is refused with an MtlsError naming ``option``.
    """
    value = parse_mode(mode, DEFAULT_PRIVATE_KEY_MODE)
    if value not in PRIVATE_KEY_MODES:
        raise MtlsError("%s %04o is refused for a private key file (it would let others read private keys, "
                        "or others than the owner write them): choose one of %s"
                        % (option, value, ", ".join("%04o" % allowed for allowed in PRIVATE_KEY_MODES)))
    return value


def generate_private_key(key_type=DEFAULT_KEY_TYPE):
    check_key_type(key_type)
    if key_type == "ec_p256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "ec_p384":
        return ec.generate_private_key(ec.SECP384R1())
    if key_type == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    return rsa.generate_private_key(public_exponent=65537, key_size=_RSA_BITS[key_type])


def key_type_of(key):
    """Key type name of a private or public key, or raise for a kind we do not issue for."""
    if hasattr(key, "private_bytes"):
        key = key.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        if isinstance(key.curve, ec.SECP256R1):
            return "ec_p256"
        if isinstance(key.curve, ec.SECP384R1):
            return "ec_p384"
        raise MtlsError("unsupported elliptic curve %s: use P-256 or P-384" % key.curve.name)
    if isinstance(key, rsa.RSAPublicKey):
        bits = key.key_size
        for name, size in _RSA_BITS.items():
            if size == bits:
                return name
        raise MtlsError("unsupported RSA key size %d: use 2048, 3072 or 4096 bits" % bits)
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "ed25519"
    raise MtlsError("unsupported key algorithm %s" % type(key).__name__)


def signing_hash(key):
    """Hash algorithm to sign with ``key`` (None for Ed25519, which hashes internally)."""
    key_type = key_type_of(key)
    if key_type == "ed25519":
        return None
    if key_type == "ec_p384":
        return hashes.SHA384()
    return hashes.SHA256()


def _passphrase_bytes(passphrase):
    if passphrase is None or passphrase == "":
        return None
    if isinstance(passphrase, bytes):
        return passphrase
    return passphrase.encode("utf-8")


def load_private_key(data, passphrase=None, source="private key"):
    """Load a PEM private key. ``source`` names it in errors (a path, 'CA key'...)."""
    if data is None:
        raise MtlsError("%s is missing" % source)
    password = _passphrase_bytes(passphrase)
    try:
        key = serialization.load_pem_private_key(data, password=password)
    except TypeError as exc:
        text = str(exc).lower()
        if "not encrypted" in text:
            raise MtlsError("%s is not encrypted but a passphrase was given" % source)
        raise MtlsError("%s is encrypted: a passphrase is required" % source)
    except ValueError as exc:
        if password is not None and _looks_encrypted(data):
            raise MtlsError("wrong passphrase for %s (or the key file is corrupt)" % source)
        raise MtlsError("%s is not a readable PEM private key: %s" % (source, _first_line(exc)))
    except Exception as exc:  # cryptography raises backend-specific errors for bad passwords
        if password is not None:
            raise MtlsError("wrong passphrase for %s (or the key file is corrupt)" % source)
        raise MtlsError("%s is not a readable PEM private key: %s" % (source, _first_line(exc)))
    key_type_of(key)
    return key


def _looks_encrypted(data):
    return b"ENCRYPTED" in data


def _first_line(exc):
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def serialize_private_key(key, passphrase=None):
    """PKCS#8 PEM; with a passphrase encrypted as ``pkcs8.encrypt_pkcs8_pem`` does (PBES2,
    PBKDF2-HMAC-SHA256 at 600,000 iterations, AES-256-CBC)."""
    password = _passphrase_bytes(passphrase)
    if password is not None:
        return encrypt_pkcs8_pem(key, password)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def public_key_der(key):
    if hasattr(key, "private_bytes"):
        key = key.public_key()
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def same_public_key(a, b):
    """True when two keys (private or public, or certificates/CSRs' public keys) match."""
    return public_key_der(a) == public_key_der(b)
