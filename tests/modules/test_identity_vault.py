# -*- coding: utf-8 -*-
"""The identity role with ``mtls_ca_backend: vault`` on simulated hosts, against a real OpenBao server.

Like test_site_local.py, the hosts are inventory names on localhost (``ansible_connection: local``),
each with its own ``mtls_dir``; the signer is the controller. The mount is prepared with
fleet.mtls.vault_pki_mount; the role signs with a token holding exactly the policy docs/vault.md
ships. Proven: every host has a key it made itself and a certificate the engine signed (issuer, names
from the inventory), the trust and CRL bundles are the engine's, a second run changes nothing, and a
refused token or a token that may not sign fails the run with a clear message and leaves no staged key.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from conftest import _ansible_playbook, _collections_path
from vault_helpers import connection, signing_policy_hcl, stored_serials

# This file's mount on the session's shared server; test_lifecycle_vault*.py use the engine fixture
# below with mounts of their own (their MOUNT).
MOUNT = "pki-identity"
POLICY = {"allowed_domains": ["fleet.test"], "allow_ip_sans": True}
HOSTS = ("app1.fleet.test", "app2.fleet.test", "app3.fleet.test")
# (host, identity, profile, common name, DNS names, IPs) as the inventory declares them.
EXPECTED = [
    ("app1.fleet.test", "app1", ExtendedKeyUsageOID.CLIENT_AUTH, "app1", {"app1.fleet.test"}, set()),
    ("app1.fleet.test", "api", ExtendedKeyUsageOID.SERVER_AUTH, "api.fleet.test",
     {"api.fleet.test", "api-internal.fleet.test"}, {"127.0.0.1"}),
    ("app2.fleet.test", "app2", ExtendedKeyUsageOID.CLIENT_AUTH, "app2", {"app2.fleet.test"}, set()),
    ("app3.fleet.test", "app3", ExtendedKeyUsageOID.CLIENT_AUTH, "app3", {"app3.fleet.test"}, set()),
]


@pytest.fixture(scope="module")
def engine(openbao_server, tmp_path_factory, request):
    """The shared server with the test module's mount (its MOUNT) prepared by fleet.mtls.vault_pki_mount,
    and two tokens: the docs' signing policy, and one that may read but not sign."""
    from conftest import _run_play  # pylint: disable=import-outside-toplevel
    mount = request.module.MOUNT
    work = tmp_path_factory.mktemp("prepare")
    results, _output = _run_play(work / "prepare.yml", [("vault_pki_mount", dict(
        connection(openbao_server, mount=mount), policy=POLICY))], False, False, None, str(work))
    assert not results[0].get("failed"), results[0].get("msg")
    assert results[0]["changed"], "mount %s was already prepared: another test file uses it" % mount
    client = openbao_server.client()
    policy = signing_policy_hcl(mount)
    no_sign = "\n".join(line for line in policy.splitlines() if "/sign/" not in line)
    tokens = {}
    for name, text in (("fleet-signing", policy), ("fleet-no-sign", no_sign)):
        client.sys.create_or_update_policy("%s-%s" % (mount, name), text)
        tokens[name] = client.auth.token.create(policies=["%s-%s" % (mount, name)], ttl="1h")["auth"]["client_token"]
    return openbao_server, tokens


def _inventory(base, cluster, token, hosts, host_vars=None, mount=MOUNT, **extra):
    entries = {
        "app1.fleet.test": {"mtls_identities": [
            {"name": "app1", "profile": "client", "sans": ["DNS:app1.fleet.test"]},
            {"name": "api", "profile": "server", "common_name": "api.fleet.test",
             "sans": ["DNS:api-internal.fleet.test", "IP:127.0.0.1"]}]},
        # The default identity from group membership (a client named after the host); an RSA key on app3.
        "app2.fleet.test": {},
        "app3.fleet.test": {"mtls_identity_key_type": "rsa2048"},
    }
    hostvars = {}
    for host in hosts:
        hostvars[host] = dict(entries.get(host, {}), mtls_dir=str(base / "hosts" / host), **(host_vars or {}))
    variables = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                 "mtls_identity_gather_facts": False, "mtls_ca_backend": "vault",
                 "mtls_vault_url": [cluster.url], "mtls_vault_ca_file": cluster.ca_file,
                 "mtls_vault_token": token, "mtls_vault_mount": mount,
                 # A local CA directory that must stay untouched: the engine signs, no index.json.
                 "mtls_ca_dir": str(base / "ca")}
    variables.update(extra)
    return {"all": {"vars": variables, "children": {"mtls_clients": {"hosts": hostvars}}}}


