# -*- coding: utf-8 -*-
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Encrypted PKCS#8 for CA keys at rest: PBES2, PBKDF2-HMAC-SHA256 at a chosen work factor, AES-256-CBC.

Why not ``serialization.BestAvailableEncryption``: it writes exactly this scheme, but at a fixed
2,048 PBKDF2 iterations (cryptography 38 up to at least 50), and
``PrivateFormat.PKCS8.encryption_builder()`` raises "only supported with PrivateFormat.OpenSSH and
PrivateFormat.PKCS12" on every version we run, so the iteration count cannot be chosen through the
serialization API. The key derivation and the cipher are cryptography's (``PBKDF2HMAC``, AES-CBC);
this module only writes the fixed RFC 8018 DER envelope around them (a handful of OIDs), which is why no
ASN.1 library is pulled onto hosts for it. Reading stays with cryptography's
``load_pem_private_key``, which opens this envelope at any iteration count, and also the older
2,048-iteration keys.

API: ``encrypt_pkcs8_pem(key, password, iterations=PBKDF2_ITERATIONS)`` -> PEM bytes;
``pbkdf2_iterations(pem)`` -> the iteration count of a PBES2/PBKDF2 PEM, or None when the PEM is not
in that form (another scheme, unencrypted, unreadable); ``weak_encryption(pem)`` -> True when a key
should be re-encrypted (not PBES2/PBKDF2, or fewer iterations than ``PBKDF2_ITERATIONS``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import os

try:
    from cryptography.hazmat.primitives import hashes, padding, serialization
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
    HAS_CRYPTOGRAPHY = True
except ImportError:
    HAS_CRYPTOGRAPHY = False

# OWASP Password Storage Cheat Sheet: PBKDF2-HMAC-SHA256 with 600,000 iterations.
PBKDF2_ITERATIONS = 600000
# What BestAvailableEncryption wrote (stores made before this version).
LEGACY_PBKDF2_ITERATIONS = 2048
SALT_BYTES = 16

_OID_PBES2 = "1.2.840.113549.1.5.13"
_OID_PBKDF2 = "1.2.840.113549.1.5.12"
_OID_HMAC_SHA256 = "1.2.840.113549.2.9"
_OID_AES256_CBC = "2.16.840.1.101.3.4.1.42"
_PEM_LABEL = b"ENCRYPTED PRIVATE KEY"


# -- DER, only what the envelope needs ---------------------------------------------------------

def _tlv(tag, content):
    length = len(content)
    if length < 0x80:
        head = bytes([length])
    else:
        octets = length.to_bytes((length.bit_length() + 7) // 8, "big")
        head = bytes([0x80 | len(octets)]) + octets
    return bytes([tag]) + head + content


def _seq(*items):
    return _tlv(0x30, b"".join(items))


def _int(value):
    return _tlv(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def _octets(data):
    return _tlv(0x04, data)


def _oid(dotted):
    arcs = [int(arc) for arc in dotted.split(".")]
    body = bytearray([40 * arcs[0] + arcs[1]])
    for arc in arcs[2:]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body.extend(reversed(chunk))
    return _tlv(0x06, bytes(body))


def _read_tlv(data, offset):
    """(tag, content, next offset) of the element at ``offset``; ValueError when truncated."""
    if offset + 2 > len(data):
        raise ValueError("truncated DER")
    tag, length = data[offset], data[offset + 1]
    offset += 2
    if length & 0x80:
        count = length & 0x7F
        if not 0 < count <= 4 or offset + count > len(data):
            raise ValueError("bad DER length")
        length = int.from_bytes(data[offset:offset + count], "big")
        offset += count
    if offset + length > len(data):
        raise ValueError("truncated DER")
    return tag, data[offset:offset + length], offset + length


def _children(content):
    items, offset = [], 0
    while offset < len(content):
        tag, body, offset = _read_tlv(content, offset)
        items.append((tag, body))
    return items


# -- PEM -----------------------------------------------------------------------------------------

def _pem(der):
    text = base64.b64encode(der)
    lines = [text[i:i + 64] for i in range(0, len(text), 64)]
    return b"-----BEGIN %s-----\n%s\n-----END %s-----\n" % (_PEM_LABEL, b"\n".join(lines), _PEM_LABEL)


def _der_of_pem(pem):
    begin, end = b"-----BEGIN %s-----" % _PEM_LABEL, b"-----END %s-----" % _PEM_LABEL
    start = pem.find(begin)
    stop = pem.find(end, start + 1)
    if start < 0 or stop < 0:
        return None
    try:
        return base64.b64decode(b"".join(pem[start + len(begin):stop].split()), validate=True)
    except ValueError:
        return None


# -- encryption ----------------------------------------------------------------------------------

def encrypt_pkcs8_pem(key, password, iterations=PBKDF2_ITERATIONS):
    """PEM EncryptedPrivateKeyInfo of ``key`` under ``password`` (bytes), PBES2 as described above."""
    if not password:
        raise ValueError("a password is required")
    plain = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption())
    salt, iv = os.urandom(SALT_BYTES), os.urandom(16)
    secret = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=salt, iterations=iterations).derive(password)
    padder = padding.PKCS7(128).padder()
    encryptor = Cipher(algorithms.AES(secret), modes.CBC(iv)).encryptor()
    encrypted = encryptor.update(padder.update(plain) + padder.finalize()) + encryptor.finalize()
    kdf = _seq(_oid(_OID_PBKDF2),
               _seq(_octets(salt), _int(iterations), _seq(_oid(_OID_HMAC_SHA256), b"\x05\x00")))
    scheme = _seq(_oid(_OID_AES256_CBC), _octets(iv))
    return _pem(_seq(_seq(_oid(_OID_PBES2), _seq(kdf, scheme)), _octets(encrypted)))


def pbkdf2_iterations(pem):
    """Iteration count of a PBES2 PBKDF2-HMAC-SHA256 encrypted PKCS#8 PEM, or None when it is not one."""
    der = _der_of_pem(pem or b"")
    if der is None:
        return None
    try:
        tag, info, dummy = _read_tlv(der, 0)
        algorithm = _children(_children(info)[0][1])
        if algorithm[0][1] != _oid(_OID_PBES2)[2:]:
            return None
        kdf = _children(_children(algorithm[1][1])[0][1])
        if kdf[0][1] != _oid(_OID_PBKDF2)[2:]:
            return None
        params = _children(kdf[1][1])
        prf = _children(params[-1][1]) if params[-1][0] == 0x30 else []
        if params[1][0] != 0x02 or not prf or prf[0][1] != _oid(_OID_HMAC_SHA256)[2:]:
            return None
        return int.from_bytes(params[1][1], "big")
    except (ValueError, IndexError):
        return None


def weak_encryption(pem):
    """True when an encrypted key at rest is below today's work factor (or in another scheme)."""
    iterations = pbkdf2_iterations(pem)
    return iterations is None or iterations < PBKDF2_ITERATIONS
