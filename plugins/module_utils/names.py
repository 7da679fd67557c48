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
from ansible_collections.fleet.mtls.plugins.module_utils.profiles import SERVER_PROFILES

try:
    from cryptography import x509
    from cryptography.x509.oid import NameOID
    HAS_CRYPTOGRAPHY = True
except ImportError:
    HAS_CRYPTOGRAPHY = False

try:
    import idna
    HAS_IDNA = True
except ImportError:  # Python's own codec (IDNA 2003) is the fallback, see encode_idna()
    HAS_IDNA = False

try:
    from publicsuffixlist import PublicSuffixList
    HAS_PUBLICSUFFIXLIST = True
except ImportError:  # the built-in conservative rule alone, see is_public_suffix()
    HAS_PUBLICSUFFIXLIST = False

_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_URI_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*$")
# RFC 3986 2.2/2.3: the characters a URI may hold literally; anything else must be percent-encoded.
_URI_CHARACTERS = re.compile(r"^[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*$")
_URI_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_URI_PORT = re.compile(r"^[0-9]{0,5}$")
_SPIFFE_TRUST_DOMAIN = re.compile(r"^[a-z0-9._-]+$")
_SPIFFE_SEGMENT = re.compile(r"^[A-Za-z0-9._-]+$")
_EMAIL_ATOM = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+$")
# Second-level labels that ccTLD registries sell names under (co.uk, com.au, ac.jp, ...): with a
# two-letter TLD they make a public suffix even where no public-suffix list is installed.
_GENERIC_SECOND_LEVEL = frozenset((
    "ac", "co", "com", "edu", "gob", "gov", "go", "gv", "info", "ltd", "mil", "ne", "net", "nic", "nom",
    "or", "org", "plc", "sch"))
_PUBLIC_SUFFIXES = []

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


def _printable(text, what, whitespace=False):
    """Refuse NUL, control characters and (unless ``whitespace``) whitespace, naming the position."""
    for position, char in enumerate(text):
        if ord(char) < 0x20 or 0x7f <= ord(char) < 0xa0:
            raise MtlsError("%s %r has a control character (U+%04X) at position %d" % (what, text, ord(char), position))
        if char.isspace() and not whitespace:
            raise MtlsError("%s %r has whitespace at position %d" % (what, text, position))


def encode_idna(name):
    """A-label (xn--) form of a non-ASCII DNS name.

    With the ``idna`` package: IDNA 2008 with UTS 46 mapping; without it: Python's codec (IDNA 2003).
    A name whose characters the mapping would change (ß, fullwidth letters, ...) is refused in both
    cases, so both give the same answer for every name they accept.
    """
    wanted = name.lower()
    try:
        if HAS_IDNA:
            encoded = idna.encode(name, uts46=True).decode("ascii")
            back = idna.decode(encoded)
        else:
            encoded = name.encode("idna").decode("ascii")
            back = encoded.encode("ascii").decode("idna")
    except (UnicodeError, ValueError) as exc:
        raise MtlsError("DNS name %r cannot be IDNA-encoded: %s" % (name, exc))
    if back != wanted:
        raise MtlsError("DNS name %r is not stable under IDNA mapping (it reads back as %r): write the "
                        "name you mean, or its xn-- form" % (name, back))
    return encoded


def _check_a_label(name, label):
    try:
        if HAS_IDNA:
            idna.decode(label)
        else:
            label.encode("ascii").decode("idna")
    except (UnicodeError, ValueError) as exc:
        raise MtlsError("invalid DNS name %r: label %r is not a valid IDNA A-label (%s)" % (name, label, exc))


