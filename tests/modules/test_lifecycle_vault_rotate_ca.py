# -*- coding: utf-8 -*-
"""fleet.mtls.rotate_ca with ``mtls_ca_backend: vault``, against a real OpenBao server.

The fleet of test_identity_vault.py (simulated hosts on localhost, signing token of exactly the docs'
signing policy) is set up with fleet.mtls.site; the rotation runs with a token of exactly the docs'
rotation policy (mtls_vault_rotation_token), all hosts in one batch (batching: the lifecycle
scenario). Proven, phase by phase (scope issuing): after trust every host's trust bundle holds
issuing-2 and the leaves still come from issuing-1, and running trust again changes nothing; retire
is refused naming the hosts while their leaves chain to issuing-1 (the engine step of reissue done,
the hosts not yet); after reissue every leaf is signed by issuing-2 and verifies (openssl verify
-crl_check_all) against the host's bundles; after retire the bundles lack issuing-1. Then a root
rotation with the rotation credentials as an AppRole login (mtls_vault_rotation_role_id/_secret_id)
in check mode: planned, nothing changes in the engine or on the hosts. No token or secret ID is ever
printed. A rotation through every phase in one run (phase all, scope root) on real containers, with
their services reloaded and probed, is the molecule scenario vault's (extensions/molecule/vault).
"""

from __future__ import annotations

import re
import subprocess

import pytest
from cryptography import x509

from conftest import import_library
from test_identity_vault import _inventory, _run, engine  # noqa: F401  pylint: disable=unused-import
from vault_helpers import enable_approle, rotation_policy_hcl

HOSTS = ("app1.fleet.test", "app2.fleet.test")
MOUNT = "pki-rotate-ca"  # this file's mount on the session's shared server (the engine fixture's)
ROTATION_POLICY = MOUNT + "-rotation"
LEAVES = (("app1.fleet.test", "app1"), ("app1.fleet.test", "api"), ("app2.fleet.test", "app2"))


@pytest.fixture(scope="module")
def rotation_token(engine):  # noqa: F811
    cluster, _tokens = engine
    client = cluster.client()
    client.sys.create_or_update_policy(ROTATION_POLICY, rotation_policy_hcl(MOUNT))
    return client.auth.token.create(policies=[ROTATION_POLICY], no_default_policy=True, ttl="1h")["auth"][
        "client_token"]


def _rotation_approle(cluster):
    """role_id and secret_id of an AppRole whose tokens carry exactly the docs' rotation policy."""
    client = cluster.client()
    enable_approle(client)
    client.auth.approle.create_or_update_approle(ROTATION_POLICY, token_policies=[ROTATION_POLICY], token_ttl="10m")
    return (client.auth.approle.read_role_id(ROTATION_POLICY)["data"]["role_id"],
            client.auth.approle.generate_secret_id(ROTATION_POLICY)["data"]["secret_id"])


def _host_files(base):
    """Every file under the simulated hosts' directories with its content."""
    return dict((str(path), path.read_bytes()) for path in sorted((base / "hosts").rglob("*")) if path.is_file())


def _subjects(path):
    with open(path, "rb") as handle:
        return set(cert.subject.rfc4514_string() for cert in x509.load_pem_x509_certificates(handle.read()))


def _leaf_issuers(base):
    result = {}
    for host, name in LEAVES:
        with open(base / "hosts" / host / "certs" / ("%s.crt" % name), "rb") as handle:
            result[(host, name)] = x509.load_pem_x509_certificate(handle.read()).issuer.rfc4514_string()
    return result


def _verify_all(base):
    for host, name in LEAVES:
        home = base / "hosts" / host
        verify = subprocess.run(
            ["openssl", "verify", "-CAfile", str(home / "trust-bundle.pem"), "-crl_check_all",
             "-CRLfile", str(home / "crl.pem"), str(home / "certs" / ("%s.chain.pem" % name))],
            capture_output=True, text=True, check=False)
        assert verify.returncode == 0, (host, name, verify.stdout + verify.stderr)


