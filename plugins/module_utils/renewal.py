# -*- coding: utf-8 -*-
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one renewal decision: does an installed identity need a (new) certificate, and why.

``needs_issue(cert, key, expected, now, chain)`` returns ``(needs, reason)``. The reasons are stable
strings that roles, reports and users match on. When several apply, the first in this order
wins (most fundamental first, so the reason names what a human must know):

==================  ================================================================
reason              meaning
==================  ================================================================
missing             no certificate is installed
unreadable          the certificate file is not a PEM certificate
key_missing         a certificate is installed but its private key is not
key_mismatch        the installed certificate does not belong to the private key
files_inconsistent  the chain file (``certs/<name>.chain.pem``, what servers present) is
                    missing, unreadable or does not start with the installed leaf: the
                    identity's files are not one set (an install killed between two
                    renames); only checked when the caller passes ``chain``
expired             the certificate's notAfter is in the past
not_yet_valid       the certificate's notBefore is in the future
issuer_untrusted    no certificate in the trusted issuers signed it (CA rotation: the
                    caller passes only the active issuing CA, so every leaf re-issues)
key_type_changed    the certificate's key type differs from the expected one
profile_changed     the certificate's EKU profile differs from the expected one
subject_changed     the certificate's common name differs from the expected one
sans_changed        the certificate's SANs differ from the expected set (order ignored)
renewal_window      inside the renewal window (detail says how many days are left)
forced              nothing is wrong but a re-issue was forced
valid               (needs is False) nothing to do
==================  ================================================================

``forced`` comes last on purpose: when something is actually wrong, that is the better reason.

The identity's files (key, leaf, chain, staged key) are one unit: ``key_mismatch`` and
``files_inconsistent`` catch every state an interrupted ``install_identity`` can leave, so the
next renewal check re-issues and the following install writes a consistent set again.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.fleet.mtls.plugins.module_utils.compat import (
    not_valid_after, not_valid_before, utcnow)
from ansible_collections.fleet.mtls.plugins.module_utils.errors import MtlsError
from ansible_collections.fleet.mtls.plugins.module_utils.x509_info import issued_by, load_certificates
from ansible_collections.fleet.mtls.plugins.module_utils.keys import (
    check_key_type, key_type_of, same_public_key)
from ansible_collections.fleet.mtls.plugins.module_utils.names import (
    canonical_sans, common_name_of, sans_of)
from ansible_collections.fleet.mtls.plugins.module_utils.profiles import check_profile, profile_of

try:
    from cryptography.hazmat.primitives import serialization
    HAS_CRYPTOGRAPHY = True
except ImportError:
    HAS_CRYPTOGRAPHY = False


REASONS = (
    "missing", "unreadable", "key_missing", "key_mismatch", "files_inconsistent", "expired", "not_yet_valid",
    "issuer_untrusted", "key_type_changed", "profile_changed", "subject_changed", "sans_changed",
    "renewal_window", "forced",
)
VALID = "valid"
DEFAULT_RENEW_FRACTION = 1.0 / 3

_SECONDS_PER_DAY = 86400.0


class Expected:
    """What the installed identity should look like. ``None`` means "do not check this".

    ``trusted_issuers``: certificates that may have signed the leaf (``[]`` trusts nobody).
    ``renew_fraction``/``renew_days``: renew when at most that fraction of the lifetime / that
    many days remain; with both, whichever comes first. With neither, 1/3 of the lifetime.
    """

    def __init__(self, common_name=None, sans=None, profile=None, key_type=None,
                 trusted_issuers=None, renew_fraction=None, renew_days=None, force=False):
        self.common_name = common_name
        self.sans = None if sans is None else canonical_sans(sans)
        self.profile = None if profile is None else check_profile(profile)
        self.key_type = None if key_type is None else check_key_type(key_type)
        self.trusted_issuers = None if trusted_issuers is None else list(trusted_issuers)
        if renew_fraction is not None and not 0 <= renew_fraction < 1:
            raise MtlsError("renew_fraction %r must be at least 0 and below 1" % (renew_fraction,))
        if renew_days is not None and renew_days < 0:
            raise MtlsError("renew_days %r must not be negative" % (renew_days,))
        if renew_fraction is None and renew_days is None:
            renew_fraction = DEFAULT_RENEW_FRACTION
        self.renew_fraction = renew_fraction
        self.renew_days = renew_days
        self.force = bool(force)


class Decision(tuple):
    """``(needs, reason)`` that also carries ``detail`` (human text), ``days_left`` and
    ``not_after`` (None without a readable certificate)."""

    def __new__(cls, needs, reason, detail="", days_left=None, not_after=None):
        decision = super(Decision, cls).__new__(cls, (needs, reason))
        decision.detail = detail
        decision.days_left = days_left
        decision.not_after = not_after
        return decision

    @property
    def needs(self):
        return self[0]

    @property
    def reason(self):
        return self[1]


