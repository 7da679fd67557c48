# -*- coding: utf-8 -*-
"""Shared helpers of the CA store / index / issuance tests: a real two-tier CA, CSRs, store hashes."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from ansible_collections.fleet.mtls.plugins.module_utils import ca_store
from ansible_collections.fleet.mtls.plugins.module_utils.keys import generate_private_key

ROOT_PASS = "root-passphrase-1"
ISSUING_PASS = "issuing-passphrase-1"


def make_pki(base):
    """Root + issuing intermediate stores under ``base``; returns (root_path, issuing_path)."""
    root = os.path.join(str(base), "root")
    issuing = os.path.join(str(base), "issuing")
    ca_store.create_root(root, ROOT_PASS, common_name="Test Root CA", subject={"O": "Fleet Test"})
    ca_store.create_intermediate(issuing, ISSUING_PASS, root, ROOT_PASS, common_name="Test Issuing CA")
    return root, issuing


def make_csr(common_name="web1.example.com", sans=None, key_type="ec_p256", key=None):
    key = key or generate_private_key(key_type)
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]),
                                        critical=False)
    algorithm = None if key_type == "ed25519" else hashes.SHA256()
    return builder.sign(key, algorithm).public_bytes(serialization.Encoding.PEM).decode("ascii")


def make_hostile_csr(common_name, general_names, key_type="ec_p256"):
    """A validly signed CSR asking for arbitrary names, built without cryptography's input checks
    (what an attacker's own tooling would send): ``general_names`` are ("DNS"|"URI"|"email", value)."""
    key = generate_private_key(key_type)
    kinds = {"DNS": x509.DNSName, "URI": x509.UniformResourceIdentifier, "email": x509.RFC822Name}
    names = [kinds[kind]._init_without_validation(value) for kind, value in general_names]
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode("ascii")


def tree_digest(path):
    """{relative path: sha256} of every file under ``path`` (plus directory names): 'byte-identical'."""
    digest = {}
    for directory, dirnames, filenames in os.walk(str(path)):
        for name in dirnames:
            digest[os.path.relpath(os.path.join(directory, name), str(path)) + "/"] = "dir"
        for name in filenames:
            full = os.path.join(directory, name)
            with open(full, "rb") as handle:
                digest[os.path.relpath(full, str(path))] = hashlib.sha256(handle.read()).hexdigest()
    return digest


def openssl_verify(root_crt, intermediate_crt, leaf_pem, tmp_path, purpose=None):
    leaf = os.path.join(str(tmp_path), "leaf-under-test.pem")
    with open(leaf, "w") as handle:
        handle.write(leaf_pem)
    command = ["openssl", "verify", "-CAfile", root_crt, "-untrusted", intermediate_crt]
    if purpose:
        command += ["-purpose", purpose]
    return subprocess.run(command + [leaf], capture_output=True, text=True, check=False)


def pkilint(pem, tmp_path, name="cert.pem"):
    """Findings of pkilint's RFC 5280 linter at WARNING or worse ('' when clean)."""
    tool = shutil.which("lint_pkix_cert") or os.path.join(os.path.dirname(os.sys.executable), "lint_pkix_cert")
    path = os.path.join(str(tmp_path), name)
    with open(path, "w") as handle:
        handle.write(pem)
    proc = subprocess.run([tool, "lint", "-s", "WARNING", path], capture_output=True, text=True, check=False)
    return (proc.stdout + proc.stderr).strip()
