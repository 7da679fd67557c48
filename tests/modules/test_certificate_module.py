# -*- coding: utf-8 -*-
"""fleet.mtls.certificate through ansible-playbook."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ROOT_PASS = "Root-Secret-Passphrase-7"
ISSUING_PASS = "Issuing-Secret-Passphrase-9"


def digest(path):
    result = {}
    for directory, dummy, files in os.walk(str(path)):
        for name in files:
            full = os.path.join(directory, name)
            result[os.path.relpath(full, str(path))] = hashlib.sha256(open(full, "rb").read()).hexdigest()
    return result


def csr(common_name, sans=None):
    key = ec.generate_private_key(ec.SECP256R1())
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture
def pki(ansible_module, tmp_path):
    root = str(tmp_path / "ca" / "root")
    issuing = str(tmp_path / "ca" / "issuing")
    assert ansible_module("ca", {"path": root, "common_name": "Root", "passphrase": ROOT_PASS})["changed"]
    made = ansible_module("ca", {"path": issuing, "kind": "intermediate", "common_name": "Issuing",
                                 "passphrase": ISSUING_PASS, "parent_path": root, "parent_passphrase": ROOT_PASS})
    assert made["changed"], made.get("msg")
    return root, issuing


def index_entries(issuing):
    return json.load(open(os.path.join(issuing, "index.json")))["entries"]


def test_single_request_signs_and_records(ansible_module, pki, tmp_path):
    root, issuing = pki
    args = {"ca_path": issuing, "ca_passphrase": ISSUING_PASS, "identity": "web", "host": "web1",
            "csr": csr("web1.example.com"), "sans": ["DNS:web1.example.com", "IP:192.0.2.10"]}
    result = ansible_module("certificate", args, diff=True)
    assert result["changed"] and result["issued"] == 1, result.get("msg")
    issued = result["certificates"][0]
    assert issued["identity"] == "web" and issued["host"] == "web1"
    assert issued["sans"] == ["DNS:web1.example.com", "IP:192.0.2.10"]
    assert result["diff"]["after"]["issued"] == ["web1/web"]
    leaf = tmp_path / "leaf.pem"
    leaf.write_text(issued["certificate"])
    proc = subprocess.run(["openssl", "verify", "-CAfile", os.path.join(root, "ca.crt"), "-untrusted",
                           os.path.join(issuing, "ca.crt"), str(leaf)], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [e["serial"] for e in index_entries(issuing)] == [issued["serial"]]
    assert ISSUING_PASS not in result.output
    # Signing is a change by nature: the same request again signs a new certificate.
    again = ansible_module("certificate", args)
    assert again["changed"] and again["certificates"][0]["serial"] != issued["serial"]
    assert len(index_entries(issuing)) == 2


def test_batch_check_mode_writes_nothing(ansible_module, pki):
    dummy, issuing = pki
    before = digest(issuing)
    requests = [{"identity": "web", "host": "h%d" % n, "csr": csr("h%d.example.com" % n)} for n in range(5)]
    result = ansible_module("certificate", {"ca_path": issuing, "ca_passphrase": ISSUING_PASS,
                                            "requests": requests}, check=True, diff=True)
    assert result["changed"] and result["issued"] == 5, result.get("msg")
    assert [c["host"] for c in result["certificates"]] == ["h%d" % n for n in range(5)]
    assert all(c["certificate"] is None for c in result["certificates"])
    assert digest(issuing) == before
    signed = ansible_module("certificate", {"ca_path": issuing, "ca_passphrase": ISSUING_PASS, "requests": requests})
    assert signed["issued"] == 5 and len(index_entries(issuing)) == 5


def test_empty_batch_is_no_change(ansible_module, pki):
    dummy, issuing = pki
    result = ansible_module("certificate", {"ca_path": issuing, "ca_passphrase": ISSUING_PASS, "requests": []})
    assert result["changed"] is False and result["certificates"] == []


def test_central_key_generation(ansible_module, pki, tmp_path):
    dummy, issuing = pki
    key_dir = tmp_path / "central"
    result = ansible_module("certificate", {
        "ca_path": issuing, "ca_passphrase": ISSUING_PASS, "generate_keys": True, "key_dir": str(key_dir),
        "requests": [{"identity": "sensor%d" % n, "host": "dev", "profile": "client"} for n in range(3)]})
    assert result["issued"] == 3, result.get("msg")
    for issued in result["certificates"]:
        assert issued["key_path"] == str(key_dir / "dev" / (issued["identity"] + ".key"))
        assert stat.S_IMODE(os.stat(issued["key_path"]).st_mode) == 0o600
    assert "PRIVATE KEY" not in result.output


BAD = [
    ("malformed CSR", {"csr": "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"},
     "CSR is malformed"),
    ("unknown profile", {"profile": "admin"}, "value of profile must be one of"),
    ("invalid SAN", {"sans": ["DNS:-bad-.example.com"]}, "invalid DNS name"),
    ("IP in DNS SAN", {"sans": ["DNS:10.1.1.1"]}, "is an IP address, not a DNS name"),
    ("wrong CA passphrase", {"ca_passphrase": "not-the-issuing-pass"}, "wrong passphrase for CA key"),
    ("missing CA store", {"ca_path": "/nonexistent/store"}, "does not exist"),
    ("validity past issuer", {"validity_days": 4000}, "after the issuing CA expires"),
    ("zero validity", {"validity_days": 0}, "validity_days must be a positive"),
    ("neither request nor identity", {"identity": None, "csr": None}, "give either requests"),
    ("requests and identity", {"requests": [{"identity": "x"}]}, "mutually exclusive"),
    ("duplicate identities", {"identity": None, "host": None, "csr": None, "requests": "DUP"}, "duplicates request 1"),
]


@pytest.mark.parametrize("what, change, message", BAD, ids=[b[0] for b in BAD])
def test_bad_inputs_leave_store_unchanged(ansible_module, pki, what, change, message):
    dummy, issuing = pki
    before = digest(os.path.dirname(issuing))
    args = {"ca_path": issuing, "ca_passphrase": ISSUING_PASS, "identity": "web", "host": "web1",
            "csr": csr("web1.example.com")}
    args.update(change)
    if args.get("requests") == "DUP":
        one = csr("a.example.com")
        args["requests"] = [{"identity": "a", "host": "h", "csr": one}, {"identity": "a", "host": "h", "csr": one}]
    args = dict((k, v) for k, v in args.items() if v is not None)
    result = ansible_module("certificate", args)
    assert result.get("failed"), result.result
    assert message in result["msg"]
    assert digest(os.path.dirname(issuing)) == before
    assert ISSUING_PASS not in result.output
