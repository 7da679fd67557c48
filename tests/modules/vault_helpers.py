# -*- coding: utf-8 -*-
"""Helpers of the OpenBao module tests: CSRs, the docs' signing policy, the engine's stored certificates."""

from __future__ import annotations

import os
import re

import hvac.exceptions
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOMAIN_POLICY = {"allowed_domains": ["example.com"], "allowed_uri_sans": ["spiffe://example.com/*"]}
# The CSR asks for names the declaration does not give: they must never reach a certificate.
CSR_NAMES = ("csr-chosen.example.com", "evil.example.net")


def make_csr(common_name="csr-chosen.example.com", key=None):
    key = key or ec.generate_private_key(ec.SECP256R1())
    builder = (x509.CertificateSigningRequestBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
               .add_extension(x509.SubjectAlternativeName([x509.DNSName(name) for name in CSR_NAMES]),
                              critical=False))
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


def _documented_policy(title, mount):
    """The HCL block docs/vault.md ships under ``title``, its ``pki/`` paths moved to ``mount`` (the
    test files share one server, each on a mount of its own)."""
    with open(os.path.join(REPO, "docs", "vault.md")) as handle:
        text = handle.read()
    match = re.search(r"```hcl\n(# %s.*?)```" % re.escape(title), text, re.S)
    assert match, "docs/vault.md has no %s policy block" % title
    policy = match.group(1)
    assert policy.count('path "pki/') >= 5, policy
    return policy.replace('path "pki/', 'path "%s/' % mount)


def signing_policy_hcl(mount="pki"):
    """The HCL block docs/vault.md ships for the playbooks' token."""
    return _documented_policy("fleet.mtls signing token", mount)


def stored_serials(client, mount="pki"):
    """Serials of every certificate the engine stored on the mount (leaves and CAs)."""
    try:
        answer = client.list("%s/certs" % mount)
    except hvac.exceptions.InvalidPath:
        return set()
    return set(answer["data"]["keys"]) if answer else set()


def connection(cluster, token=None, **extra):
    args = {"url": [cluster.url], "ca_file": cluster.ca_file, "token": token or cluster.root_token}
    args.update(extra)
    return args


def rotation_policy_hcl(mount="pki"):
    """The HCL block docs/vault.md ships for the rotation token."""
    return _documented_policy("fleet.mtls rotation token", mount)


def enable_approle(client):
    """The AppRole auth method on the shared server (enabled by whichever test file asks first; the
    files of one session run one after the other)."""
    if "approle/" not in client.sys.list_auth_methods()["data"]:
        client.sys.enable_auth_method("approle")
