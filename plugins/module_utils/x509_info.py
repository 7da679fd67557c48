# -*- coding: utf-8 -*-
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Certificate inspection: loading bundles, describing certificates, path validation and CRL checks.

Managed hosts run cryptography 38, which has no ``x509.verification``: chains are validated here by
walking issuer names and key identifiers and checking every signature with the issuer's public key.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.fleet.mtls.plugins.module_utils.compat import (
    crl_last_update, crl_next_update, isoformat, not_valid_after, not_valid_before, pem_blocks,
    revocation_date, utcnow)
from ansible_collections.fleet.mtls.plugins.module_utils.errors import MtlsError
from ansible_collections.fleet.mtls.plugins.module_utils.fsutil import read_file
from ansible_collections.fleet.mtls.plugins.module_utils.keys import key_type_of, same_public_key
from ansible_collections.fleet.mtls.plugins.module_utils.names import (
    common_name_of, sans_of, subject_string)
from ansible_collections.fleet.mtls.plugins.module_utils.profiles import eku_names, profile_of
from ansible_collections.fleet.mtls.plugins.module_utils.serials import serial_hex

try:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, SignatureAlgorithmOID
    HAS_CRYPTOGRAPHY = True
except ImportError:
    HAS_CRYPTOGRAPHY = False

# Reasons verify_chain() gives; callers (and users) match on these exact strings.
REASON_EXPIRED = "expired"
REASON_NOT_YET_VALID = "not yet valid"
REASON_UNKNOWN_ISSUER = "unknown issuer"
REASON_BAD_SIGNATURE = "bad signature"
REASON_NOT_CA = "issuer is not a CA"
REASON_PATH_LENGTH = "path length exceeded"
REASON_WRONG_PURPOSE = "wrong purpose"

# Revocation states check_revocation() gives.
REVOCATION_GOOD = "good"
REVOCATION_REVOKED = "revoked"
REVOCATION_NO_CRL = "no crl for issuer"
REVOCATION_CRL_EXPIRED = "crl expired"

PURPOSES = ("serverAuth", "clientAuth")

# Deeper chains than this are not something this collection builds; it also bounds the search.
MAX_PATH_DEPTH = 8


def load_certificates(pem_bytes, source):
    """Every certificate of a PEM bundle (or one DER certificate), in file order.

    ``source`` names the input (a path, 'content'...) in errors: empty input, a file without any
    certificate and a damaged certificate block are all MtlsError.
    """
    if pem_bytes is None or not pem_bytes.strip():
        raise MtlsError("%s is empty: expected PEM certificate(s)" % source)
    if isinstance(pem_bytes, str):
        pem_bytes = pem_bytes.encode("utf-8", "replace")
    blocks = pem_blocks(pem_bytes, "CERTIFICATE")
    if not blocks:
        if b"-----BEGIN" not in pem_bytes:
            try:
                return [x509.load_der_x509_certificate(pem_bytes)]
            except ValueError:
                pass
        other = pem_blocks(pem_bytes)
        if other:
            labels = sorted(set(block.split(b"-----")[1][6:].decode("ascii") for block in other))
            raise MtlsError("%s holds no certificate (found only %s)" % (source, ", ".join(labels)))
        raise MtlsError("%s is not a PEM certificate or bundle (no BEGIN CERTIFICATE block)" % source)
    return _parse_each(blocks, x509.load_pem_x509_certificate, "certificate", source)


def _parse_each(blocks, load, kind, source):
    """``load`` every PEM block; a damaged one is named by its position in ``source``."""
    parsed = []
    for position, block in enumerate(blocks, 1):
        try:
            parsed.append(load(block))
        except ValueError as exc:
            raise MtlsError("%s: %s #%d is damaged and cannot be parsed (%s)" % (source, kind, position, _first_line(exc)))
    return parsed


