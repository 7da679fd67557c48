# -*- coding: utf-8 -*-
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checks of role inputs that an argument spec cannot express (uniqueness, patterns, "exactly one
of" across a site and its locations, strings that YAML may have turned into booleans).

Each function returns a list of problems, one sentence each naming the variable and the offending
item, so a role can stop with all of them at once; an empty list means the input is fine.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re

IDENTITY_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
IDENTITY_PROFILES = ("server", "client", "server_client")
SITE_NAME = re.compile(r"^[A-Za-z0-9_]+$")
ALLOW_CN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._@:*-]*$")
SERVES = ("proxy_pass", "root", "return")
MQTT_ACCESS = ("read", "write", "readwrite", "deny")


def _show(value):
    try:
        return json.dumps(value, sort_keys=True)
    except (TypeError, ValueError):
        return repr(value)


def _is_text(value):
    return isinstance(value, str)


def _duplicates(names):
    seen, repeated = set(), []
    for name in names:
        if name in seen and name not in repeated:
            repeated.append(name)
        seen.add(name)
    return repeated


def identity_problems(entries, variable="mtls_identities"):
    """Problems of a host's resolved identity list (the identity role's mtls_identity_list)."""
    if not isinstance(entries, list):
        return ["%s must be a list of identities, got %s" % (variable, _show(entries))]
    problems = []
    names = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            problems.append("%s[%d] must be a dict with at least 'name', got %s" % (variable, index, _show(entry)))
            continue
        name = entry.get("name")
        where = "%s[%d] (%s)" % (variable, index, _show(name))
        if not _is_text(name) or not IDENTITY_NAME.match(name):
            problems.append("%s: name must be 1-128 letters, digits, '.', '_' or '-' (not starting with '.' "
                            "or '-'), got %s" % (where, _show(name)))
        else:
            names.append(name)
        profile = entry.get("profile")
        if profile not in IDENTITY_PROFILES:
            problems.append("%s: profile must be one of %s, got %s" % (where, ", ".join(IDENTITY_PROFILES), _show(profile)))
        sans = entry.get("sans", [])
        if not isinstance(sans, list):
            problems.append("%s: sans must be a list such as [\"DNS:host.example\"], got %s" % (where, _show(sans)))
        else:
            for san in sans:
                if not _is_text(san):
                    problems.append("%s: every SAN must be a string such as \"DNS:host.example\", got %s"
                                    % (where, _show(san)))
    for name in _duplicates(names):
        problems.append("%s: name %s is used by %d entries; names must be unique"
                        % (variable, _show(name), names.count(name)))
    return problems


def consumer_problems(consumers, mtls_dir, identities, group_names=None):
    """What is wrong with a host's ``mtls_consumers`` (consumers.check_consumers: every problem names the
    consumer and the field), checked before the role changes anything; ``identities``: the host's
    resolved identity list (or their names). With ``group_names`` (a maintenance run, which applies
    its changes through the consumers only), also a service role's consumer the host lacks."""
    from ansible_collections.fleet.mtls.plugins.module_utils.consumers import (
        check_consumers, missing_service_consumers)
    from ansible_collections.fleet.mtls.plugins.module_utils.errors import MtlsError
    names = [entry.get("name") if isinstance(entry, dict) else entry for entry in identities or []]
    problems = missing_service_consumers(group_names, consumers) if group_names is not None else []
    try:
        check_consumers(consumers, str(mtls_dir), names)
    except MtlsError as exc:
        problems.extend(exc.details.get("problems") or [exc.message])
    return problems


def _serves(item):
    return [key for key in SERVES if item.get(key) not in (None, "")]


# Site and location fields that only make sense in a server block the role writes itself.
SERVER_BLOCK_FIELDS = ("listen", "server_name") + SERVES
NGINX_UPSTREAMS = ("none", "http", "https")
NGINX_MODES = ("managed", "snippets")


def _snippet_location_problems(site, locations, where):
    problems = []
    names = []
    for key in SERVER_BLOCK_FIELDS:
        if site.get(key) not in (None, "", []):
            problems.append("%s sets %s, which only a server block fleet.mtls.nginx writes uses (mtls_nginx_mode "
                            "managed); in snippets mode your own server block sets it" % (where, key))
    for holder, label in [(site, where)] + [(loc, "%s location %s" % (where, _show(loc.get("name"))))
                                            for loc in locations]:
        upstream = holder.get("upstream")
        if upstream is not None and upstream not in NGINX_UPSTREAMS:
            problems.append("%s: upstream must be one of %s, got %s" % (label, ", ".join(NGINX_UPSTREAMS), _show(upstream)))
    for location in locations:
        name = location.get("name")
        label = "%s location %s" % (where, _show(name))
        if not _is_text(name) or not SITE_NAME.match(name):
            problems.append("%s: in snippets mode every location needs a name (letters, digits and '_'; its "
                            "snippet is <site>/<name>.conf), got %s" % (where, _show(location)))
        else:
            names.append(name)
        for key in ("path",) + SERVES:
            if location.get(key) not in (None, ""):
                problems.append("%s sets %s, which only a location fleet.mtls.nginx writes uses (mtls_nginx_mode "
                                "managed); in snippets mode your own location block sets it" % (label, key))
        upstream = location.get("upstream", site.get("upstream")) or "none"
        server_name = location.get("upstream_server_name") or site.get("upstream_server_name")
        if upstream == "https" and not server_name:
            problems.append("%s: upstream https needs upstream_server_name (the name the upstream certificate must "
                            "carry), on the location or its site" % label)
    if not locations:
        upstream = site.get("upstream") or "none"
        if upstream == "https" and not site.get("upstream_server_name"):
            problems.append("%s: upstream https needs upstream_server_name (the name the upstream certificate must "
                            "carry)" % where)
    for name in _duplicates(names):
        problems.append("%s: location name %s is used by %d locations; names must be unique"
                        % (where, _show(name), names.count(name)))
    return problems


