# -*- coding: utf-8 -*-
"""fleet.mtls.vault_ca_rotation through ansible-playbook, against a real OpenBao server (raft, TLS).

Every phase runs with a token holding exactly the rotation policy docs/vault.md ships. Proven: an issuing
rotation then a root rotation (generation 3) on one mount, each phase idempotent and derived from the
engine alone; check mode writes nothing; retire refused naming the hosts while a leaf chains to the old
generation; the publication holds the new issuer from trust on and drops the old one after retire;
scope issuing on a mount that imported the local CA is refused, scope root works there; a token lacking
a path of the policy fails naming that path. Consecutive steps run in one playbook each (ansible_tasks).
"""

from __future__ import annotations

import pytest
from cryptography import x509

from conftest import import_library
from vault_helpers import DOMAIN_POLICY, connection, make_csr, rotation_policy_hcl

# This file's mounts and policies on the session's shared server (conftest.openbao_server).
MOUNT = "pki-rotation"
IMPORT_MOUNT = "pki-rotation-import"
ROOT_PASS = "Root-Secret-Passphrase-7"
ISSUING_PASS = "Issuing-Secret-Passphrase-9"


@pytest.fixture(scope="module")
def bao(openbao_server):
    vault_pki = import_library("vault_pki")
    pki = vault_pki.VaultPKI(openbao_server.url, token=openbao_server.root_token, ca_file=openbao_server.ca_file,
                             mount=MOUNT)
    vault_pki.prepare_mount(pki, role_policy=DOMAIN_POLICY)
    client = openbao_server.client()
    client.sys.create_or_update_policy("rotation-module", rotation_policy_hcl(MOUNT))
    no_root = "\n".join(line for line in rotation_policy_hcl(MOUNT).splitlines() if "root/generate" not in line)
    client.sys.create_or_update_policy("rotation-module-no-root", no_root)
    tokens = dict((name, client.auth.token.create(policies=["rotation-module" + suffix], no_default_policy=True,
                                                  ttl="1h")["auth"]["client_token"])
                  for name, suffix in (("fleet-rotation", ""), ("fleet-rotation-no-root", "-no-root")))
    return openbao_server, tokens


def rotation(cluster, token, check=False, mount=MOUNT, **options):
    """One fleet.mtls.vault_ca_rotation task for ansible_tasks (its own check mode)."""
    args = connection(cluster, token=token, mount=mount)
    args.update(options)
    return ("vault_ca_rotation", args, {"check_mode": True} if check else {})


def publication(cluster, mount=MOUNT):
    return ("vault_ca_publication", connection(cluster, mount=mount))


def signing(cluster, mount=MOUNT):
    return ("vault_certificate", dict(connection(cluster, mount=mount), requests=[
        {"identity": "web", "host": "web1", "csr": make_csr(), "common_name": "web1.example.com"}]))


def issuers(cluster, mount=MOUNT):
    client = cluster.client()
    result = {}
    for issuer_id in client.list("%s/issuers" % mount)["data"]["keys"]:
        data = client.read("%s/issuer/%s" % (mount, issuer_id))["data"]
        result[data["issuer_name"] or issuer_id] = data
    default = client.read("%s/config/issuers" % mount)["data"]["default"]
    return result, default


def bundle_subjects(run):
    """Subjects of a vault_ca_publication run's trust bundle."""
    bundle = _ok(run)["publication"]["trust-bundle.pem"]
    return set(cert.subject.rfc4514_string() for cert in x509.load_pem_x509_certificates(bundle.encode()))


def leaf(run):
    """A vault_certificate run's certificate as the leaves option describes an installed one."""
    cert = x509.load_pem_x509_certificate(_ok(run)["certificates"][0]["certificate"].encode())
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    return {"host": "web1", "identity": "web", "path": "/etc/mtls/certs/web.crt", "exists": True,
            "aki": ":".join("%02x" % b for b in aki), "issuer": cert.issuer.rfc4514_string(),
            "serial": "%x" % cert.serial_number}


def _ok(run):
    assert not run.get("failed"), run.get("msg")
    return run


def _refused(run, text):
    assert run.get("failed") and text in run["msg"], run.get("msg")
    return run