def load_crls(pem_bytes, source):
    """Every CRL of a PEM bundle (one CRL per CA is the usual crl.pem layout)."""
    if pem_bytes is None or not pem_bytes.strip():
        raise MtlsError("%s is empty: expected PEM CRL(s)" % source)
    blocks = pem_blocks(pem_bytes, "X509 CRL")
    if not blocks:
        raise MtlsError("%s holds no CRL (no BEGIN X509 CRL block)" % source)
    return _parse_each(blocks, x509.load_pem_x509_crl, "CRL", source)


def read_required(path, what):
    """Bytes of a file that must exist; the error names it as ``what`` (an option name)."""
    data = read_file(path, what)
    if data is None:
        raise MtlsError("%s %s does not exist" % (what, path))
    return data


def load_certificate_file(path, what):
    """Certificates of a PEM file that must exist (``what`` names it: 'trust_bundle'...)."""
    return load_certificates(read_required(path, what), "%s %s" % (what, path))


def load_crl_file(path, what):
    return load_crls(read_required(path, what), "%s %s" % (what, path))


def _first_line(exc):
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def _colon_hex(data):
    return ":".join("%02x" % byte for byte in bytearray(data))


def fingerprint_sha256(cert):
    """SHA-256 fingerprint as lower-case colon-separated hex."""
    return _colon_hex(cert.fingerprint(hashes.SHA256()))


def _extension(cert, ext_class):
    try:
        return cert.extensions.get_extension_for_class(ext_class).value
    except x509.ExtensionNotFound:
        return None


def subject_key_id(cert):
    ski = _extension(cert, x509.SubjectKeyIdentifier)
    return _colon_hex(ski.digest) if ski is not None else None


def authority_key_id(cert):
    aki = _extension(cert, x509.AuthorityKeyIdentifier)
    if aki is None or aki.key_identifier is None:
        return None
    return _colon_hex(aki.key_identifier)


def is_ca(cert):
    constraints = _extension(cert, x509.BasicConstraints)
    return bool(constraints is not None and constraints.ca)


def _describe_key(cert):
    public_key = cert.public_key()
    try:
        return key_type_of(public_key)
    except MtlsError:
        # Inspection must not fail on keys we would not issue for: say what it is instead.
        size = getattr(public_key, "key_size", None)
        name = type(public_key).__name__.replace("PublicKey", "").lstrip("_").lower()
        return "%s%s" % (name, size) if size else name


def describe_certificate(cert, now=None):
    """Plain dict summary of a certificate (the fields cert_info and tls_probe return)."""
    now = now or utcnow()
    start, end = not_valid_before(cert), not_valid_after(cert)
    lifetime = (end - start).total_seconds()
    remaining = (end - now).total_seconds()
    if lifetime > 0:
        fraction_left = min(1.0, max(0.0, remaining / lifetime))
    else:
        fraction_left = 0.0
    return {
        "subject": subject_string(cert.subject),
        "common_name": common_name_of(cert.subject),
        "sans": sans_of(cert),
        "issuer": subject_string(cert.issuer),
        "serial": serial_hex(cert.serial_number),
        "not_before": isoformat(start),
        "not_after": isoformat(end),
        "days_left": round(remaining / 86400.0, 1),
        "fraction_left": round(fraction_left, 4),
        "lifetime_days": round(lifetime / 86400.0, 1),
        "eku": eku_names(cert),
        "profile": profile_of(cert),
        "is_ca": is_ca(cert),
        "key_type": _describe_key(cert),
        "fingerprint_sha256": fingerprint_sha256(cert),
        "ski": subject_key_id(cert),
        "aki": authority_key_id(cert),
    }


def _rsa_padding(cert):
    if cert.signature_algorithm_oid != SignatureAlgorithmOID.RSASSA_PSS:
        return padding.PKCS1v15()
    # cryptography 38 cannot read PSS parameters; newer releases expose them.
    parameters = getattr(cert, "signature_algorithm_parameters", None)
    if parameters is None:
        raise UnsupportedAlgorithm("RSASSA-PSS signatures need cryptography >= 41 to verify")
    return parameters