def _managed_location_problems(site, locations, where):
    problems = []
    if not site.get("server_name"):
        problems.append("%s needs a server_name" % where)
    if not locations and len(_serves(site)) != 1:
        problems.append("%s has no 'locations', so it needs exactly one of proxy_pass, root or return; got %s"
                        % (where, ", ".join(_serves(site)) or "none"))
    for holder, label in [(site, where)] + [(loc, "%s location %s" % (where, _show(loc.get("path"))))
                                            for loc in locations]:
        if holder.get("upstream") is not None:
            problems.append("%s sets upstream, which only mtls_nginx_mode snippets uses (here proxy_pass says it)"
                            % label)
    for location in locations:
        path = location.get("path")
        if not _is_text(path) or not path:
            problems.append("%s: every location needs a path, got %s" % (where, _show(location)))
        if len(_serves(location)) != 1:
            problems.append("%s location %s needs exactly one of proxy_pass, root or return; got %s"
                            % (where, _show(path), ", ".join(_serves(location)) or "none"))
    return problems


def nginx_site_problems(sites, variable="mtls_nginx_sites", mode="managed"):
    """Problems of mtls_nginx_sites the argument spec lets through, for ``mode`` (mtls_nginx_mode)."""
    if mode not in NGINX_MODES:
        return ["mtls_nginx_mode must be one of %s, got %s" % (", ".join(NGINX_MODES), _show(mode))]
    if not isinstance(sites, list):
        return ["%s must be a list of sites, got %s" % (variable, _show(sites))]
    problems = []
    names = []
    for index, site in enumerate(sites):
        if not isinstance(site, dict):
            problems.append("%s[%d] must be a dict, got %s" % (variable, index, _show(site)))
            continue
        name = site.get("name")
        where = "%s site %s" % (variable, _show(name))
        if not _is_text(name) or not SITE_NAME.match(name):
            problems.append("%s: name must use only letters, digits and '_'" % where)
        else:
            names.append(name)
        verify = site.get("verify_client", "on")
        if verify not in ("on", "optional"):
            # YAML 1.1 reads an unquoted `on` as true: refuse it rather than render `ssl_verify_client True;`.
            problems.append("%s: verify_client must be the string \"on\" or \"optional\" (quote it: an unquoted "
                            "on is the YAML boolean true), got %s" % (where, _show(verify)))
        locations = site.get("locations") or []
        if not isinstance(locations, list):
            problems.append("%s: locations must be a list, got %s" % (where, _show(locations)))
            locations = []
        for location in locations:
            if not isinstance(location, dict):
                problems.append("%s: every location must be a dict, got %s" % (where, _show(location)))
        locations = [location for location in locations if isinstance(location, dict)]
        if mode == "snippets":
            problems.extend(_snippet_location_problems(site, locations, where))
        else:
            problems.extend(_managed_location_problems(site, locations, where))
        label_key = "name" if mode == "snippets" else "path"
        for holder, label in [(site, where)] + [(loc, "%s location %s" % (where, _show(loc.get(label_key))))
                                                for loc in locations]:
            for cn in holder.get("allow_cn") or []:
                if not _is_text(cn) or not ALLOW_CN.match(cn):
                    problems.append("%s: allow_cn entry %s may only contain letters, digits, space and . _ @ : * - "
                                    "(use allow_dn for full subjects)" % (label, _show(cn)))
    for name in _duplicates(names):
        problems.append("%s: site name %s is used by %d sites; names must be unique"
                        % (variable, _show(name), names.count(name)))
    return problems


def _acl_rule_problems(rule, where):
    if not isinstance(rule, dict):
        return ["%s: every rule must be a dict {topic, access}, got %s" % (where, _show(rule))]
    problems = []
    topic = rule.get("topic")
    if not _is_text(topic) or not topic or topic.strip() != topic or "\n" in topic:
        problems.append("%s: topic must be one MQTT topic filter without surrounding spaces, got %s"
                        % (where, _show(topic)))
    if rule.get("access") not in MQTT_ACCESS:
        problems.append("%s: access of topic %s must be one of %s, got %s"
                        % (where, _show(topic), ", ".join(MQTT_ACCESS), _show(rule.get("access"))))
    return problems


def mosquitto_acl_problems(acls, patterns=None, anonymous=None):
    """Problems of mtls_mosquitto_acls, mtls_mosquitto_acl_patterns and mtls_mosquitto_anonymous_acl."""
    problems = []
    acls = acls or {}
    if not isinstance(acls, dict):
        return ["mtls_mosquitto_acls must map certificate CNs to rule lists, got %s" % _show(acls)]
    for identity, rules in acls.items():
        where = "mtls_mosquitto_acls[%s]" % _show(identity)
        if not _is_text(identity) or not identity or identity.strip() != identity or "\n" in identity:
            problems.append("%s: the identity must be a certificate CN without surrounding spaces" % where)
        if not isinstance(rules, list):
            problems.append("%s must be a list of {topic, access} rules, got %s" % (where, _show(rules)))
            continue
        for rule in rules:
            problems.extend(_acl_rule_problems(rule, where))
    for variable, rules in (("mtls_mosquitto_acl_patterns", patterns), ("mtls_mosquitto_anonymous_acl", anonymous)):
        if rules is None:
            continue
        if not isinstance(rules, list):
            problems.append("%s must be a list of {topic, access} rules, got %s" % (variable, _show(rules)))
            continue
        for rule in rules:
            problems.extend(_acl_rule_problems(rule, variable))
    return problems
