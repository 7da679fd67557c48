# -*- coding: utf-8 -*-
"""fleet.mtls.install_identity through ansible: verify first, then install leaf, chain, trust bundle,
CRLs and the promoted key in one step; refuse anything wrong without touching the live files."""

from __future__ import annotations

import os
import subprocess

import pytest
from cryptography.hazmat.primitives import serialization

from host_pki import DAY, HostPki, file_mode, now, snapshot, write_new_key

CN = "web1.example.net"
SANS = ["DNS:web1.example.net"]


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return HostPki(str(tmp_path_factory.mktemp("pki")))


@pytest.fixture
def etc(tmp_path):
    return str(tmp_path / "etc-mtls")


def p(etc, name="web"):
    return {"key": os.path.join(etc, "private", name + ".key"),
            "staged": os.path.join(etc, "private", name + ".key.new"),
            "crt": os.path.join(etc, "certs", name + ".crt"),
            "chain": os.path.join(etc, "certs", name + ".chain.pem"),
            "bundle": os.path.join(etc, "trust-bundle.pem"),
            "crl": os.path.join(etc, "crl.pem")}


def read(path):
    with open(path, "rb") as handle:
        return handle.read()


def install_args(etc, cert_pem=None, chain_pem=None, **extra):
    values = {"name": "web", "dir": etc}
    if cert_pem is not None:
        values["certificate"] = cert_pem
    if chain_pem is not None:
        values["chain"] = chain_pem
    values.update(extra)
    return values


def assert_no_key_material(run, *paths):
    for path in paths:
        lines = read(path).decode().splitlines() if os.path.exists(path) else []
        if len(lines) > 2:
            assert lines[1] not in run.output  # a line of base64 key material
    assert "PRIVATE KEY" not in run.output