def is_public_suffix(domain):
    """True when names are registered directly under ``domain`` (com, co.uk, github.io, ...).

    The conservative built-in rule always applies (a single label; a generic second-level label
    under a two-letter country code); the public-suffix list of the ``publicsuffixlist`` package
    (ICANN and private sections) adds to it when that package is installed.
    """
    labels = domain.split(".")
    if len(labels) < 2:
        return True
    if len(labels) == 2 and len(labels[1]) == 2 and labels[0] in _GENERIC_SECOND_LEVEL:
        return True
    if HAS_PUBLICSUFFIXLIST:
        if not _PUBLIC_SUFFIXES:
            _PUBLIC_SUFFIXES.append(PublicSuffixList())
        return bool(_PUBLIC_SUFFIXES[0].is_public(domain))
    return False


def validate_dns_name(name, allow_wildcard=True):
    """Return the canonical (lower-case, ASCII) DNS name or raise naming what is wrong with it.

    RFC 1123/5280 preferred name syntax: labels of 1-63 letters, digits and inner hyphens, at most
    253 characters, one optional trailing dot (dropped), a last label that is not all digits.
    Non-ASCII names are IDNA-encoded. A wildcard is the whole leftmost label of a name with at least
    two labels after it whose parent is not a public suffix.
    """
    if not isinstance(name, str) or not name:
        raise MtlsError("empty DNS name in subject alternative names")
    _printable(name, "DNS name")
    text = name[:-1] if name.endswith(".") else name
    if not text:
        raise MtlsError("DNS name %r is only the root: give a host name" % name)
    if any(not label for label in text.split(".")):
        raise MtlsError("invalid DNS name %r: it has an empty label (two dots in a row, or a leading dot)" % name)
    if not text.isascii():
        wildcard = text.startswith("*.")
        text = ("*." if wildcard else "") + encode_idna(text[2:] if wildcard else text)
    text = text.lower()
    if _is_ip(text):
        raise MtlsError("%r is an IP address, not a DNS name: write it as IP:%s" % (name, text))
    if len(text) > 253:
        raise MtlsError("DNS name %r is longer than 253 characters" % name)
    labels = text.split(".")
    if labels[0] == "*":
        if not allow_wildcard:
            raise MtlsError("wildcard DNS name %r is not allowed here" % name)
        if len(labels) == 1:
            raise MtlsError("bare wildcard %r is not allowed: it would match every name" % name)
        if len(labels) < 3:
            raise MtlsError("wildcard DNS name %r must have at least two labels after '*' (a wildcard on a "
                            "bare label or a top-level domain matches names of others)" % name)
        labels = labels[1:]
        if is_public_suffix(".".join(labels)):
            raise MtlsError("wildcard DNS name %r is on the public suffix %r: it would match domains of others"
                            % (name, ".".join(labels)))
    for label in labels:
        if "*" in label:
            raise MtlsError("invalid DNS name %r: a wildcard must be the whole leftmost label, as in *.example.com"
                            % name)
        if not _LABEL.match(label):
            raise MtlsError("invalid DNS name %r: label %r must be 1-63 letters, digits or inner hyphens"
                            % (name, label))
        if label.startswith("xn--"):
            _check_a_label(name, label)
    if labels[-1].isdigit():
        raise MtlsError("invalid DNS name %r: the last label is all digits (not a host name, nor an IP address)"
                        % name)
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


def uri_host(uri):
    """Host part of an absolute URI with an authority (lower case; an IPv6 literal without brackets)."""
    rest = uri.split("://", 1)[1]
    authority = re.split(r"[/?#]", rest, 1)[0]
    host = authority.rpartition("@")[2]
    if host.startswith("["):
        return host[1:host.index("]")] if "]" in host else host
    return host.partition(":")[0].lower()


