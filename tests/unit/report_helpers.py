# -*- coding: utf-8 -*-
"""Shared helpers of the fleet report tests: CA generations made with cryptography directly (not by
the collection), leaves under them and the inputs build_report takes."""

from __future__ import annotations

import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ansible_collections.fleet.mtls.plugins.module_utils import report as report_lib

UTC = datetime.timezone.utc
NOW = datetime.datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
DAY = datetime.timedelta(days=1)


def make_cert(common_name, issuer_cert=None, issuer_key=None, ca=False):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    builder = (x509.CertificateBuilder()
               .subject_name(subject)
               .issuer_name(issuer_cert.subject if issuer_cert else subject)
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(NOW - 10 * DAY)
               .not_valid_after(NOW + 365 * DAY)
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    cert = builder.sign(issuer_key or key, hashes.SHA256())
    return cert, key


def pem(*certs):
    return "".join(cert.public_bytes(serialization.Encoding.PEM).decode() for cert in certs)


class Generation:
    def __init__(self, gen_id, state):
        self.id = gen_id
        self.state = state
        self.root, root_key = make_cert("Fleet Root G%s" % gen_id, ca=True)
        self.issuing, self.issuing_key = make_cert("Fleet Issuing G%s" % gen_id, self.root, root_key, ca=True)

    def leaf_chain(self, name):
        leaf, _key = make_cert(name, self.issuing, self.issuing_key)
        return pem(leaf, self.issuing)

    def as_input(self):
        return {"id": self.id, "state": self.state, "root_pem": pem(self.root), "issuing_pem": pem(self.issuing)}


def fleet_generations():
    """Generation 1 retired, 2 retiring, 3 active: the middle of a rotation."""
    return {"1": Generation("1", "retired"), "2": Generation("2", "retiring"), "3": Generation("3", "active")}


def ca_input(generations, crls=()):
    return {"rotation": {"active": 3, "rotation": {"scope": "root", "from": 2, "to": 3, "phase": "reissue",
                                                   "phase_completed": None}},
            "generations": [gen.as_input() for gen in generations.values()], "crls": list(crls)}


def info(days_left, **extra):
    """A cert_info result for a leaf with ``days_left`` days to go, issued ten days before NOW."""
    result = {"not_after": report_lib.isoformat(NOW + datetime.timedelta(days=days_left)),
              "not_before": report_lib.isoformat(NOW - 10 * DAY), "serial": "0a", "profile": "server",
              "subject": "CN=x", "chain_valid": True, "revoked": False}
    result.update(extra)
    return result


def host(name, certificates, bundle):
    return {"host": name, "trust_bundle_pem": bundle, "certificates": certificates}