def test_first_install_verifies_with_openssl_and_is_idempotent(ansible_module, etc, pki):
    key_path = p(etc)["key"]
    cert, chain = pki.sign_key(write_new_key(key_path), CN, SANS)
    args = install_args(etc, cert, chain, trust_bundle_content=pki.trust_bundle.decode(),
                        crl_content=pki.crl.decode())
    run = ansible_module("install_identity", args)
    assert not run.get("failed"), run.get("msg")
    assert run["changed"] is True and run["key_promoted"] is False
    assert run["changes"] == {"certificate": True, "key": False, "trust_bundle": True, "crl": True}
    paths = p(etc)
    assert read(paths["crt"]).decode() == cert and read(paths["chain"]).decode() == chain
    for name in ("crt", "chain", "bundle", "crl"):
        assert file_mode(paths[name]) == 0o644
    assert file_mode(key_path) == 0o600
    proc = subprocess.run(["openssl", "verify", "-crl_check_all", "-CAfile", paths["bundle"], "-CRLfile", paths["crl"],
                           "-untrusted", paths["chain"], paths["crt"]], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert_no_key_material(run, key_path)

    before = snapshot(etc)
    again = ansible_module("install_identity", args)
    assert again["changed"] is False
    assert again["changes"] == {"certificate": False, "key": False, "trust_bundle": False, "crl": False}
    assert again["serial"] == run["serial"]
    assert snapshot(etc) == before


def test_renewal_promotes_the_staged_key_with_its_certificate(ansible_module, etc, pki):
    paths = p(etc)
    pki.provision(etc, "web", CN, SANS)
    staged_key = write_new_key(paths["staged"])
    staged_pem = read(paths["staged"])
    cert, chain = pki.sign_key(staged_key, CN, SANS)
    args = install_args(etc, cert, chain, trust_bundle=pki.trust_bundle_path)

    before = snapshot(etc)
    planned = ansible_module("install_identity", args, check=True, diff=True)
    assert planned["changed"] is True and planned["changes"]["key"] is True and planned["key_promoted"] is True
    assert "promoted" in planned["diff"]["after"]
    assert snapshot(etc) == before

    run = ansible_module("install_identity", args)
    assert not run.get("failed"), run.get("msg")
    assert run["key_promoted"] is True
    assert run["changes"] == {"certificate": True, "key": True, "trust_bundle": False, "crl": False}
    assert read(paths["key"]) == staged_pem and not os.path.exists(paths["staged"])
    assert file_mode(paths["key"]) == 0o600
    assert_no_key_material(run, paths["key"])

    assert ansible_module("install_identity", args)["changed"] is False
    # The renewal cycle closes: csr now finds a valid identity.
    checked = ansible_module("csr", {"name": "web", "dir": etc, "common_name": CN, "sans": SANS,
                                     "trust_bundle": pki.trust_bundle_path})
    assert (checked["needs_issue"], checked["reason"], checked["changed"]) == (False, "valid", False)


def test_trust_bundle_and_crl_alone_report_what_changed(ansible_module, etc, pki, tmp_path):
    args = install_args(etc, trust_bundle_content=pki.trust_bundle.decode(), crl_content=pki.crl.decode())
    del args["name"]
    first = ansible_module("install_identity", args)
    assert first["changes"] == {"certificate": False, "key": False, "trust_bundle": True, "crl": True}
    assert first["serial"] is None
    other = write_new_key(str(tmp_path / "other.key"))
    revoked_cert, dummy = pki.sign_key(other, "gone.example.net", ["DNS:gone.example.net"])
    args["crl_content"] = pki.revoke_with_openssl(revoked_cert, str(tmp_path)).decode()
    second = ansible_module("install_identity", args)
    assert second["changes"] == {"certificate": False, "key": False, "trust_bundle": False, "crl": True}
    assert read(p(etc)["crl"]).decode() == args["crl_content"]


def _provisioned(etc, pki):
    pki.provision(etc, "web", CN, SANS)
    with open(p(etc)["bundle"], "wb") as handle:
        handle.write(pki.trust_bundle)


def _for_live_key(etc, pki, **options):
    key = serialization.load_pem_private_key(read(p(etc)["key"]), None)
    return pki.sign_key(key, CN, SANS, **options)


def _mismatch(etc, pki, tmp_path):
    cert, chain = pki.sign_key(write_new_key(str(tmp_path / "elsewhere.key")), CN, SANS)
    return {"certificate": cert, "chain": chain}


def _garbage_certificate(etc, pki, tmp_path):
    return {"certificate": "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n"}


def _rogue(etc, pki, tmp_path):
    cert, chain = _for_live_key(etc, pki, issuer=pki.rogue)
    return {"certificate": cert, "chain": chain}


def _expired(etc, pki, tmp_path):
    cert, chain = _for_live_key(etc, pki, not_before=now() - 100 * DAY, not_after=now() - DAY)
    return {"certificate": cert, "chain": chain}


def _not_yet_valid(etc, pki, tmp_path):
    cert, chain = _for_live_key(etc, pki, not_before=now() + DAY, not_after=now() + 90 * DAY)
    return {"certificate": cert, "chain": chain}


def _revoked(etc, pki, tmp_path):
    cert, chain = _for_live_key(etc, pki)
    return {"certificate": cert, "chain": chain, "crl_content": pki.revoke_with_openssl(cert, str(tmp_path)).decode()}


def _foreign_crl(etc, pki, tmp_path):
    cert, chain = _for_live_key(etc, pki)
    return {"certificate": cert, "chain": chain, "crl_content": read(
        os.path.join(pki.rogue.directory, "crl.pem")).decode()}


def _no_bundle(etc, pki, tmp_path):
    os.unlink(p(etc)["bundle"])
    cert, chain = _for_live_key(etc, pki)
    return {"certificate": cert, "chain": chain}


def _nothing(etc, pki, tmp_path):
    return {}


def _garbage_live_key(etc, pki, tmp_path):
    cert, chain = _for_live_key(etc, pki)
    with open(p(etc)["key"], "w") as handle:
        handle.write("no key here\n")
    return {"certificate": cert, "chain": chain}


def _leaf_not_first(etc, pki, tmp_path):
    cert, chain = _for_live_key(etc, pki)
    return {"certificate": cert, "chain": pki.issuing.cert.public_bytes(serialization.Encoding.PEM).decode() + cert}


def _garbage_crl(etc, pki, tmp_path):
    cert, chain = _for_live_key(etc, pki)
    return {"certificate": cert, "chain": chain, "crl_content": "not a CRL\n"}


@pytest.mark.parametrize("make, message", [
    (_mismatch, "does not belong to the live key"),
    (_garbage_certificate, "certificate: certificate #1 is damaged"),
    (_rogue, "does not verify against the trust bundle: unknown issuer"),
    (_expired, "does not verify against the trust bundle: expired"),
    (_not_yet_valid, "does not verify against the trust bundle: not yet valid"),
    (_revoked, "is revoked by the CRLs being installed"),
    (_foreign_crl, "is not signed by a CA of the trust bundle"),
    (_no_bundle, "trust bundle {bundle} does not exist"),
    (_nothing, "nothing to install"),
    (_garbage_live_key, "private key {key} is not a readable PEM private key"),
    (_leaf_not_first, "it must start with the leaf"),
    (_garbage_crl, "crl_content holds no CRL"),
], ids=lambda value: value.__name__.strip("_") if callable(value) else "")
def test_bad_input_is_refused_and_live_files_stay_byte_identical(ansible_module, etc, pki, tmp_path, make, message):
    _provisioned(etc, pki)
    extra = make(etc, pki, tmp_path)
    before = snapshot(etc)
    run = ansible_module("install_identity", install_args(etc, **extra))
    assert run.get("failed") is True
    assert message.format(**p(etc)) in run["msg"]
    assert snapshot(etc) == before
    assert_no_key_material(run, p(etc)["key"])