def validate_uri(uri):
    """An absolute URI (RFC 3986) with scheme and authority, ASCII only, as RFC 5280 4.2.1.6 asks.

    Non-ASCII text (an IRI) is refused: percent-encode it and write an IDNA host as its xn-- form.
    SPIFFE IDs follow the SPIFFE ID rules (validate_spiffe_id).
    """
    if not isinstance(uri, str) or not uri:
        raise MtlsError("empty URI in subject alternative names")
    for position, char in enumerate(uri):
        if ord(char) < 0x21 or ord(char) == 0x7f:
            raise MtlsError("invalid URI %r: empty or contains whitespace or a control character (U+%04X at "
                            "position %d)" % (uri, ord(char), position))
    if not uri.isascii():
        raise MtlsError("invalid URI %r: it has non-ASCII characters; a certificate holds ASCII URIs only - "
                        "percent-encode them (RFC 3987 3.1) and write a non-ASCII host in its xn-- form" % (uri,))
    if not _URI_CHARACTERS.match(uri):
        raise MtlsError("invalid URI %r: characters such as < > \" { } | \\ ^ ` must be percent-encoded" % uri)
    if _URI_BAD_PERCENT.search(uri):
        raise MtlsError("invalid URI %r: '%%' must start a percent-encoding of two hex digits" % uri)
    scheme, sep, rest = uri.partition(":")
    if not sep or not _URI_SCHEME.match(scheme):
        raise MtlsError("invalid URI %r: it needs a scheme such as spiffe:// or https://" % uri)
    if scheme.lower() == "spiffe":
        return validate_spiffe_id(uri)
    if not rest.startswith("//"):
        raise MtlsError("invalid URI %r: it needs an authority after the scheme (%s://host/...)" % (uri, scheme))
    authority = re.split(r"[/?#]", rest[2:], 1)[0]
    host_port = authority.rpartition("@")[2]
    if host_port.startswith("["):
        host, bracket, port = host_port[1:].partition("]")
        if not bracket or (port and not port.startswith(":")):
            raise MtlsError("invalid URI %r: unterminated IPv6 literal" % uri)
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise MtlsError("invalid URI %r: %r is not an IPv6 address" % (uri, host))
        port = port[1:]
    else:
        host, dummy, port = host_port.partition(":")
        if not host:
            raise MtlsError("invalid URI %r: the host is empty" % uri)
        if not _is_ip(host):
            try:
                validate_dns_name(host, allow_wildcard=False)
            except MtlsError as exc:
                raise MtlsError("invalid URI %r: bad host: %s" % (uri, exc.message))
    if not _URI_PORT.match(port) or (port and int(port) > 65535):
        raise MtlsError("invalid URI %r: port %r is not a number up to 65535" % (uri, port))
    return uri


def validate_spiffe_id(uri):
    """SPIFFE ID rules: spiffe://<trust domain>/<path>, lower-case trust domain, no query/fragment."""
    prefix = "spiffe://"
    if not uri.startswith(prefix):
        raise MtlsError("invalid SPIFFE ID %r: must start with spiffe:// (lower case)" % uri)
    if len(uri.encode("utf-8")) > 2048:
        raise MtlsError("invalid SPIFFE ID %r: longer than 2048 bytes" % uri)
    rest = uri[len(prefix):]
    trust_domain, slash, path = rest.partition("/")
    check_spiffe_trust_domain(trust_domain, uri)
    if "?" in rest or "#" in rest:
        raise MtlsError("invalid SPIFFE ID %r: query and fragment are not allowed" % uri)
    if slash:
        for segment in path.split("/"):
            if not segment or segment in (".", "..") or not _SPIFFE_SEGMENT.match(segment):
                raise MtlsError("invalid SPIFFE ID %r: path segment %r is empty, dot-only or has a "
                                "character outside [A-Za-z0-9._-]" % (uri, segment))
    return uri


def check_spiffe_trust_domain(trust_domain, uri=None):
    what = "SPIFFE ID %r" % uri if uri else "SPIFFE trust domain %r" % (trust_domain,)
    if (not isinstance(trust_domain, str) or not trust_domain or len(trust_domain) > 255
            or not _SPIFFE_TRUST_DOMAIN.match(trust_domain)):
        raise MtlsError("invalid %s: trust domain must be lower-case letters, digits, '.', '-', '_' "
                        "(1-255 characters)" % what)
    return trust_domain


