# -*- coding: utf-8 -*-
"""fleet.mtls.ca through ansible-playbook."""

from __future__ import annotations

import hashlib
import os
import subprocess

import pytest

ROOT_PASS = "Root-Secret-Passphrase-7"
ISSUING_PASS = "Issuing-Secret-Passphrase-9"


def digest(path):
    result = {}
    for directory, dummy, files in os.walk(str(path)):
        for name in files:
            full = os.path.join(directory, name)
            result[os.path.relpath(full, str(path))] = hashlib.sha256(open(full, "rb").read()).hexdigest()
    return result


def root_args(tmp_path, **extra):
    args = {"path": str(tmp_path / "ca" / "root"), "common_name": "Module Root", "subject": {"O": "Fleet"},
            "passphrase": ROOT_PASS}
    args.update(extra)
    return args


def test_root_then_intermediate_idempotent_with_diff(ansible_module, tmp_path):
    check = ansible_module("ca", root_args(tmp_path), check=True, diff=True)
    assert not check.get("failed"), check.get("msg")
    assert check["changed"] and check["diff"]["after"]["subject"] == "CN=Module Root,O=Fleet"
    assert not (tmp_path / "ca").exists()

    first = ansible_module("ca", root_args(tmp_path), diff=True)
    assert first["changed"] and first["kind"] == "root" and first["diff"]["before"] == {}
    assert first["certificate"].startswith("-----BEGIN CERTIFICATE-----")
    store = tmp_path / "ca" / "root"
    before = digest(store)
    second = ansible_module("ca", root_args(tmp_path), diff=True)
    assert second["changed"] is False and second["diff"]["before"] == second["diff"]["after"]
    assert digest(store) == before

    inter = {"path": str(tmp_path / "ca" / "issuing"), "kind": "intermediate", "common_name": "Module Issuing",
             "passphrase": ISSUING_PASS, "parent_path": str(store), "parent_passphrase": ROOT_PASS}
    made = ansible_module("ca", inter)
    assert made["changed"] and made["kind"] == "intermediate"
    assert made["chain"] == made["certificate"] + first["certificate"]
    again = ansible_module("ca", inter)
    assert again["changed"] is False and again["fingerprint_sha256"] == made["fingerprint_sha256"]
    for run in (check, first, second, made, again):
        assert ROOT_PASS not in run.output and ISSUING_PASS not in run.output
    proc = subprocess.run(["openssl", "verify", "-CAfile", str(store / "ca.crt"),
                           str(tmp_path / "ca" / "issuing" / "ca.crt")], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stderr


def test_adopt_openssl_root(ansible_module, tmp_path):
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-keyout", "ca.key", "-passout", "pass:old",
                    "-out", "ca.crt", "-days", "100", "-subj", "/CN=Legacy",
                    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
                   cwd=str(legacy), check=True, capture_output=True)
    args = {"path": str(tmp_path / "adopted"), "adopt_key": str(legacy / "ca.key"),
            "adopt_cert": str(legacy / "ca.crt"), "adopt_passphrase": "old", "passphrase": ROOT_PASS}
    result = ansible_module("ca", args)
    assert result["changed"] and result["key_type"] == "rsa2048" and result["subject"] == "CN=Legacy"
    assert ansible_module("ca", args)["changed"] is False


BAD = [
    ("empty passphrase", {"passphrase": ""}, "passphrase is required and must not be empty"),
    ("unknown key type", {"key_type": "dsa"}, "value of key_type must be one of"),
    ("drift", {"common_name": "Other Name"}, "already exists and differs"),
    ("wrong passphrase", {"passphrase": "wrong-one"}, "wrong passphrase for CA key"),
    ("intermediate without parent", {"kind": "intermediate", "path": "NEW"}, "missing: parent_path"),
    ("missing parent store", {"kind": "intermediate", "path": "NEW", "parent_path": "/nonexistent/store",
                              "parent_passphrase": "unused-parent-pass"}, "does not exist"),
    ("world-writable store mode", {"path": "NEW", "mode": "0777"}, "lets every user write"),
    ("adopt missing file", {"path": "NEW", "adopt_key": "/nonexistent.key", "adopt_cert": "/nonexistent.crt",
                            "common_name": None, "subject": None}, "adopt_key /nonexistent.key does not exist"),
]