def _verify_signature(public_key, signature, data, hash_algorithm, rsa_padding=None):
    if isinstance(public_key, rsa.RSAPublicKey):
        public_key.verify(signature, data, rsa_padding or padding.PKCS1v15(), hash_algorithm)
    elif isinstance(public_key, ec.EllipticCurvePublicKey):
        public_key.verify(signature, data, ec.ECDSA(hash_algorithm))
    elif isinstance(public_key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
        public_key.verify(signature, data)
    else:
        raise UnsupportedAlgorithm("unsupported issuer key %s" % type(public_key).__name__)


def issued_by(cert, issuer):
    """True when ``issuer``'s subject is ``cert``'s issuer and its key made ``cert``'s signature.

    Works on cryptography 38 (no ``verify_directly_issued_by`` there). Unsupported or mismatched
    algorithms count as not issued by.
    """
    if cert.issuer != issuer.subject:
        return False
    try:
        _verify_signature(issuer.public_key(), cert.signature, cert.tbs_certificate_bytes,
                          cert.signature_hash_algorithm, _rsa_padding(cert))
    except (InvalidSignature, UnsupportedAlgorithm, TypeError, ValueError):
        return False
    return True


def _same_certificate(a, b):
    return a.public_bytes(serialization.Encoding.DER) == b.public_bytes(serialization.Encoding.DER)


def _anchor_for(cert, anchors):
    """The trust anchor ``cert`` stands for: the same certificate, or the same CA re-issued
    (same subject and key) — a bundle may hold a newer copy of an intermediate."""
    for anchor in anchors:
        if _same_certificate(cert, anchor):
            return anchor
    for anchor in anchors:
        if anchor.subject == cert.subject and same_public_key(anchor.public_key(), cert.public_key()):
            return anchor
    return None


def _issuer_candidates(cert, pool, path):
    wanted_key_id = None
    aki = _extension(cert, x509.AuthorityKeyIdentifier)
    if aki is not None:
        wanted_key_id = aki.key_identifier
    candidates = []
    for candidate in pool:
        if candidate.subject != cert.issuer or any(_same_certificate(candidate, seen) for seen in path):
            continue
        if wanted_key_id is not None:
            ski = _extension(candidate, x509.SubjectKeyIdentifier)
            if ski is not None and ski.digest != wanted_key_id:
                continue
        candidates.append(candidate)
    return candidates


def _is_self_issued(cert):
    return cert.subject == cert.issuer


def _check_validity(cert, now):
    if now < not_valid_before(cert):
        return REASON_NOT_YET_VALID
    if now > not_valid_after(cert):
        return REASON_EXPIRED
    return None


def _check_purpose(cert, purpose):
    """EKU check: a certificate without EKU may serve any purpose (RFC 5280 4.2.1.12)."""
    if purpose is None:
        return None
    usages = _extension(cert, x509.ExtendedKeyUsage)
    if usages is None:
        return None
    wanted = ExtendedKeyUsageOID.SERVER_AUTH if purpose == "serverAuth" else ExtendedKeyUsageOID.CLIENT_AUTH
    if wanted in usages or ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in usages:
        return None
    return REASON_WRONG_PURPOSE


def _check_issuer(issuer, intermediates_below):
    """CA checks on a certificate used to sign; ``intermediates_below`` counts the non-self-issued
    CA certificates between it and the leaf."""
    constraints = _extension(issuer, x509.BasicConstraints)
    if constraints is None or not constraints.ca:
        return REASON_NOT_CA
    usage = _extension(issuer, x509.KeyUsage)
    if usage is not None and not usage.key_cert_sign:
        return REASON_NOT_CA
    if constraints.path_length is not None and intermediates_below > constraints.path_length:
        return REASON_PATH_LENGTH
    return None


class _Failure:
    """The most informative failure seen while searching: the one that got furthest."""

    def __init__(self):
        self.reason = None
        self.path = []

    def record(self, reason, path):
        if self.reason is None or len(path) > len(self.path):
            self.reason, self.path = reason, list(path)


def verify_chain(leaf, intermediates, trust_anchors, now=None, purpose=None):
    """Validate a certification path from ``leaf`` to one of ``trust_anchors``.

    ``intermediates`` are untrusted helpers (e.g. the rest of a chain file); ``trust_anchors`` is
    the trust bundle, which holds roots and intermediates: reaching any of them ends the path.
    ``purpose`` ('serverAuth'/'clientAuth') checks the extended key usage.

    Returns ``(ok, reason, path)``: ``reason`` is None or one of the REASON_* strings; ``path`` is
    the validated path (leaf first) or, on failure, the path up to the certificate at fault.
    """
    if purpose is not None and purpose not in PURPOSES:
        raise MtlsError("unknown purpose %r: choose one of %s" % (purpose, ", ".join(PURPOSES)))
    if not trust_anchors:
        raise MtlsError("the trust bundle holds no certificate")
    now = now or utcnow()
    anchors = list(trust_anchors)
    pool = list(intermediates or []) + anchors
    failure = _Failure()
    path = _search([leaf], anchors, pool, now, purpose, failure)
    if path is not None:
        return True, None, path
    return False, failure.reason, failure.path


def _search(path, anchors, pool, now, purpose, failure):
    cert = path[-1]
    depth = len(path) - 1
    reason = _check_validity(cert, now) or _check_purpose(cert, purpose)
    if reason is None and depth > 0:
        below = sum(1 for lower in path[1:-1] if not _is_self_issued(lower))
        reason = _check_issuer(cert, below)
    if reason is not None:
        failure.record(reason, path)
        return None
    if _anchor_for(cert, anchors) is not None:
        return path
    if depth >= MAX_PATH_DEPTH:
        failure.record(REASON_PATH_LENGTH, path)
        return None
    candidates = _issuer_candidates(cert, pool, path)
    if not candidates:
        failure.record(REASON_UNKNOWN_ISSUER, path)
        return None
    for candidate in candidates:
        if not issued_by(cert, candidate):
            failure.record(REASON_BAD_SIGNATURE, path)
            continue
        # Continue from the trusted copy when the candidate stands for an anchor.
        found = _search(path + [_anchor_for(candidate, anchors) or candidate], anchors, pool, now,
                        purpose, failure)
        if found is not None:
            return found
    return None


def _crl_issued_by(crl, issuer):
    if crl.issuer != issuer.subject:
        return False
    try:
        return crl.is_signature_valid(issuer.public_key())
    except (UnsupportedAlgorithm, TypeError, ValueError):
        return False


def _crl_number(crl):
    try:
        return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    except x509.ExtensionNotFound:
        return -1


def check_revocation(cert, issuer, crls, now=None):
    """Revocation status of ``cert`` from the CRLs of ``issuer`` among ``crls``.

    Only CRLs named for and signed by ``issuer`` count; the newest one (CRLNumber, then
    last update) decides. Returns a dict: ``status`` (one of REVOCATION_*), ``revoked_at`` and
    ``reason`` when revoked, ``crl_next_update`` of the CRL used.
    """
    now = now or utcnow()
    result = {"status": REVOCATION_NO_CRL, "revoked_at": None, "reason": None, "crl_next_update": None}
    own = [crl for crl in crls if _crl_issued_by(crl, issuer)]
    if not own:
        return result
    crl = max(own, key=lambda item: (_crl_number(item), crl_last_update(item)))
    next_update = crl_next_update(crl)
    result["crl_next_update"] = isoformat(next_update)
    if next_update is not None and next_update < now:
        result["status"] = REVOCATION_CRL_EXPIRED
        return result
    entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
    if entry is None:
        result["status"] = REVOCATION_GOOD
        return result
    result["status"] = REVOCATION_REVOKED
    result["revoked_at"] = isoformat(revocation_date(entry))
    try:
        result["reason"] = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason.value
    except x509.ExtensionNotFound:
        result["reason"] = None
    return result


def find_issuer(cert, candidates):
    """The certificate among ``candidates`` that signed ``cert``, or None."""
    for candidate in candidates:
        if issued_by(cert, candidate):
            return candidate
    return None
