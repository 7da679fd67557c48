# -*- coding: utf-8 -*-
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The decisions of the fleet.mtls.identity role, on plain data (the role's filters call these).

- ``default_profile``, ``default_key_group``, ``default_sans``, ``default_identities``: a host's
  default identity, from its groups and facts.
- ``resolve_identities``: ``mtls_identities`` with every setting resolved (``mtls_identity_list``).
- ``declared_common_name``: the common name an identity of a host is issued for (what the vault
  backend's revocation looks for).
- ``batch_plan``: from the csr results of every host of a play batch, the requests to sign, their
  names for messages, and the key files to remove when signing fails.
- ``identities_to_check``: the identities host_status found due, the only ones the csr module is
  run for.
- ``issued_for_host``: the certificates one signing run made for a host, and their issuer chain.
- ``install_calls``: the install_identity calls of a host: its certificates, the trust bundle and
  CRLs riding along where they can.
- ``install_changes`` / ``any_change``: ``mtls_identity_changes`` and ``mtls_identity_changed``.

Entries that are not what the role expects (not a dict, ``sans`` not a list) pass through as they
are, so ``role_inputs.identity_problems`` names them afterwards.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.fleet.mtls.plugins.module_utils.errors import MtlsError
from ansible_collections.fleet.mtls.plugins.module_utils.names import _is_ip, canonical_san, common_name_san
from ansible_collections.fleet.mtls.plugins.module_utils.profiles import profile_named

SERVER_GROUPS = ("mtls_nginx", "mtls_mosquitto")
# Mosquitto reads its key after dropping privileges to its own user; NGINX reads keys as root.
KEY_GROUPS = (("mtls_mosquitto", "mosquitto"),)
CLIENT_GROUPS = ("mtls_clients",)

# Settings of an mtls_identities entry that leaves them out and that no role variable sets.
ENTRY_DEFAULTS = {
    "profile": "server",
    "sans": [],
    "owner": "root",
    "group": "root",
    "mode": "0600",
    "central_key": False,
}
# Settings whose default is a role variable: passed in by the role.
ROLE_DEFAULTS = ("key_type", "validity_days", "new_key_on_renew", "renew_fraction", "renew_days")

# How many host/identity names a message lists before it says how many more there are.
NAMES_SHOWN = 20


def _members(groups, names):
    members = set()
    for name in names:
        members.update((groups or {}).get(name) or [])
    return members


def default_profile(host, groups):
    """Profile of the host's default identity: ``server`` in mtls_nginx or mtls_mosquitto, ``client`` in
    mtls_clients, ``server_client`` in both, ``""`` (no default identity) in none."""
    return profile_named(host in _members(groups, SERVER_GROUPS), host in _members(groups, CLIENT_GROUPS)) or ""


def default_key_group(host, groups):
    """Group that may read the default identity's key: ``mosquitto`` in mtls_mosquitto, else ``root``."""
    for group, key_group in KEY_GROUPS:
        if host in _members(groups, (group,)):
            return key_group
    return "root"


# Stands in ``sans`` for the default SANs when the controller has no facts of the host and they are
# to be read on the host (fleet.mtls.rotate's check gathers none): fleet.mtls.host_status puts
# default_sans() with the host's own facts in its place (expand_default_sans). No SAN starts with "@".
DEFAULT_SANS_ON_HOST = "@fleet.mtls:default-sans-on-host:"


def default_sans(inventory_name, fqdn="", hostname="", default_ipv4="", on_host=False):
    """SANs of the default identity: the FQDN, the host name and the inventory name as ``DNS:`` (the
    inventory name as ``IP:`` when it is an address), then the default IPv4 address unless it is the
    inventory name. Empty values are left out, repeated ones listed once.

    ``on_host``: when no fact is known (all three empty), one DEFAULT_SANS_ON_HOST marker instead,
    for fleet.mtls.host_status to expand with the facts it reads on the host."""
    if on_host and not (fqdn or hostname or default_ipv4):
        return [DEFAULT_SANS_ON_HOST + inventory_name]
    dns, ips = [], []
    for name in (fqdn, hostname, inventory_name):
        if name and not _is_ip(name) and "DNS:" + name not in dns:
            dns.append("DNS:" + name)
    if inventory_name and _is_ip(inventory_name):
        ips.append("IP:" + inventory_name)
    if default_ipv4 and default_ipv4 != inventory_name:
        ips.append("IP:" + default_ipv4)
    return dns + ips


def needs_host_facts(identities):
    """Whether any identity's ``sans`` holds a DEFAULT_SANS_ON_HOST marker."""
    return any(isinstance(san, str) and san.startswith(DEFAULT_SANS_ON_HOST)
               for entry in (identities if isinstance(identities, list) else [])
               if isinstance(entry, dict) and isinstance(entry.get("sans"), list)
               for san in entry["sans"])


def expand_default_sans(identities, fqdn="", hostname="", default_ipv4=""):
    """``identities`` with every DEFAULT_SANS_ON_HOST marker replaced by default_sans() of the host
    it names and the facts given, each SAN listed once (compared canonically, first one kept)."""
    if not isinstance(identities, list):
        return identities
    expanded = []
    for entry in identities:
        if not isinstance(entry, dict) or not isinstance(entry.get("sans"), list):
            expanded.append(entry)
            continue
        sans, seen = [], set()
        for san in entry["sans"]:
            if isinstance(san, str) and san.startswith(DEFAULT_SANS_ON_HOST):
                found = default_sans(san[len(DEFAULT_SANS_ON_HOST):], fqdn, hostname, default_ipv4)
            else:
                found = [san]
            for one in found:
                key = _canonical_or_raw(one) if isinstance(one, str) else repr(one)
                if key not in seen:
                    seen.add(key)
                    sans.append(one)
        expanded.append(dict(entry, sans=sans))
    return expanded


def default_identities(name, profile, sans, key_group):
    """The default mtls_identities: one identity named after the short host name with the default
    profile, SANs and key group (mode 0640 when the group is not root), none without a profile."""
    if not profile:
        return []
    return [{"name": name, "profile": profile, "sans": sans, "group": key_group,
             "mode": "0600" if key_group == "root" else "0640"}]


def _canonical_or_raw(san):
    try:
        return canonical_san(san)
    except MtlsError:
        return san


def resolve_identity(entry, defaults):
    """One mtls_identities entry with every setting resolved.

    ``defaults`` holds the role-level defaults (``key_type``, ``validity_days``, ``new_key_on_renew``,
    ``renew_fraction``, ``renew_days``; a missing or None ``renew_days`` means "by fraction only").
    An entry that sets ``renew_days`` but no ``renew_fraction`` renews by days only. The common name
    defaults to the name; a server certificate's common name that is a host name or address is also
    a SAN (the signer adds it, ``names.common_name_san``), so it is put first in ``sans`` unless
    already there (compared canonically).
    """
    if not isinstance(entry, dict):
        return entry
    # ansible-core 2.16 renders a role default that templates to None (an unset
    # mtls_identity_renew_days) as "": both mean "not set".
    defaults = dict((key, None if value == "" and key in ("renew_fraction", "renew_days") else value)
                    for key, value in (defaults or {}).items())
    merged = dict(ENTRY_DEFAULTS)
    merged["sans"] = []
    for key in ("key_type", "validity_days", "new_key_on_renew"):
        merged[key] = defaults.get(key)
    merged.update(entry)
    common_name = entry.get("common_name") or entry.get("name")
    merged["common_name"] = common_name
    if "renew_fraction" in entry:
        merged["renew_fraction"] = entry["renew_fraction"]
    else:
        merged["renew_fraction"] = None if "renew_days" in entry else defaults.get("renew_fraction")
    merged["renew_days"] = entry["renew_days"] if "renew_days" in entry else defaults.get("renew_days")
    sans = merged["sans"]
    cn_san = common_name_san(merged["profile"], common_name)
    if cn_san is not None and isinstance(sans, list) and cn_san not in [_canonical_or_raw(san) for san in sans]:
        merged["sans"] = [cn_san] + sans
    return merged


def resolve_identities(entries, defaults):
    """mtls_identities -> mtls_identity_list (see resolve_identity). A non-list is returned as it is."""
    if not isinstance(entries, list):
        return entries
    return [resolve_identity(entry, defaults or {}) for entry in entries]


def declared_identities(hostvars, host):
    """[(name, common name)] of the identities the inventory declares for ``host``: its
    ``mtls_identities`` entries (``common_name``, else the name), or, without that variable, its default
    identity named after its short host name. ``hostvars`` maps inventory names to their variables."""
    if not host or not isinstance(host, str):
        raise MtlsError("the host must be an inventory name, got %r" % (host,))
    if host not in hostvars:
        raise MtlsError("%s is not a host of the inventory" % host)
    entries = hostvars[host].get("mtls_identities")
    if entries is None:
        default_name = host.split(".")[0]
        return [(default_name, default_name)]
    if not isinstance(entries, list):
        raise MtlsError("mtls_identities of %s must be a list, got %s" % (host, type(entries).__name__))
    return [(entry.get("name"), entry.get("common_name") or entry.get("name"))
            for entry in entries if isinstance(entry, dict)]


def declared_identity_names(hostvars, host):
    """The names of the identities the inventory declares for ``host`` (``declared_identities``)."""
    return [name for name, dummy in declared_identities(hostvars, host)]


def declared_common_name(hostvars, host, identity, recorded=None):
    """The common name of ``identity`` on ``host``, what a revocation on a PKI engine that knows no
    identity names looks for: the one the host's manifest ``recorded`` (the identities it holds, what
    their certificates were issued with, whoever declared them), else the one the inventory declares
    (``declared_identities``)."""
    if not identity or not isinstance(identity, str):
        raise MtlsError("the identity to revoke on %s must be a name, got %r" % (host, identity))
    for entry in recorded or []:
        if isinstance(entry, dict) and entry.get("name") == identity and entry.get("common_name"):
            return entry["common_name"]
    declared = declared_identities(hostvars, host)
    if hostvars[host].get("mtls_identities") is None and identity != declared[0][0]:
        raise MtlsError("%s sets no mtls_identities: its only identity is the default one, %s, not %s"
                        % (host, declared[0][0], identity))
    for name, common_name in declared:
        if name == identity:
            return common_name
    raise MtlsError("%s declares no identity %s (its identities: %s)"
                    % (host, identity, ", ".join(str(name) for name, dummy in declared) or "none"))


def settings_by_name(identities):
    """Resolved identities by name."""
    return dict((entry["name"], entry) for entry in identities)


def identities_to_check(identity_list, status, central_key=False):
    """The entries of ``identity_list`` (mtls_identity_list) that fleet.mtls.csr has to look at: those
    whose entry in ``status`` (fleet.mtls.host_status's result, same decision and options) is due -
    a certificate to issue or key file attributes to put right - with host-made keys, or with
    ``central_key`` the centrally keyed ones. A host that only needs its trust bundle, CRLs or a
    reload checks none. Without a status (no identities entry) every entry is checked."""
    entries = [entry for entry in identity_list or [] if bool(entry.get("central_key")) == bool(central_key)]
    answers = (status or {}).get("identities")
    if answers is None:
        return entries
    due = set(answer["name"] for answer in answers if answer.get("due"))
    return [entry for entry in entries if entry["name"] in due]


def _request(host, check):
    item = check["item"]
    request = {"identity": item["name"], "host": host, "profile": item["profile"], "sans": item["sans"],
               "common_name": item["common_name"], "validity_days": int(item["validity_days"])}
    if item.get("central_key"):
        request["key_type"] = item["key_type"]
    else:
        request["csr"] = check.get("csr")
    return request


def pending_requests(checks_by_host):
    """Every identity whose check says it needs a certificate, in batch order.

    ``checks_by_host`` is a list of ``(host, [csr results])`` (the registered loop results of both
    checks, host-made keys first). Each pending entry: ``host``, ``identity``, ``reason``,
    ``central_key`` and the ``request`` for the signer: a CSR from the host's own key, or (central_key)
    a key type for a key the signer generates. Reason and central_key stay outside the request.
    """
    pending = []
    for host, checks in checks_by_host:
        for check in checks:
            if not check.get("needs_issue"):
                continue
            item = check["item"]
            pending.append({"host": host, "identity": item["name"], "reason": check.get("reason"),
                            "central_key": bool(item.get("central_key")), "request": _request(host, check)})
    return pending


def pending_names(pending, shown=NAMES_SHOWN):
    """``host/identity`` of the pending requests, for messages: the first ``shown``, then how many more."""
    text = ", ".join("%s/%s" % (entry["host"], entry["identity"]) for entry in pending[:shown])
    if len(pending) > shown:
        text += " and %d more" % (len(pending) - shown)
    return text


def pending_summary(pending):
    """``host/identity/reason`` of every pending request (what check mode would issue, and why)."""
    return ", ".join("%s/%s/%s" % (entry["host"], entry["identity"], entry["reason"]) for entry in pending)


def unsigned_files(checks_by_host):
    """Key files (and their CSRs) that the host-made-key checks generated in this run: when signing
    fails no certificate uses them, and the role removes them again. ``checks_by_host`` as in
    pending_requests, but only the host-made-key checks."""
    files = []
    for host, checks in checks_by_host:
        for check in checks:
            if check.get("key_created"):
                files.append({"host": host, "path": check["key_path"]})
                files.append({"host": host, "path": check["csr_path"]})
    return files


def batch_plan(csr_checks_by_host, central_checks_by_host):
    """Everything the signing step needs from the checks of a play batch.

    Both arguments are lists of ``(host, [results])`` in batch order: the checks of host-made keys and
    of centrally keyed identities. Returns ``pending`` (see pending_requests), ``csr_requests`` and
    ``central_requests`` (the requests of the two signing calls), ``names`` and ``summary`` (for
    messages) and ``unsigned_files`` (see unsigned_files).
    """
    central = dict(central_checks_by_host)
    pending = pending_requests([(host, list(checks) + list(central.get(host, [])))
                                for host, checks in csr_checks_by_host])
    return {
        "pending": pending,
        "csr_requests": [entry["request"] for entry in pending if not entry["central_key"]],
        "central_requests": [entry["request"] for entry in pending if entry["central_key"]],
        "names": pending_names(pending),
        "summary": pending_summary(pending),
        "unsigned_files": unsigned_files(csr_checks_by_host),
    }


def issued_for_host(host, signed, central_signed):
    """What the batch's signing calls made for ``host``: ``certificates`` (host-made keys first, then
    central ones), ``central`` (only the central ones: their keys wait on the CA holder) and
    ``ca_chain`` (the issuer chain, returned once per call; the same signing CA signs both)."""
    signed = signed or {}
    central_signed = central_signed or {}
    central = [cert for cert in central_signed.get("certificates") or [] if cert.get("host") == host]
    own = [cert for cert in signed.get("certificates") or [] if cert.get("host") == host]
    if "ca_chain" in signed:
        ca_chain = signed["ca_chain"]
    else:
        ca_chain = central_signed.get("ca_chain", "")
    return {"certificates": own + central, "central": central, "ca_chain": ca_chain}


# install_identity gives every file of a call the call's owner and group. The trust bundle and CRLs
# are the host's, shared by all its identities, so they ride only with an identity whose files have
# the default owner and group (root's, as when they are installed alone).
_SHARED_FILES_ATTRIBUTES = (ENTRY_DEFAULTS["owner"], ENTRY_DEFAULTS["group"])


def install_calls(issue, settings, trust_bundle, crl_bundle, ca_ready=True, has_identities=True,
                  record_manifest=False, manifest_identities=None, manifest_consumers=None):
    """The fleet.mtls.install_identity calls of one host, in order.

    ``issue`` is what the signing run made for the host (issued_for_host: its certificates and their
    issuer chain), ``settings`` the resolved settings by identity name (settings_by_name),
    ``trust_bundle`` and ``crl_bundle`` what the CA publishes.
    Every certificate whose identity files are root's carries the trust bundle and CRLs, so they are
    verified and written in the same staged commit as the certificate (one call instead of two).
    When none can carry them (no certificate, or only identities owned by a service user, which
    must not become the bundles' owner), one call for the bundles alone comes first, so every
    certificate is verified against the bundle it is installed next to. Nothing is installed
    before the CA has published (``ca_ready``), and a host without identities gets no bundles.
    With ``record_manifest`` (host_status found the manifest outdated) the last call also records
    ``manifest_identities`` and ``manifest_consumers`` in the host's manifest, written after
    everything else of that call; a host with no other call gets one for the manifest alone.

    Each call: ``identity`` (None for the bundles alone), ``certificate``, ``chain``, ``serial``,
    ``owner``, ``group``, ``mode``, ``trust_bundle_content`` and ``crl_content`` (None when not
    carried), ``manifest_identities`` and ``manifest_consumers`` (None when not recorded) and
    ``label`` (for the task's output).
    """
    issue = issue or {}
    bundles = {"trust_bundle_content": trust_bundle, "crl_content": crl_bundle}
    carriers, others = [], []
    for cert in issue.get("certificates") or []:
        entry = settings[cert["identity"]]
        call = {"identity": cert["identity"], "certificate": cert["certificate"], "chain": issue.get("ca_chain"),
                "serial": cert.get("serial"),
                "owner": entry["owner"], "group": entry["group"], "mode": entry["mode"],
                "trust_bundle_content": None, "crl_content": None,
                "label": "%s (serial %s)" % (cert["identity"], cert.get("serial"))}
        if ca_ready and (entry["owner"], entry["group"]) == _SHARED_FILES_ATTRIBUTES:
            call.update(bundles)
            call["label"] += " with the trust bundle and CRLs"
            carriers.append(call)
        else:
            others.append(call)
    calls = carriers + others
    nothing = {"identity": None, "certificate": None, "chain": None, "serial": None, "owner": None, "group": None,
               "mode": None, "trust_bundle_content": None, "crl_content": None}
    if ca_ready and not carriers and (has_identities or calls):
        calls.insert(0, dict(nothing, label="trust bundle and CRLs", **bundles))
    for call in calls:
        call.update(manifest_identities=None, manifest_consumers=None)
    if record_manifest:
        if calls:
            calls[-1]["label"] += " and the manifest"
        else:
            calls.append(dict(nothing, label="manifest"))
        calls[-1].update(manifest_identities=list(manifest_identities or []),
                         manifest_consumers=list(manifest_consumers or []))
    return calls


def install_changes(install_results, trust_result=None):
    """mtls_identity_changes: names whose leaf changed, names whose key changed, whether the trust
    bundle and the CRL bundle changed. ``install_results`` are the registered loop results of the
    installs (install_calls; skipped ones have no ``changes``, the bundles-only call no identity),
    ``trust_result`` a separate bundle install, if any: a bundle changed when any call changed it."""
    results = [result for result in install_results or [] if "changes" in result]
    trust = ((trust_result or {}).get("changes")) or {}
    identities = [result for result in results if (result.get("item") or {}).get("identity")]
    return {
        "certificates": [result["item"]["identity"] for result in identities if result["changes"].get("certificate")],
        "keys": [result["item"]["identity"] for result in identities if result["changes"].get("key")],
        "trust": bool(trust.get("trust_bundle")) or any(result["changes"].get("trust_bundle") for result in results),
        "crl": bool(trust.get("crl")) or any(result["changes"].get("crl") for result in results),
    }


def any_change(changes):
    """mtls_identity_changed: whether anything in mtls_identity_changes changed."""
    return bool(changes["certificates"] or changes["keys"] or changes["trust"] or changes["crl"])
