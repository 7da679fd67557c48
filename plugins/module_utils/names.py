# -*- coding: utf-8 -*-
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Subjects and subject alternative names: parsing, validation and the canonical string forms
(``DNS:host``, ``IP:addr``, ``URI:uri``, ``email:addr``) used in options, returns and the index."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import re

from ansible_collections.fleet.mtls.plugins.module_utils.errors import MtlsError

try:
    from cryptography import x509
    from cryptography.x509.oid import NameOID
    HAS_CRYPTOGRAPHY = True
except ImportError:
    HAS_CRYPTOGRAPHY = False

_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_URI_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*$")
_SPIFFE_TRUST_DOMAIN = re.compile(r"^[a-z0-9._-]+$")
_SPIFFE_SEGMENT = re.compile(r"^[A-Za-z0-9._-]+$")
_EMAIL_LOCAL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+$")

# Subject attribute names users may write, mapped to OIDs (short and long spellings).
SUBJECT_ATTRIBUTES = {}
if HAS_CRYPTOGRAPHY:
    for _names, _oid in (
            (("CN", "commonName", "common_name"), NameOID.COMMON_NAME),
            (("O", "organizationName", "organization_name"), NameOID.ORGANIZATION_NAME),
            (("OU", "organizationalUnitName", "organizational_unit_name"), NameOID.ORGANIZATIONAL_UNIT_NAME),
            (("C", "countryName", "country_name"), NameOID.COUNTRY_NAME),
            (("ST", "stateOrProvinceName", "state_or_province_name"), NameOID.STATE_OR_PROVINCE_NAME),
            (("L", "localityName", "locality_name"), NameOID.LOCALITY_NAME),
            (("emailAddress", "email_address"), NameOID.EMAIL_ADDRESS),
            (("serialNumber", "serial_number"), NameOID.SERIAL_NUMBER),
    ):
        for _name in _names:
            SUBJECT_ATTRIBUTES[_name] = _oid

# Order attributes appear in a built subject (most general first, CN last, like openssl's habit).
_SUBJECT_ORDER = ("C", "ST", "L", "O", "OU", "serialNumber", "emailAddress", "CN")
_MAX_LENGTH = {"CN": 64, "O": 64, "OU": 64, "L": 128, "ST": 128, "emailAddress": 255, "serialNumber": 64}


def validate_dns_name(name, allow_wildcard=True):
    """Return the lower-cased DNS name or raise naming what is wrong with it."""
    if not isinstance(name, str) or not name:
        raise MtlsError("empty DNS name in subject alternative names")
    text = name.lower().rstrip(".") if name != "." else name
    if _is_ip(text):
        raise MtlsError("%r is an IP address, not a DNS name: write it as IP:%s" % (name, text))
    if len(text) > 253:
        raise MtlsError("DNS name %r is longer than 253 characters" % name)
    labels = text.split(".")
    if labels[0] == "*":
        if not allow_wildcard:
            raise MtlsError("wildcard DNS name %r is not allowed here" % name)
        if len(labels) < 3:
            raise MtlsError("wildcard DNS name %r must have at least two labels after '*'" % name)
        labels = labels[1:]
    for label in labels:
        if not _LABEL.match(label):
            raise MtlsError("invalid DNS name %r: label %r must be 1-63 letters, digits or inner hyphens"
                            % (name, label))
    return text


def _is_ip(text):
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


def validate_ip(text):
    try:
        return ipaddress.ip_address(str(text).strip("[]"))
    except ValueError:
        raise MtlsError("invalid IP address %r in subject alternative names" % (text,))


def validate_uri(uri):
    if not isinstance(uri, str) or not uri or any(c.isspace() for c in uri):
        raise MtlsError("invalid URI %r: empty or contains whitespace" % (uri,))
    scheme, sep, rest = uri.partition(":")
    if not sep or not _URI_SCHEME.match(scheme.lower()):
        raise MtlsError("invalid URI %r: it needs a scheme such as spiffe:// or https://" % uri)
    if scheme.lower() == "spiffe":
        validate_spiffe_id(uri)
    elif not rest:
        raise MtlsError("invalid URI %r: nothing after the scheme" % uri)
    return uri


def validate_spiffe_id(uri):
    """SPIFFE ID rules: spiffe://<trust domain>/<path>, lower-case trust domain, no query/fragment."""
    prefix = "spiffe://"
    if not uri.startswith(prefix):
        raise MtlsError("invalid SPIFFE ID %r: must start with spiffe:// (lower case)" % uri)
    rest = uri[len(prefix):]
    trust_domain, slash, path = rest.partition("/")
    if not trust_domain or not _SPIFFE_TRUST_DOMAIN.match(trust_domain):
        raise MtlsError("invalid SPIFFE ID %r: trust domain must be lower-case letters, digits, '.', '-', '_'"
                        % uri)
    if "?" in rest or "#" in rest:
        raise MtlsError("invalid SPIFFE ID %r: query and fragment are not allowed" % uri)
    if slash:
        for segment in path.split("/"):
            if not segment or segment in (".", "..") or not _SPIFFE_SEGMENT.match(segment):
                raise MtlsError("invalid SPIFFE ID %r: path segment %r is empty, dot-only or has a "
                                "character outside [A-Za-z0-9._-]" % (uri, segment))
    return uri