# Consecutive steps of one rotation run in one playbook each (ansible_tasks: one Ansible start-up per
# group); the engine's state is read between groups, where a step's effect must be seen before the next.
def test_issuing_then_root_rotation_phase_by_phase(ansible_tasks, bao):
    cluster, tokens = bao
    token = tokens["fleet-rotation"]
    status, dry, old_run = ansible_tasks([
        rotation(cluster, token),
        rotation(cluster, token, check=True, state="begin", scope="issuing"),
        signing(cluster)])
    assert _ok(status)["rotation"] is None and status["remaining_phases"] == [] and status["changed"] is False
    assert status["phases"] == ["trust", "reissue", "retire"]
    assert status["default_issuer"] == "issuing-1"
    assert _ok(dry)["changed"] is True and dry["remaining_phases"] == ["trust", "reissue", "retire"]
    assert "issuing-2" not in issuers(cluster)[0]
    old_leaf = leaf(old_run)

    # One playbook per step that needs a result of the one before. After begin, none of these tasks
    # moves the default issuer or changes an issuer's usage, so they share the issuers read below.
    begun, in_trust, trust_leaf, again, other, early, _complete, dry = ansible_tasks([
        rotation(cluster, token, state="begin", scope="issuing"), publication(cluster), signing(cluster),
        rotation(cluster, token, state="begin", scope="issuing"),
        rotation(cluster, token, state="begin", scope="root"),
        rotation(cluster, token, state="advance", phase="retire", leaves=[]),
        rotation(cluster, token, state="complete", phase="trust"),
        rotation(cluster, token, check=True, state="advance", phase="reissue")])
    assert _ok(begun)["changed"] is True
    assert begun["rotation"] == {"scope": "issuing", "from": 1, "to": 2, "phase": "trust", "phase_completed": False}
    assert begun["remaining_phases"] == ["trust", "reissue", "retire"]
    found, default = issuers(cluster)
    assert found["issuing-2"]["usage"] == "crl-signing,ocsp-signing,read-only"
    assert found["issuing-2"]["issuer_id"] != default and found["issuing-1"]["issuer_id"] == default
    subjects = bundle_subjects(in_trust)
    assert "CN=fleet.mtls issuing CA G2" in subjects and "CN=fleet.mtls issuing CA" in subjects
    # Leaves still come from issuing-1 while in trust.
    assert leaf(trust_leaf)["aki"] == old_leaf["aki"]
    assert _ok(again)["changed"] is False and again["changes"] == []
    _refused(other, "cannot begin a rotation with scope root")
    _refused(early, "run phase reissue first")
    _ok(_complete)
    assert _ok(dry)["changed"] is True and issuers(cluster)[1] == found["issuing-1"]["issuer_id"]

    reissue, reissue_again, new_run = ansible_tasks([
        rotation(cluster, token, state="advance", phase="reissue"),
        rotation(cluster, token, state="advance", phase="reissue"),
        signing(cluster)])
    assert _ok(reissue)["rotation"]["phase"] == "reissue" and reissue["remaining_phases"] == ["reissue", "retire"]
    found, default = issuers(cluster)
    assert default == found["issuing-2"]["issuer_id"]
    assert "issuing-certificates" in found["issuing-2"]["usage"]
    assert "issuing-certificates" not in found["issuing-1"]["usage"]
    assert _ok(reissue_again)["changed"] is False
    new_leaf = leaf(new_run)
    assert new_leaf["aki"] != old_leaf["aki"]

    refused, dry = ansible_tasks([
        rotation(cluster, token, state="advance", phase="retire", leaves=[old_leaf, new_leaf]),
        rotation(cluster, token, check=True, state="advance", phase="retire", leaves=[new_leaf])])
    _refused(refused, "still chain to it on web1")
    assert refused["blocking_hosts"] == ["web1"]
    assert _ok(dry)["changed"] is True and not issuers(cluster)[0]["issuing-1"]["revoked"]
    # Retire, then in the same playbook a second rotation, scope root: generation 3.
    retired, after_retire, complete, begun, in_trust = ansible_tasks([
        rotation(cluster, token, state="advance", phase="retire", leaves=[new_leaf]),
        publication(cluster),
        rotation(cluster, token, state="complete", phase="retire"),
        rotation(cluster, token, state="begin", scope="root"), publication(cluster)])
    assert _ok(retired)["changes"] == ["revoke issuer issuing-1", "rebuild the CRLs of mount %s" % MOUNT]
    assert retired["rotation"] is None and retired["remaining_phases"] == []
    assert bundle_subjects(after_retire) == {"CN=fleet.mtls root CA", "CN=fleet.mtls issuing CA G2"}
    assert _ok(complete)["changed"] is False
    assert _ok(begun)["rotation"] == {"scope": "root", "from": 2, "to": 3, "phase": "trust",
                                      "phase_completed": False}
    found, default = issuers(cluster)
    assert found["root-3"]["key_id"] and found["issuing-3"]["usage"] == "crl-signing,ocsp-signing,read-only"
    assert {"CN=fleet.mtls root CA G3", "CN=fleet.mtls issuing CA G3", "CN=fleet.mtls root CA"} <= \
        bundle_subjects(in_trust)
    reissue, leaf3_run = ansible_tasks([rotation(cluster, token, state="advance", phase="reissue"), signing(cluster)])
    _ok(reissue)
    retired, after_retire = ansible_tasks([
        rotation(cluster, token, state="advance", phase="retire", leaves=[leaf(leaf3_run)]), publication(cluster)])
    assert _ok(retired)["changes"] == ["revoke issuer issuing-2", "revoke issuer root-1",
                                       "rebuild the CRLs of mount %s" % MOUNT]
    assert retired["summary"] == "no CA rotation under way: issuing-3 signs (generation 3)"
    assert bundle_subjects(after_retire) == {"CN=fleet.mtls root CA G3", "CN=fleet.mtls issuing CA G3"}


