# -*- coding: utf-8 -*-
from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ansible_collections.fleet.mtls.plugins.module_utils import keys
from ansible_collections.fleet.mtls.plugins.module_utils.errors import MtlsError


@pytest.mark.parametrize("key_type", ["ec_p256", "ec_p384", "rsa2048", "ed25519"])
def test_generate_serialize_load_round_trip(key_type):
    key = keys.generate_private_key(key_type)
    assert keys.key_type_of(key) == key_type
    assert keys.key_type_of(key.public_key()) == key_type
    plain = keys.serialize_private_key(key)
    assert plain.startswith(b"-----BEGIN PRIVATE KEY-----")
    encrypted = keys.serialize_private_key(key, "s3cret")
    assert encrypted.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    loaded = keys.load_private_key(encrypted, "s3cret")
    assert keys.same_public_key(loaded, key)
    assert keys.same_public_key(keys.load_private_key(plain), key.public_key())
    assert not keys.same_public_key(key, keys.generate_private_key(key_type))


def test_signing_hash():
    assert isinstance(keys.signing_hash(keys.generate_private_key("ec_p256")), hashes.SHA256)
    assert isinstance(keys.signing_hash(keys.generate_private_key("ec_p384")), hashes.SHA384)
    assert keys.signing_hash(keys.generate_private_key("ed25519")) is None


def test_default_key_type():
    assert keys.DEFAULT_KEY_TYPE == "ec_p256" == keys.KEY_TYPES[0]
    assert keys.key_type_of(keys.generate_private_key()) == "ec_p256"


@pytest.mark.parametrize("key_type", ["dsa2048", "rsa1024", "", None, "EC_P256"])
def test_unknown_key_type(key_type):
    with pytest.raises(MtlsError, match="unknown key type"):
        keys.generate_private_key(key_type)


def test_unsupported_keys_are_named():
    with pytest.raises(MtlsError, match="unsupported elliptic curve secp521r1"):
        keys.key_type_of(ec.generate_private_key(ec.SECP521R1()))
    with pytest.raises(MtlsError, match="unsupported RSA key size 1024"):
        keys.key_type_of(rsa.generate_private_key(65537, 1024))


def test_load_errors():
    key = keys.generate_private_key()
    encrypted = keys.serialize_private_key(key, "right")
    with pytest.raises(MtlsError, match="wrong passphrase for CA key"):
        keys.load_private_key(encrypted, "wrong", source="CA key")
    with pytest.raises(MtlsError, match="is encrypted: a passphrase is required"):
        keys.load_private_key(encrypted)
    with pytest.raises(MtlsError, match="is not encrypted but a passphrase was given"):
        keys.load_private_key(keys.serialize_private_key(key), "pw")
    with pytest.raises(MtlsError, match="is not a readable PEM private key"):
        keys.load_private_key(b"not a key")
    with pytest.raises(MtlsError, match="private key is missing"):
        keys.load_private_key(None)
    small = rsa.generate_private_key(65537, 1024).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    with pytest.raises(MtlsError, match="unsupported RSA key size"):
        keys.load_private_key(small)


def test_traditional_formats_load():
    key = keys.generate_private_key("rsa2048")
    pkcs1 = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                              serialization.NoEncryption())
    assert keys.key_type_of(keys.load_private_key(pkcs1)) == "rsa2048"


@pytest.mark.parametrize("mode, expected", [(None, 0o600), ("0600", 0o600), ("640", 0o640), (0o400, 0o400),
                                            ("0440", 0o440)])
def test_private_key_modes_allowed(mode, expected):
    assert keys.private_key_mode(mode) == expected


@pytest.mark.parametrize("mode", ["0644", "0666", "0660", "0700", "0620", "0604", "0200", "0", "04600", 0o777])
def test_private_key_modes_refused_with_the_one_message(mode):
    with pytest.raises(MtlsError, match=r"key_mode \d{4,} is refused for a private key file .*would let others read "
                                        r"private keys.*choose one of 0600, 0640, 0400, 0440"):
        keys.private_key_mode(mode, "key_mode")