def validate_email(address):
    """An RFC 5321 mailbox with a dot-atom local part (ASCII) and a DNS domain (IDNA-encoded)."""
    if not isinstance(address, str) or address.count("@") != 1:
        raise MtlsError("invalid email address %r in subject alternative names" % (address,))
    _printable(address, "email address", whitespace=True)
    local, domain = address.split("@")
    if (not local or len(local) > 64 or not local.isascii()
            or not all(atom and _EMAIL_ATOM.match(atom) for atom in local.split("."))):
        raise MtlsError("invalid email address %r: bad local part (1-64 ASCII characters, dot-separated atoms, "
                        "no quoting)" % address)
    try:
        domain = validate_dns_name(domain, allow_wildcard=False)
    except MtlsError as exc:
        raise MtlsError("invalid email address %r: bad domain: %s" % (address, exc.message))
    return "%s@%s" % (local, domain)


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
        if any(ord(char) < 0x20 or 0x7f <= ord(char) < 0xa0 for char in value):
            raise MtlsError("subject %s %r has a control character" % (short, value))
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


# Name constraints (RFC 5280 4.2.1.10) a CA may carry, and the signer's check against them.

def build_name_constraints(permitted_dns_suffixes=None, spiffe_trust_domain=None):
    """x509.NameConstraints for a new CA, or None when nothing is constrained.

    ``permitted_dns_suffixes``: DNS names (a leading dot is allowed and dropped); each permits itself
    and every name below it. ``spiffe_trust_domain``: URI names must have this host, which is the
    trust domain of spiffe:// IDs. Other name types stay unconstrained.
    """
    permitted = []
    for suffix in permitted_dns_suffixes or []:
        if not isinstance(suffix, str) or not suffix.strip("."):
            raise MtlsError("permitted DNS suffix %r is empty" % (suffix,))
        try:
            name = validate_dns_name(suffix[1:] if suffix.startswith(".") else suffix, allow_wildcard=False)
        except MtlsError as exc:
            raise MtlsError("permitted DNS suffix %r: %s" % (suffix, exc.message))
        general = x509.DNSName(name)
        if general not in permitted:
            permitted.append(general)
    if spiffe_trust_domain:
        permitted.append(x509.UniformResourceIdentifier(check_spiffe_trust_domain(spiffe_trust_domain)))
    if not permitted:
        return None
    return x509.NameConstraints(permitted_subtrees=permitted, excluded_subtrees=None)


def name_constraints_of(cert):
    try:
        return cert.extensions.get_extension_for_class(x509.NameConstraints).value
    except x509.ExtensionNotFound:
        return None


def _dns_within(name, base):
    if not base:
        return True
    if base.startswith("."):  # OpenSSL's reading: names below the domain only
        return name.endswith(base.lower())
    base = base.lower()
    return name == base or name.endswith("." + base)


def _host_within(host, base):
    # RFC 5280: a URI/email constraint without a leading dot is one host; with one, hosts below it.
    base = base.lower()
    return host.endswith(base) if base.startswith(".") else host == base


def _email_within(address, base):
    local, dummy, domain = address.rpartition("@")
    if "@" in base:
        return address.lower() == base.lower()
    return _host_within(domain.lower(), base)


def _ip_within(address, network):
    # An IPAddress subtree is address + mask in one network object (cryptography parses it so).
    return address.version == network.version and address in network


def _directory_within(subject, base):
    return list(subject.rdns)[:len(base.rdns)] == list(base.rdns)


_CHECKS = {}
if HAS_CRYPTOGRAPHY:
    _CHECKS = {
        x509.DNSName: ("DNS", _dns_within),
        x509.UniformResourceIdentifier: ("URI", lambda value, base: _host_within(uri_host(value), base)),
        x509.RFC822Name: ("email", _email_within),
        x509.IPAddress: ("IP", _ip_within),
        x509.DirectoryName: ("dirName", _directory_within),
    }