def validate_email(address):
    if not isinstance(address, str) or address.count("@") != 1:
        raise MtlsError("invalid email address %r in subject alternative names" % (address,))
    local, domain = address.split("@")
    if not local or not _EMAIL_LOCAL.match(local):
        raise MtlsError("invalid email address %r: bad local part" % address)
    return "%s@%s" % (local, validate_dns_name(domain, allow_wildcard=False))


def canonical_san(entry):
    """One SAN string -> canonical ``TYPE:value``. A bare value is classified by its shape."""
    if not isinstance(entry, str) or not entry.strip():
        raise MtlsError("empty entry in subject alternative names")
    entry = entry.strip()
    kind, sep, value = entry.partition(":")
    kind_lower = kind.lower()
    if sep and kind_lower in ("dns", "ip", "uri", "email"):
        if kind_lower == "dns":
            return "DNS:" + validate_dns_name(value)
        if kind_lower == "ip":
            return "IP:" + str(validate_ip(value))
        if kind_lower == "uri":
            return "URI:" + validate_uri(value)
        return "email:" + validate_email(value)
    if sep and kind_lower in ("ip address", "dirname", "rid", "othername"):
        raise MtlsError("unsupported subject alternative name type %r in %r: use DNS, IP, URI or email"
                        % (kind, entry))
    if _is_ip(entry.strip("[]")):
        return "IP:" + str(validate_ip(entry))
    if "://" in entry:
        return "URI:" + validate_uri(entry)
    if "@" in entry:
        return "email:" + validate_email(entry)
    if sep and not entry.startswith("["):
        raise MtlsError("unknown subject alternative name type %r in %r: use DNS:, IP:, URI: or email:"
                        % (kind, entry))
    return "DNS:" + validate_dns_name(entry)


def canonical_sans(entries):
    """Validate a SAN list; returns canonical strings in order, duplicates removed."""
    if entries is None:
        return []
    if isinstance(entries, str):
        entries = [entries]
    result = []
    for entry in entries:
        canonical = canonical_san(entry)
        if canonical not in result:
            result.append(canonical)
    return result


def san_to_general_name(canonical):
    kind, value = canonical.split(":", 1)
    if kind == "DNS":
        return x509.DNSName(value)
    if kind == "IP":
        return x509.IPAddress(ipaddress.ip_address(value))
    if kind == "URI":
        return x509.UniformResourceIdentifier(value)
    return x509.RFC822Name(value)


def general_names_to_sans(general_names):
    """cryptography GeneralName objects -> canonical strings (unsupported kinds are skipped)."""
    result = []
    for name in general_names:
        if isinstance(name, x509.DNSName):
            result.append("DNS:" + name.value.lower())
        elif isinstance(name, x509.IPAddress):
            result.append("IP:" + str(name.value))
        elif isinstance(name, x509.UniformResourceIdentifier):
            result.append("URI:" + name.value)
        elif isinstance(name, x509.RFC822Name):
            result.append("email:" + name.value)
    return result


def sans_of(obj):
    """Canonical SAN strings of a certificate or CSR ([] when it has none)."""
    try:
        ext = obj.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return general_names_to_sans(ext.value)


def build_subject(common_name=None, subject=None):
    """x509.Name from a CN and/or a dict of attributes; ``common_name`` wins over subject['CN']."""
    values = {}
    for key, value in (subject or {}).items():
        if key not in SUBJECT_ATTRIBUTES:
            raise MtlsError("unknown subject attribute %r: use one of CN, O, OU, C, ST, L, emailAddress, "
                            "serialNumber" % (key,))
        short = _short_name(SUBJECT_ATTRIBUTES[key])
        values[short] = value
    if common_name:
        values["CN"] = common_name
    attributes = []
    for short in _SUBJECT_ORDER:
        value = values.get(short)
        if value is None or value == "":
            continue
        value = str(value)
        if short == "C" and (len(value) != 2 or not value.isalpha()):
            raise MtlsError("subject country %r must be a two-letter code" % value)
        limit = _MAX_LENGTH.get(short)
        if limit and len(value) > limit:
            raise MtlsError("subject %s %r is longer than %d characters" % (short, value, limit))
        attributes.append(x509.NameAttribute(SUBJECT_ATTRIBUTES[short], value))
    if not attributes:
        raise MtlsError("the subject is empty: give common_name or subject attributes")
    return x509.Name(attributes)


def _short_name(oid):
    for short in _SUBJECT_ORDER:
        if SUBJECT_ATTRIBUTES[short] == oid:
            return short
    raise MtlsError("unsupported subject attribute %s" % oid.dotted_string)


def common_name_of(name):
    attributes = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return attributes[0].value if attributes else None


def subject_string(name):
    """RFC 4514 string of an x509.Name (the form the index and returns use)."""
    return name.rfc4514_string()