@pytest.mark.parametrize("what, change, message", BAD, ids=[b[0] for b in BAD])
def test_bad_inputs(ansible_module, tmp_path, what, change, message):
    assert ansible_module("ca", root_args(tmp_path))["changed"]
    before = digest(tmp_path / "ca")
    args = root_args(tmp_path, **change)
    if args["path"] == "NEW":
        args["path"] = str(tmp_path / "ca" / "new")
    args = dict((k, v) for k, v in args.items() if v is not None)
    result = ansible_module("ca", args)
    assert result.get("failed"), result.result
    assert message in result["msg"]
    assert digest(tmp_path / "ca") == before
    assert ROOT_PASS not in result.output


def test_symlinked_store_path_fails_with_a_clear_message(ansible_module, tmp_path):
    assert ansible_module("ca", root_args(tmp_path))["changed"]
    link = tmp_path / "ca" / "link"
    link.symlink_to(tmp_path / "ca" / "root")
    before = digest(tmp_path / "ca")
    result = ansible_module("ca", root_args(tmp_path, path=str(link)))
    assert result.get("failed") and "is a symbolic link" in result["msg"] and "refusing to use it" in result["msg"]
    assert "Traceback" not in result.output and "Errno" not in result["msg"]
    assert digest(tmp_path / "ca") == before


def test_legacy_key_encryption_is_upgraded_by_the_next_run(ansible_module, tmp_path):
    from cryptography.hazmat.primitives import serialization
    assert ansible_module("ca", root_args(tmp_path))["key_encryption"] == "pbkdf2-sha256:600000"
    key_path = tmp_path / "ca" / "root" / "ca.key"
    key = serialization.load_pem_private_key(key_path.read_bytes(), ROOT_PASS.encode())
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.BestAvailableEncryption(ROOT_PASS.encode())))
    before = digest(tmp_path / "ca")
    check = ansible_module("ca", root_args(tmp_path), check=True, diff=True)
    assert check["changed"] and check["diff"]["before"]["key_encryption"] == "pbkdf2-sha256:2048"
    assert check["diff"]["after"]["key_encryption"] == "pbkdf2-sha256:600000"
    assert digest(tmp_path / "ca") == before
    upgraded = ansible_module("ca", root_args(tmp_path))
    assert upgraded["changed"] and upgraded["key_encryption"] == "pbkdf2-sha256:600000"
    after = digest(tmp_path / "ca")
    assert [name for name in before if after[name] != before[name]] == ["root/ca.key"]
    again = serialization.load_pem_private_key(key_path.read_bytes(), ROOT_PASS.encode())
    assert again.private_numbers() == key.private_numbers()
    assert ansible_module("ca", root_args(tmp_path))["changed"] is False


def test_adopt_the_tutorial_ca_by_re_certifying_its_key(ansible_module, tmp_path):
    """The classic tutorial's commands, then adoption, then its old leaf against the new CA cert."""
    d = tmp_path / "tutorial"
    d.mkdir()

    def sh(*args):
        subprocess.run(list(args), cwd=str(d), check=True, capture_output=True)

    sh("openssl", "genrsa", "-aes256", "-passout", "pass:tutorial", "-out", "ca.key", "2048")
    sh("openssl", "req", "-new", "-x509", "-days", "365", "-key", "ca.key", "-passin", "pass:tutorial",
       "-extensions", "v3_ca", "-subj", "/CN=Tutorial CA", "-out", "ca.crt")
    sh("openssl", "genrsa", "-out", "client.key", "2048")
    sh("openssl", "req", "-new", "-key", "client.key", "-subj", "/CN=client1", "-out", "client.csr")
    sh("openssl", "x509", "-req", "-days", "365", "-in", "client.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
       "-passin", "pass:tutorial", "-CAcreateserial", "-out", "client.crt")
    args = {"path": str(tmp_path / "ca" / "tutorial"), "adopt_key": str(d / "ca.key"), "adopt_cert": str(d / "ca.crt"),
            "adopt_passphrase": "tutorial", "passphrase": ROOT_PASS}
    refused = ansible_module("ca", args)
    assert refused.get("failed") and "Remedy: set adopt_recertify=true" in refused["msg"]
    assert not (tmp_path / "ca").exists()
    args["adopt_recertify"] = True
    adopted = ansible_module("ca", args)
    assert adopted["changed"] and adopted["kind"] == "root" and adopted["subject"] == "CN=Tutorial CA"
    assert adopted["recertified_from"] and adopted["key_encryption"] == "pbkdf2-sha256:600000"
    proc = subprocess.run(["openssl", "verify", "-x509_strict", "-CAfile", str(tmp_path / "ca" / "tutorial" / "ca.crt"),
                           str(d / "client.crt")], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    again = ansible_module("ca", args)
    assert again["changed"] is False and again["fingerprint_sha256"] == adopted["fingerprint_sha256"]
    for run in (refused, adopted, again):
        assert ROOT_PASS not in run.output