def parse_certificate(data, source="certificate"):
    """The first certificate of PEM ``data`` (the leaf of a cert or chain file)."""
    return load_certificates(data, source)[0]


def days_between(later, earlier):
    return (later - earlier).total_seconds() / _SECONDS_PER_DAY


def renewal_threshold_days(lifetime_days, expected):
    """Days left at which renewal starts (the larger of the fraction and the fixed days)."""
    thresholds = []
    if expected.renew_fraction is not None:
        thresholds.append(lifetime_days * expected.renew_fraction)
    if expected.renew_days is not None:
        thresholds.append(float(expected.renew_days))
    return max(thresholds)


_UNCHECKED = object()


def needs_issue(cert, key, expected, now=None, chain=_UNCHECKED):
    """Decide whether the identity needs a certificate; returns a ``Decision`` (needs, reason).

    ``cert``: an ``x509.Certificate``, raw file bytes (parsed here; non-PEM -> "unreadable") or
    None (missing). ``key``: the private key the certificate must belong to, or None (missing).
    ``chain``: the chain file's bytes (None: missing) when its consistency with ``cert`` is to be
    checked; left out, it is not.
    """
    if now is None:
        now = utcnow()
    if cert is None:
        return Decision(True, "missing", "no certificate is installed")
    if isinstance(cert, (bytes, str)):
        try:
            cert = parse_certificate(cert)
        except MtlsError as exc:
            return Decision(True, "unreadable", str(exc))

    not_before, not_after = not_valid_before(cert), not_valid_after(cert)
    days_left = days_between(not_after, now)

    def decision(needs, reason, detail):
        return Decision(needs, reason, detail, days_left=days_left, not_after=not_after)

    if key is None:
        return decision(True, "key_missing", "the certificate is installed without its private key")
    if not same_public_key(key, cert.public_key()):
        return decision(True, "key_mismatch", "the certificate does not belong to the private key")
    if chain is not _UNCHECKED:
        problem = _chain_problem(cert, chain)
        if problem:
            return decision(True, "files_inconsistent", problem)
    if now > not_after:
        return decision(True, "expired", "expired %.1f days ago" % -days_left)
    if now < not_before:
        return decision(True, "not_yet_valid", "valid only from %s" % not_before.isoformat())
    if expected.trusted_issuers is not None and not any(
            issued_by(cert, issuer) for issuer in expected.trusted_issuers):
        return decision(True, "issuer_untrusted",
                        "issuer %s is not among the trusted issuers" % cert.issuer.rfc4514_string())
    if expected.key_type is not None:
        actual = _key_type_or_none(cert)
        if actual != expected.key_type:
            return decision(True, "key_type_changed", "key type %s, expected %s" % (actual, expected.key_type))
    if expected.profile is not None:
        actual = profile_of(cert)
        if actual != expected.profile:
            return decision(True, "profile_changed", "profile %s, expected %s" % (actual, expected.profile))
    if expected.common_name is not None:
        actual = common_name_of(cert.subject)
        if actual != expected.common_name:
            return decision(True, "subject_changed",
                            "common name %r, expected %r" % (actual, expected.common_name))
    if expected.sans is not None:
        actual = sans_of(cert)
        if set(actual) != set(expected.sans):
            return decision(True, "sans_changed", "SANs %s, expected %s"
                            % (", ".join(sorted(actual)) or "none", ", ".join(sorted(expected.sans)) or "none"))
    threshold = renewal_threshold_days(days_between(not_after, not_before), expected)
    if days_left <= threshold:
        return decision(True, "renewal_window", "%.1f days left, renewal starts at %.1f"
                        % (days_left, threshold))
    if expected.force:
        return decision(True, "forced", "re-issue forced (%.1f days left)" % days_left)
    return decision(False, VALID, "%.1f days left, renewal starts at %.1f" % (days_left, threshold))


def _chain_problem(cert, chain):
    if chain is None:
        return "the chain file is missing beside the certificate"
    try:
        first = parse_certificate(chain, "chain file")
    except MtlsError as exc:
        return "the chain file is unreadable: %s" % exc
    if first.public_bytes(serialization.Encoding.DER) != cert.public_bytes(serialization.Encoding.DER):
        return "the chain file starts with another certificate (serial %x) than the installed leaf (serial %x)" % (
            first.serial_number, cert.serial_number)
    return None


def _key_type_or_none(cert):
    try:
        return key_type_of(cert.public_key())
    except MtlsError:
        return None