def _leaf_names(subject, common_name, sans):
    """(GeneralName class, value) pairs that name constraints apply to."""
    names = [(x509.DirectoryName, subject)]
    for san in sans:
        kind, value = san.split(":", 1)
        if kind == "DNS":
            names.append((x509.DNSName, value))
        elif kind == "IP":
            names.append((x509.IPAddress, ipaddress.ip_address(value)))
        elif kind == "URI":
            names.append((x509.UniformResourceIdentifier, value))
        else:
            names.append((x509.RFC822Name, value))
    if common_name and not any(san.startswith("DNS:") for san in sans):
        # Like OpenSSL: without DNS SANs, a CN that looks like a host name (it has a dot) is one.
        try:
            dns = validate_dns_name(common_name, allow_wildcard=False)
        except MtlsError:
            dns = None
        if dns and "." in dns:
            names.append((x509.DNSName, dns))
    return names


def _subtree_text(general):
    label = _CHECKS.get(type(general), ("other",))[0]
    value = general.value.rfc4514_string() if isinstance(general, x509.DirectoryName) else general.value
    return "%s:%s" % (label, value)


def check_name_constraints(chain, subject, common_name, sans):
    """Refuse a leaf whose names fall outside the name constraints of any CA in ``chain``.

    ``chain`` is the signing CA followed by its issuers (a CA's constraints apply to everything
    below it). For each name type a CA permits subtrees of, every name of that type must be within
    one of them; no name may be within an excluded subtree.
    """
    names = _leaf_names(subject, common_name, sans)
    for ca in chain:
        constraints = name_constraints_of(ca)
        if constraints is None:
            continue
        where = "the name constraints of CA %s" % subject_string(ca.subject)
        subtrees = list(constraints.permitted_subtrees or []) + list(constraints.excluded_subtrees or [])
        for general in subtrees:
            if type(general) not in _CHECKS:
                raise MtlsError("%s hold a %s subtree, which this signer cannot check: refusing to sign"
                                % (where, type(general).__name__))
        for cls, value in names:
            label, within = _CHECKS[cls]
            shown = value.rfc4514_string() if cls is x509.DirectoryName else "%s:%s" % (label, value)
            permitted = [g for g in constraints.permitted_subtrees or [] if isinstance(g, cls)]
            if permitted and not any(within(value, g.value) for g in permitted):
                raise MtlsError("%s is outside %s (permitted: %s)"
                                % (shown, where, ", ".join(_subtree_text(g) for g in permitted)))
            for general in constraints.excluded_subtrees or []:
                if isinstance(general, cls) and within(value, general.value):
                    raise MtlsError("%s is excluded by %s (%s)" % (shown, where, _subtree_text(general)))


def common_name_san(profile, common_name):
    """The SAN a certificate's common name also is: for a server profile, a CN that is a DNS name or an
    IP address as its canonical ``DNS:``/``IP:`` string; else (client profile, no CN, a CN that is
    neither) None. THE rule, used by the signer (leaf_sans) and the identity role (identity_plan).
    """
    if profile not in SERVER_PROFILES or not isinstance(common_name, str) or not common_name:
        return None
    try:
        cn_san = canonical_san(common_name)
    except MtlsError:
        return None
    return cn_san if cn_san.startswith(("DNS:", "IP:")) else None


def leaf_sans(profile, common_name, requested_sans):
    """The SANs a leaf gets: exactly the requested ones, plus the CN for server profiles.

    Never the CSR's: a CSR proves possession of a key, nothing more. The csr module asks the same
    question before signing, so both must answer it here.
    """
    sans = canonical_sans(requested_sans)
    if profile in SERVER_PROFILES and common_name:
        cn_san = common_name_san(profile, common_name)
        if cn_san is None:
            raise MtlsError("common name %r of a %s certificate is not a DNS name or IP address: clients "
                            "match servers by SAN, so the CN must be one of them" % (common_name, profile))
        if cn_san not in sans:
            sans.append(cn_san)
    if profile in SERVER_PROFILES and not sans:
        raise MtlsError("a %s certificate needs at least one subject alternative name" % profile)
    return sans
