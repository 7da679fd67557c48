# -*- coding: utf-8 -*-
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Leaf certificate profiles: what a server, a client or a dual-use identity may do."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.fleet.mtls.plugins.module_utils.errors import MtlsError
from ansible_collections.fleet.mtls.plugins.module_utils.keys import key_type_of

try:
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID
    HAS_CRYPTOGRAPHY = True
except ImportError:
    HAS_CRYPTOGRAPHY = False

PROFILES = ("server", "client", "server_client")
DEFAULT_PROFILE = "server"
# Profiles whose leaves serve TLS: they carry SANs and their CN among them.
SERVER_PROFILES = ("server", "server_client")
# Profiles whose leaves authenticate clients.
CLIENT_PROFILES = ("client", "server_client")


def check_profile(profile):
    if profile not in PROFILES:
        raise MtlsError("unknown profile %r: choose one of %s" % (profile, ", ".join(PROFILES)))
    return profile


def extended_key_usage(profile):
    check_profile(profile)
    usages = []
    if profile in SERVER_PROFILES:
        usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
    if profile in CLIENT_PROFILES:
        usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    return x509.ExtendedKeyUsage(usages)


def leaf_key_usage(public_key):
    """digitalSignature always; keyEncipherment only for RSA (TLS 1.2 RSA key exchange)."""
    is_rsa = key_type_of(public_key).startswith("rsa")
    return x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=is_rsa,
        data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
        encipher_only=False, decipher_only=False)


def profile_named(server, client):
    """THE profile name for a server use, a client use or both; None for neither."""
    if server and client:
        return "server_client"
    if server:
        return "server"
    if client:
        return "client"
    return None


def profile_of(cert):
    """Profile name of a certificate from its EKU, or None when it matches none of ours."""
    try:
        usages = set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        return None
    return profile_named(ExtendedKeyUsageOID.SERVER_AUTH in usages, ExtendedKeyUsageOID.CLIENT_AUTH in usages)


def eku_names(cert):
    """Readable EKU names of a certificate (serverAuth, clientAuth, or dotted OIDs)."""
    try:
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return []
    known = {ExtendedKeyUsageOID.SERVER_AUTH: "serverAuth", ExtendedKeyUsageOID.CLIENT_AUTH: "clientAuth"}
    return [known.get(oid, oid.dotted_string) for oid in usages]