def _run(base, inventory, playbook=None, *extra):
    """ansible-playbook with the inventory: the identity role alone, or ``playbook`` (e.g. fleet.mtls.site)
    with ``extra`` arguments. (returncode, {host: changed}, output)"""
    path = base / "inventory.json"
    path.write_text(json.dumps(inventory))
    if playbook is None:
        playbook = base / "identity.yml"
        playbook.write_text(json.dumps([{"name": "Identities", "hosts": "mtls_clients", "gather_facts": False,
                                         "roles": ["fleet.mtls.identity"]}]))
    env = dict(os.environ)
    for name in [name for name in env if name.startswith(("VAULT_", "BAO_"))]:
        del env[name]
    env.update({"ANSIBLE_COLLECTIONS_PATH": _collections_path(), "ANSIBLE_NOCOLOR": "1",
                "ANSIBLE_STDOUT_CALLBACK": "default", "ANSIBLE_LOCALHOST_WARNING": "false",
                "ANSIBLE_PYTHON_INTERPRETER": sys.executable})
    proc = subprocess.run([_ansible_playbook(), "-i", str(path), str(playbook)] + list(extra), capture_output=True,
                          text=True, env=env, cwd=str(base), timeout=600, check=False)
    output = proc.stdout + proc.stderr
    recap = dict((host, int(changed)) for host, changed in
                 re.findall(r"^(\S+)\s+:\s+ok=\d+\s+changed=(\d+)", output, re.M))
    return proc.returncode, recap, output


def _cert(path):
    with open(path, "rb") as handle:
        return x509.load_pem_x509_certificate(handle.read())


def _files(base, host):
    """Every file under a host's mtls_dir with its content."""
    result = {}
    for root, _dirs, names in os.walk(base / "hosts" / host):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as handle:
                result[os.path.relpath(path, str(base))] = handle.read()
    return result