def test_imported_mount_rotates_with_scope_root_only(ansible_tasks, bao, tmp_path):
    cluster, _tokens = bao
    ca_store = import_library("ca_store")
    vault_pki = import_library("vault_pki")
    root_dir, issuing_dir = str(tmp_path / "root-1"), str(tmp_path / "issuing-1")
    ca_store.create_root(root_dir, ROOT_PASS, common_name="local root")
    ca_store.create_intermediate(issuing_dir, ISSUING_PASS, root_dir, ROOT_PASS, common_name="local issuing")
    pki = vault_pki.VaultPKI(cluster.url, token=cluster.root_token, ca_file=cluster.ca_file, mount=IMPORT_MOUNT)
    key_pem, chain = vault_pki.import_material(issuing_dir, ISSUING_PASS)
    vault_pki.prepare_mount(pki, role_policy=DOMAIN_POLICY, ca_source="import", import_key_pem=key_pem,
                            import_chain=chain)
    token = cluster.root_token
    refused, = ansible_tasks([rotation(cluster, token, mount=IMPORT_MOUNT, state="begin", scope="issuing")])
    _refused(refused, "holds no key for the root")
    assert "rotate with scope root" in refused["msg"]
    assert "issuing-2" not in issuers(cluster, IMPORT_MOUNT)[0]

    begun, reissue, retired, published = ansible_tasks([
        rotation(cluster, token, mount=IMPORT_MOUNT, state="begin", scope="root"),
        rotation(cluster, token, mount=IMPORT_MOUNT, state="advance", phase="reissue"),
        rotation(cluster, token, mount=IMPORT_MOUNT, state="advance", phase="retire", leaves=[]),
        publication(cluster, mount=IMPORT_MOUNT)])
    _ok(begun)
    _ok(reissue)
    assert _ok(retired)["rotation"] is None and len(retired["changes"]) == 3, retired["changes"]
    found, _default = issuers(cluster, IMPORT_MOUNT)
    assert len([name for name, data in found.items() if data["revoked"]]) == 2
    # The key-less local root is revoked too, so no local CRL is needed any more.
    assert bundle_subjects(published) == {"CN=fleet.mtls root CA G2", "CN=fleet.mtls issuing CA G2"}


def test_token_lacking_a_path_fails_naming_it(ansible_tasks, bao):
    cluster, tokens = bao
    run, = ansible_tasks([rotation(cluster, tokens["fleet-rotation-no-root"], state="begin", scope="root")])
    _refused(run, "%s/root/generate/internal" % MOUNT)
    assert "permission denied" in run["msg"], run["msg"]
    assert tokens["fleet-rotation-no-root"] not in run.output


def test_a_root_trust_interrupted_after_the_root_is_resumed(ansible_tasks, bao):
    cluster, tokens = bao
    token = tokens["fleet-rotation"]
    status, = ansible_tasks([rotation(cluster, token)])
    assert _ok(status)["rotation"] is None, status["summary"]
    target = max(int(entry["name"].split("-")[1]) for entry in status["issuers"] if entry["name"]) + 1
    # What the first engine step of begin leaves behind when the run dies right after it.
    cluster.client().write("%s/root/generate/internal" % MOUNT, common_name="half-made root", ttl="87600h",
                           issuer_name="root-%d" % target, key_name="root-%d" % target, key_type="ec")
    half, wrong, early, resumed, again = ansible_tasks([
        rotation(cluster, token),
        rotation(cluster, token, state="begin", scope="issuing"),
        rotation(cluster, token, state="advance", phase="reissue"),
        rotation(cluster, token, state="begin", scope="root"),
        rotation(cluster, token, state="begin", scope="root")])
    assert _ok(half)["rotation"] == {"scope": "root", "from": target - 1, "to": target, "phase": "trust",
                                     "phase_completed": False}
    _refused(wrong, "cannot begin a rotation with scope issuing")
    _refused(early, "issuing-%d does not exist yet" % target)
    assert _ok(resumed)["changes"] == ["generate issuing CA issuing-%d (CSR)" % target,
                                       "sign issuing-%d with root-%d" % (target, target),
                                       "import issuing-%d, not signing (usage read-only,crl-signing,ocsp-signing)"
                                       % target]
    found, default = issuers(cluster)
    assert found["issuing-%d" % target]["issuer_id"] != default
    assert _ok(again)["changed"] is False