def test_rotate_ca_on_the_engine_phase_by_phase_then_plan_a_root_rotation(engine, rotation_token, tmp_path):  # noqa: F811
    cluster, tokens = engine
    token = tokens["fleet-signing"]
    inventory = _inventory(tmp_path, cluster, token, HOSTS, mount=MOUNT, mtls_rotate_batch="100%",
                           mtls_vault_rotation_token=rotation_token)
    rc, _recap, output = _run(tmp_path, inventory, "fleet.mtls.site", "-e", "mtls_site_verify=false")
    assert rc == 0, output[-6000:]
    old, new = "CN=fleet.mtls issuing CA", "CN=fleet.mtls issuing CA G2"
    assert set(_leaf_issuers(tmp_path).values()) == {old}

    rc, _recap, output = _run(tmp_path, inventory, "fleet.mtls.rotate_ca", "-e", "mtls_rotate_ca_phase=trust")
    assert rc == 0, output[-6000:]
    assert "issuing rotation from generation 1 to 2, phase trust" in output
    for host in HOSTS:
        assert new in _subjects(tmp_path / "hosts" / host / "trust-bundle.pem"), host
        assert old in _subjects(tmp_path / "hosts" / host / "trust-bundle.pem"), host
    assert set(_leaf_issuers(tmp_path).values()) == {old}
    _verify_all(tmp_path)
    # Phase trust again: resumed from the engine's state, nothing changes anywhere.
    rc, recap, output = _run(tmp_path, inventory, "fleet.mtls.rotate_ca", "-e", "mtls_rotate_ca_phase=trust")
    assert rc == 0, output[-6000:]
    assert recap == dict((host, 0) for host in ("localhost",) + HOSTS), recap

    # The engine step of reissue done, the hosts not yet (an interrupted reissue): retire is refused.
    vault_pki = import_library("vault_pki")
    vault_rotation = import_library("vault_rotation")
    pki = vault_pki.VaultPKI(cluster.url, token=rotation_token, ca_file=cluster.ca_file, mount=MOUNT)
    vault_rotation.Rotator(pki).reissue()
    rc, _recap, output = _run(tmp_path, inventory, "fleet.mtls.rotate_ca", "-e", "mtls_rotate_ca_phase=retire")
    assert rc != 0
    assert re.search(r"cannot retire generation 1: 3 installed leaf certificate\(s\) still chain to it on "
                     r"app1.fleet.test, app2.fleet.test", output), output[-4000:]
    assert old in _subjects(tmp_path / "hosts" / "app1.fleet.test" / "trust-bundle.pem")

    rc, _recap, output = _run(tmp_path, inventory, "fleet.mtls.rotate_ca", "-e", "mtls_rotate_ca_phase=reissue")
    assert rc == 0, output[-6000:]
    assert set(_leaf_issuers(tmp_path).values()) == {new}
    for host in HOSTS:
        assert old in _subjects(tmp_path / "hosts" / host / "trust-bundle.pem"), host
    _verify_all(tmp_path)

    rc, _recap, output = _run(tmp_path, inventory, "fleet.mtls.rotate_ca", "-e", "mtls_rotate_ca_phase=retire")
    assert rc == 0, output[-6000:]
    for host in HOSTS:
        assert _subjects(tmp_path / "hosts" / host / "trust-bundle.pem") == {"CN=fleet.mtls root CA", new}, host
    _verify_all(tmp_path)
    assert "no CA rotation under way: issuing-2 signs (generation 2)" in output

    # A root rotation (generation 3) planned with the rotation credentials as an AppRole login
    # (mtls_vault_rotation_role_id / _secret_id; no rotation token, and no signing token to fall back
    # on), in check mode: it plans the rotation and changes nothing, neither in the engine nor on the hosts.
    role_id, secret_id = _rotation_approle(cluster)
    inventory = _inventory(tmp_path, cluster, None, HOSTS, mount=MOUNT, mtls_rotate_batch="100%",
                           mtls_vault_rotation_role_id=role_id, mtls_vault_rotation_secret_id=secret_id)
    issuers_before, files_before = pki.list("%s/issuers" % MOUNT), _host_files(tmp_path)
    rc, _recap, output = _run(tmp_path, inventory, "fleet.mtls.rotate_ca", "-e", "mtls_rotate_ca_scope=root",
                              "--check")
    assert rc == 0, output[-6000:]
    assert "root rotation from generation 2 to 3, phase trust (check mode: not made); this run: no phase " \
           "(check mode)" in output, output[-4000:]
    assert pki.list("%s/issuers" % MOUNT) == issuers_before
    assert _host_files(tmp_path) == files_before
    assert token not in output and rotation_token not in output and secret_id not in output