def _pem_certs(text):
    return [x509.load_pem_x509_certificate(block.encode()) for block in
            re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\n", text, re.S)]


def test_identity_role_signs_through_the_engine_then_nothing_to_do(engine, tmp_path):
    cluster, tokens = engine
    token = tokens["fleet-signing"]
    client = cluster.client()
    rc, recap, output = _run(tmp_path, _inventory(tmp_path, cluster, token, HOSTS))
    assert rc == 0, output[-6000:]
    assert set(recap) == set(HOSTS) and all(recap.values()), recap
    assert token not in output

    issuing = x509.load_pem_x509_certificate(
        client.read("%s/issuer/default/json" % MOUNT)["data"]["certificate"].encode())
    issuers = [x509.load_pem_x509_certificate(client.read("%s/issuer/%s/json" % (MOUNT, issuer_id))
                                              ["data"]["certificate"].encode())
               for issuer_id in client.list("%s/issuers" % MOUNT)["data"]["keys"]]
    engine_serials = stored_serials(client, MOUNT)
    for host, name, eku, common_name, dns, ips in EXPECTED:
        base = tmp_path / "hosts" / host
        with open(base / "private" / ("%s.key" % name), "rb") as handle:
            key = serialization.load_pem_private_key(handle.read(), None)
        leaf = _cert(base / "certs" / ("%s.crt" % name))
        # The host's own key, signed by the mount's issuer with the inventory's names.
        assert leaf.public_key().public_numbers() == key.public_key().public_numbers(), (host, name)
        assert leaf.issuer == issuing.subject
        issuing.public_key().verify(leaf.signature, leaf.tbs_certificate_bytes, ec.ECDSA(leaf.signature_hash_algorithm))
        serial = "%x" % leaf.serial_number
        assert any(stored.replace(":", "").lstrip("0") == serial.lstrip("0") for stored in engine_serials), serial
        assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == common_name
        sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert set(sans.get_values_for_type(x509.DNSName)) == dns
        assert set(str(ip) for ip in sans.get_values_for_type(x509.IPAddress)) == ips
        assert list(leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [eku]
        # Trust and CRL bundles from the engine: every issuer, each one's CRL.
        with open(base / "trust-bundle.pem") as handle:
            trusted = _pem_certs(handle.read())
        assert sorted(c.fingerprint(leaf.signature_hash_algorithm) for c in trusted) == \
            sorted(c.fingerprint(leaf.signature_hash_algorithm) for c in issuers)
        with open(base / "crl.pem", "rb") as handle:
            crl_text = handle.read()
        crls = [x509.load_pem_x509_crl(block) for block in
                re.findall(rb"-----BEGIN X509 CRL-----.*?-----END X509 CRL-----\n", crl_text, re.S)]
        assert sorted(crl.issuer.rfc4514_string() for crl in crls) == \
            sorted(c.subject.rfc4514_string() for c in issuers)
        verify = subprocess.run(
            ["openssl", "verify", "-CAfile", str(base / "trust-bundle.pem"), "-crl_check_all",
             "-CRLfile", str(base / "crl.pem"), str(base / "certs" / ("%s.chain.pem" % name))],
            capture_output=True, text=True, check=False)
        assert verify.returncode == 0, verify.stdout + verify.stderr
    # Nothing local: no CA store, no issuance index.
    assert not os.path.exists(tmp_path / "ca")

    rc, again, output = _run(tmp_path, _inventory(tmp_path, cluster, token, HOSTS))
    assert rc == 0, output[-6000:]
    assert again == dict((host, 0) for host in HOSTS), again


def test_a_refused_token_fails_the_run_and_leaves_no_staged_key(engine, tmp_path):
    cluster, tokens = engine
    fresh = ("app1.fleet.test", "app2.fleet.test")
    rc, _recap, output = _run(tmp_path, _inventory(tmp_path, cluster, "not-a-valid-token", fresh))
    assert rc != 0
    assert "the OpenBao/Vault token was refused by %s: it is invalid, expired or revoked" % cluster.url in output
    assert "not-a-valid-token" not in output
    for host in fresh:
        assert _files(tmp_path, host) == {}, host

    # A token the engine accepts but whose policy does not allow signing: keys are made, then removed.
    rc, _recap, output = _run(tmp_path, _inventory(tmp_path, cluster, tokens["fleet-no-sign"], fresh))
    assert rc != 0
    assert "Signing through %s on localhost failed for 3 request(s)" % MOUNT in output, output[-4000:]
    assert "app1.fleet.test/app1" in output and "permission denied" in output
    assert tokens["fleet-no-sign"] not in output
    for host in fresh:
        assert [path for path in _files(tmp_path, host) if "private" in path or "certs" in path] == [], host

    # central_key needs the local backend: refused naming the identity, the host-made key removed again.
    identities = [{"name": "app1", "profile": "client", "sans": ["DNS:app1.fleet.test"]},
                  {"name": "device", "profile": "client", "central_key": True}]
    rc, _recap, output = _run(tmp_path, _inventory(tmp_path, cluster, tokens["fleet-signing"], fresh[:1],
                                                   host_vars={"mtls_identities": identities}))
    assert rc != 0
    assert "central_key is not available with mtls_ca_backend=vault" in output, output[-4000:]
    assert "app1.fleet.test/device" in output
    assert [path for path in _files(tmp_path, fresh[0]) if "private" in path or "certs" in path] == []
