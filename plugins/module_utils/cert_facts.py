# -*- coding: utf-8 -*-
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The facts fleet.mtls.cert_info returns about a certificate: description, renewal window, key match,
chain validation against a trust bundle and revocation against a CRL (``certificate_facts(params)``)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.fleet.mtls.plugins.module_utils.errors import MtlsError
from ansible_collections.fleet.mtls.plugins.module_utils.fsutil import read_file
from ansible_collections.fleet.mtls.plugins.module_utils.host_identity import current_decision
from ansible_collections.fleet.mtls.plugins.module_utils.host_layout import installed_identities
from ansible_collections.fleet.mtls.plugins.module_utils.keys import load_private_key, same_public_key
from ansible_collections.fleet.mtls.plugins.module_utils.names import subject_string
from ansible_collections.fleet.mtls.plugins.module_utils.renewal import Expected, renewal_threshold_days
from ansible_collections.fleet.mtls.plugins.module_utils.x509_info import (
    REVOCATION_GOOD, REVOCATION_REVOKED, check_revocation, describe_certificate, find_issuer,
    load_certificate_file, load_certificates, load_crl_file, verify_chain)


def _key_fields(params, leaf):
    if params["key_path"] is None:
        return {"key_exists": None, "key_match": None}
    data = read_file(params["key_path"], "private key")
    if data is None:
        return {"key_exists": False, "key_match": False}
    key = load_private_key(data, params["key_passphrase"], source="private key %s" % params["key_path"])
    return {"key_exists": True, "key_match": same_public_key(key, leaf.public_key())}


def _chain_fields(params, certificates):
    fields = {"chain_valid": None, "chain_reason": None, "chain_failed_subject": None, "chain_path": None}
    intermediates = certificates[1:]
    if params["chain"] is not None:
        intermediates += load_certificate_file(params["chain"], "chain")
    anchors = []
    if params["trust_bundle"] is not None:
        anchors = load_certificate_file(params["trust_bundle"], "trust_bundle")
        ok, reason, path = verify_chain(certificates[0], intermediates, anchors, purpose=params["purpose"])
        fields["chain_valid"] = ok
        if ok:
            fields["chain_path"] = [subject_string(cert.subject) for cert in path]
        else:
            fields["chain_reason"] = reason
            fields["chain_failed_subject"] = subject_string(path[-1].subject)
    return fields, intermediates, anchors


def _revocation_fields(params, leaf, candidates):
    fields = {"revoked": None, "revocation": None, "revocation_date": None, "revocation_reason": None,
              "crl_next_update": None}
    if params["crl"] is None:
        return fields
    crls = load_crl_file(params["crl"], "crl")
    issuer = find_issuer(leaf, [leaf] + candidates)
    if issuer is None:
        fields["revocation"] = "no crl for issuer"
        return fields
    status = check_revocation(leaf, issuer, crls)
    fields.update({
        "revocation": status["status"],
        "revoked": {REVOCATION_REVOKED: True, REVOCATION_GOOD: False}.get(status["status"]),
        "revocation_date": status["revoked_at"],
        "revocation_reason": status["reason"],
        "crl_next_update": status["crl_next_update"],
    })
    return fields


def certificate_facts(params):
    """What fleet.mtls.cert_info returns for its ``params``: one certificate (path or content) or,
    with ``mtls_dir``, every identity installed there (``leaves``); key, chain, trust bundle, CRL."""
    if params["mtls_dir"] is not None:
        if params["key_path"] is not None:
            raise MtlsError("key_path names one identity's key: it cannot be combined with mtls_dir")
        return _installed_facts(params)
    for option in ("chain_files", "renewal_check"):
        if params[option]:
            raise MtlsError("%s only applies with mtls_dir" % option)
    if params["path"] is not None:
        return _file_facts(params, params["path"])
    return _facts(params, params["content"], "content")


def _installed_facts(params):
    leaves = []
    for layout in installed_identities(params["mtls_dir"]):
        path = layout.chain if params["chain_files"] else layout.certificate
        try:
            entry = _file_facts(params, path)
        except MtlsError as exc:
            raise MtlsError("%s (identity %s): %s" % (os.path.basename(layout.certificate), layout.name, exc.message),
                            identity=layout.name, path=path, **exc.details)
        entry.pop("changed", None)
        entry.update(identity=layout.name, path=path, certificate_path=layout.certificate)
        if params["renewal_check"] and entry["exists"]:
            entry["renewal"] = _renewal(params, layout)
        leaves.append(entry)
    return {"changed": False, "leaves": leaves}


def _renewal(params, layout):
    """The host's own renewal decision on the identity (key, certificate, chain file), without
    expectations of names or issuers: what the next rotate would find wrong with the files."""
    expected = Expected(renew_fraction=params["renew_fraction"], renew_days=params["renew_days"])
    try:
        decision = current_decision(layout, expected)[0]
    except MtlsError as exc:
        raise MtlsError("%s (identity %s): %s" % (os.path.basename(layout.certificate), layout.name, exc.message),
                        identity=layout.name, **exc.details)
    return {"needs_issue": decision.needs, "reason": decision.reason, "detail": decision.detail}


def _file_facts(params, path):
    data = read_file(path, "certificate file")
    if data is None:
        return {"changed": False, "exists": False}
    return _facts(params, data, path)


def _facts(params, data, source):
    expected = Expected(renew_fraction=params["renew_fraction"], renew_days=params["renew_days"])
    certificates = load_certificates(data, source)
    leaf = certificates[0]
    result = {"changed": False, "exists": True, "count": len(certificates)}
    result.update(describe_certificate(leaf))
    result["in_renewal_window"] = result["days_left"] <= renewal_threshold_days(result["lifetime_days"], expected)
    if params["all"]:
        result["certificates"] = [describe_certificate(cert) for cert in certificates]
    result.update(_key_fields(params, leaf))
    chain_fields, intermediates, anchors = _chain_fields(params, certificates)
    result.update(chain_fields)
    result.update(_revocation_fields(params, leaf, intermediates + anchors))
    return result
