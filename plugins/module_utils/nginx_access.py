# -*- coding: utf-8 -*-
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which client identity reaches which NGINX site and location: the one implementation.

The fleet.mtls.nginx role renders what ``site_plan`` computes (its template only loops and prints),
takes the files it needs from ``role_plan``, and the fleet.mtls.verify playbook (also run by the
Verify play of fleet.mtls.site) takes its probes and their expectations from ``verify_targets``.

Rules (as documented in roles/nginx/README.md):

- A site without ``locations`` is one location ``/`` built from its own proxy_pass/root/return.
- A location's own ``allow_cn`` or ``allow_dn`` (either one set, even empty) REPLACES the site's
  allowlist for that location; otherwise the location inherits both lists of the site.
- ``verify_client "on"``: no valid certificate = HTTP 400 from NGINX for every location.
  ``optional``: ``require_client_cert`` answers 403 without a verified certificate, then an
  allowlist answers 403 to everybody not on it (a client without certificate included).
- ``allow_cn`` matches the RDN ``CN=<name>`` of the verified subject, not preceded by an escaped
  comma; ``allow_dn`` matches the whole verified subject as NGINX prints it (RFC 2253).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import posixpath
import re

from urllib.parse import urlsplit

from ansible_collections.fleet.mtls.plugins.module_utils.errors import MtlsError
from ansible_collections.fleet.mtls.plugins.module_utils.host_layout import HostLayout
from ansible_collections.fleet.mtls.plugins.module_utils.role_inputs import SERVES
DEFAULT_LISTEN = 443
DEFAULT_VERIFY_CLIENT = "on"

# Outcomes of one request at one location.
ACCEPTED = "accepted"
REFUSED_NO_CERTIFICATE = "refused_no_certificate"
REFUSED_ALLOWLIST = "refused_allowlist"
# HTTP status NGINX answers for each refusal.
NO_CERTIFICATE_STATUS = {"on": 400, "optional": 403}
ALLOWLIST_STATUS = 403

# mtls_nginx_mode: "managed" writes whole server blocks; "snippets" writes files a server block of
# another role includes (server-level TLS, location-level access and upstream TLS, http-level maps).
MODES = ("managed", "snippets")
UPSTREAMS = ("none", "http", "https")
# The name a site without locations gives its one location snippet.
IMPLICIT_LOCATION = "main"
# Where snippets mode renders its files before `nginx -t` accepted them (same tree as the live ones).
SNIPPET_STAGE = "/var/lib/fleet-mtls/nginx-snippets"
NGINX_CONF_DIR = "/etc/nginx"


def nginx_quote(value):
    """``value`` as one double-quoted NGINX string (backslashes and quotes escaped)."""
    return '"%s"' % str(value).replace("\\", "\\\\").replace('"', '\\"')


def cn_map_key(common_name):
    """The NGINX map key (quoted, as written in the file) that accepts a verified subject with the
    RDN CN=<name>.

    ``(.*[^\\\\],)?`` (NGINX reads ``[^\\]``): the RDN starts the subject or follows a comma that is
    not escaped, so a CN such as ``x\\,CN=admin`` cannot impersonate ``admin``. The name is written
    with re.escape; allowlisted CNs (role_inputs.ALLOW_CN) hold no quote or backslash, and NGINX
    keeps an unknown escape such as ``\\.`` as it is.
    """
    return '"~^SUCCESS (.*[^\\\\\\\\],)?CN=%s(,|$)"' % re.escape(common_name)


def _cn_regex(common_name):
    # The regex of cn_map_key as NGINX reads it.
    return re.compile(r"^(.*[^\\],)?CN=%s(,|$)" % re.escape(common_name))


def _list(value, what):
    if value is None:
        return []
    if not isinstance(value, (list, tuple)):
        raise MtlsError("%s must be a list, got %r" % (what, value))
    return [str(item) for item in value]


def _site_name(site, index):
    if not isinstance(site, dict):
        raise MtlsError("mtls_nginx_sites[%d] must be a dict, got %r" % (index, site))
    name = site.get("name")
    if not isinstance(name, str) or not name:
        raise MtlsError("mtls_nginx_sites[%d] has no name" % index)
    return name


def check_mode(mode):
    if mode not in MODES:
        raise MtlsError("mtls_nginx_mode must be one of %s, got %r" % (", ".join(MODES), mode))
    return mode


def site_locations(site, mode="managed"):
    """The site's locations, or the one location "/" a site without locations serves (in snippets
    mode: the one location snippet ``main``, with the site's ``upstream``)."""
    locations = site.get("locations") or []
    if not isinstance(locations, list):
        raise MtlsError("site %s: locations must be a list, got %r" % (site.get("name"), locations))
    if locations:
        for location in locations:
            if not isinstance(location, dict):
                raise MtlsError("site %s: every location must be a dict, got %r" % (site.get("name"), location))
        return locations
    if mode == "snippets":
        return [{"name": IMPLICIT_LOCATION, "upstream": site.get("upstream")}]
    location = {"path": "/"}
    for key in SERVES:
        location[key] = site.get(key)
    return [location]


def verify_client(site):
    value = site.get("verify_client", DEFAULT_VERIFY_CLIENT)
    if value is None:
        value = DEFAULT_VERIFY_CLIENT
    if value not in NO_CERTIFICATE_STATUS:
        raise MtlsError("site %s: verify_client must be \"on\" or \"optional\", got %r" % (site.get("name"), value))
    return value


def listen_port(site):
    value = site.get("listen")
    if value is None:
        return DEFAULT_LISTEN
    try:
        return int(value)
    except (TypeError, ValueError):
        raise MtlsError("site %s: listen must be a port number, got %r" % (site.get("name"), value))


def location_access(site, location):
    """Effective client verification and allowlist of one location of ``site``.

    Returns ``{verify_client, require_client_cert, allow_cn, allow_dn, restricted, own_allowlist}``.
    """
    own = location.get("allow_cn") is not None or location.get("allow_dn") is not None
    holder = location if own else site
    where = "site %s location %s" % (site.get("name"), location.get("path"))
    allow_cn = _list(holder.get("allow_cn"), "%s: allow_cn" % where)
    allow_dn = _list(holder.get("allow_dn"), "%s: allow_dn" % where)
    return {
        "verify_client": verify_client(site),
        "require_client_cert": bool(location.get("require_client_cert", False)),
        "allow_cn": allow_cn,
        "allow_dn": allow_dn,
        "restricted": bool(allow_cn or allow_dn),
        "own_allowlist": own,
    }


def on_allowlist(access, subject=None, common_name=None):
    """Whether a verified client passes the location's allowlist (True when there is none).

    ``subject`` is the RFC 2253 subject NGINX prints; with only ``common_name`` known, the CN list
    is matched by name and no DN entry can match.
    """
    if not access["restricted"]:
        return True
    if subject:
        if subject in access["allow_dn"]:
            return True
        return any(_cn_regex(cn).match(subject) for cn in access["allow_cn"])
    return bool(common_name) and common_name in access["allow_cn"]


def outcome(access, certificate=True, subject=None, common_name=None):
    """What NGINX does with a request at the location: ``{outcome, status, expect}``.

    ``certificate``: the client presents a certificate NGINX verifies (fleet CA, not revoked).
    ``status`` is the HTTP status of a refusal (None when accepted); ``expect`` is what
    fleet.mtls.tls_probe reports (``accepted`` or ``rejected``).
    """
    if not certificate:
        if access["verify_client"] == "on":
            result = (REFUSED_NO_CERTIFICATE, NO_CERTIFICATE_STATUS["on"])
        elif access["require_client_cert"]:
            result = (REFUSED_NO_CERTIFICATE, NO_CERTIFICATE_STATUS["optional"])
        elif access["restricted"]:
            # $ssl_client_verify is NONE, so the map gives 0.
            result = (REFUSED_ALLOWLIST, ALLOWLIST_STATUS)
        else:
            result = (ACCEPTED, None)
    elif on_allowlist(access, subject=subject, common_name=common_name):
        result = (ACCEPTED, None)
    else:
        result = (REFUSED_ALLOWLIST, ALLOWLIST_STATUS)
    return {"outcome": result[0], "status": result[1], "expect": "accepted" if result[0] == ACCEPTED else "rejected"}


def probe_path(path):
    """The request path that reaches a location, or None for one no fixed path is known to reach
    (regex ``~``/``~*`` and named ``@`` locations)."""
    text = str(path or "").strip()
    for prefix in ("= ", "^~ "):
        if text.startswith(prefix):
            text = text[len(prefix):].strip()
    return text if text.startswith("/") else None


def _first(*values):
    for value in values:
        if value not in (None, ""):
            return value
    return None


def _serves(location):
    for key in SERVES:
        if location.get(key) not in (None, ""):
            return key, location[key]
    return "return", None


def _upstream(site, location):
    value = _first(location.get("upstream"), site.get("upstream"), "none")
    if value not in UPSTREAMS:
        raise MtlsError("site %s location %s: upstream must be one of %s, got %r"
                        % (site.get("name"), location.get("name"), ", ".join(UPSTREAMS), value))
    return value


def site_plan(sites, server_identity="", upstream_identity="", verify_depth=None, mode="managed"):
    """Everything the site templates print, per site and per location, decided here.

    In snippets mode a location has a ``name`` (its snippet file) instead of a path and content;
    ``upstream`` (none, http, https) says whether its snippet carries the identity headers and, for
    https, the upstream TLS directives.
    """
    check_mode(mode)
    if sites is None:
        sites = []
    if not isinstance(sites, list):
        raise MtlsError("mtls_nginx_sites must be a list of sites, got %r" % (sites,))
    plan = []
    for index, site in enumerate(sites):
        name = _site_name(site, index)
        server_names = site.get("server_name")
        if isinstance(server_names, str):
            server_names = [server_names]
        locations = []
        for number, location in enumerate(site_locations(site, mode), 1):
            access = location_access(site, location)
            serves, target = _serves(location)
            entry = dict(access)
            entry.update({
                "name": location.get("name"),
                "path": location.get("path"),
                "probe_path": probe_path(location.get("path")),
                "serves": serves,
                "target": target,
                # The map variable holding 1 for an allowlisted client, None without an allowlist.
                "allow_variable": ("fleet_mtls_allow_%s_%d" % (name, number)) if access["restricted"] else None,
                "allow_keys": [nginx_quote("SUCCESS " + dn) for dn in access["allow_dn"]]
                + [cn_map_key(cn) for cn in access["allow_cn"]],
                "https_upstream": serves == "proxy_pass" and str(target).startswith("https://"),
                "proxied": serves == "proxy_pass",
                "upstream_identity": None,
                "upstream_server_name": None,
            })
            if mode == "snippets":
                # The user's own location block has the path and the content.
                upstream = _upstream(site, location)
                entry["serves"] = None
                entry["proxied"] = upstream != "none"
                entry["https_upstream"] = upstream == "https"
            if entry["https_upstream"]:
                entry["upstream_identity"] = _first(location.get("upstream_identity"), site.get("upstream_identity"),
                                                    upstream_identity)
                entry["upstream_server_name"] = _first(location.get("upstream_server_name"),
                                                       site.get("upstream_server_name"),
                                                       None if mode == "snippets" else urlsplit(str(target)).hostname)
                if not entry["upstream_server_name"]:
                    raise MtlsError("site %s location %s: upstream https needs upstream_server_name (the name the "
                                    "upstream certificate must carry)" % (name, location.get("name")))
            locations.append(entry)
        plan.append({
            "name": name,
            # Snippets mode: the user's own server block listens.
            "listen": listen_port(site) if mode == "managed" else None,
            "server_names": [str(item) for item in server_names or []],
            "identity": _first(site.get("identity"), server_identity),
            "verify_client": verify_client(site),
            "verify_depth": _first(site.get("verify_depth") or None, verify_depth),
            "locations": locations,
        })
    return plan


def identity_files(mtls_dir, name):
    """What NGINX reads of identity ``name``: its chain and key (the one on-host layout)."""
    layout = HostLayout(mtls_dir, name)
    return [layout.chain, layout.key]


def drop_default_site(sites, disable_default_site="auto"):
    """Whether Debian's default site goes: "true" always, "auto" when a site listens on port 80."""
    setting = str(disable_default_site).lower()
    if setting not in ("auto", "true", "false"):
        raise MtlsError("mtls_nginx_disable_default_site must be auto, \"true\" or \"false\", got %r"
                        % (disable_default_site,))
    if setting == "auto":
        return any(listen_port(site) == 80 for site in sites or [])
    return setting == "true"


def missing_nginx(mode, package, package_status, active_state=None):
    """Why this role cannot run in ``mode`` on a host with ``package_status`` (dpkg's status of
    ``package``) and the nginx unit's ``active_state``; "" when it can. Only snippets mode needs
    NGINX already installed and running (the managed mode installs and starts it)."""
    if check_mode(mode) == "managed":
        return ""
    if package_status != "installed":
        what = "package %s is not installed" % package
    elif active_state != "active":
        what = "the nginx service is %s, not active" % (active_state or "unknown")
    else:
        return ""
    return ("fleet.mtls.nginx runs with mtls_nginx_mode snippets, where the role that manages NGINX installs "
            "and starts it first; on this host %s. Nothing was changed." % what)


def _inside(path, directory, what):
    path = str(path or "")
    if not path.startswith("/") or posixpath.normpath(path) != path.rstrip("/") or path.rstrip("/") == directory:
        raise MtlsError("%s must be a normalised absolute path, got %r" % (what, path))
    if posixpath.commonpath([directory, path]) != directory:
        raise MtlsError("%s must be inside %s (the configuration `nginx -t` tests), got %r" % (what, directory, path))
    return path.rstrip("/")


def snippet_files(plan, snippets_dir, http_snippet):
    """The files snippets mode writes: ``{kind, dest, stage, site, location}``, ``kind`` being http
    (every allowlist map), server (one per site) or location (one per location of a site)."""
    snippets_dir = _inside(snippets_dir, NGINX_CONF_DIR, "mtls_nginx_snippets_dir")
    http_snippet = _inside(http_snippet, NGINX_CONF_DIR, "mtls_nginx_http_snippet_path")
    if posixpath.commonpath([snippets_dir, http_snippet]) == snippets_dir:
        raise MtlsError("mtls_nginx_http_snippet_path %r must not be inside mtls_nginx_snippets_dir %r (a server "
                        "block may include that directory with a wildcard)" % (http_snippet, snippets_dir))
    files = [{"kind": "http", "dest": http_snippet, "site": None, "location": None}]
    for site_index, site in enumerate(plan):
        files.append({"kind": "server", "dest": "%s/%s/server.conf" % (snippets_dir, site["name"]),
                      "site": site_index, "location": None})
        for location_index, location in enumerate(site["locations"]):
            files.append({"kind": "location", "dest": "%s/%s/%s.conf" % (snippets_dir, site["name"], location["name"]),
                          "site": site_index, "location": location_index})
    for entry in files:
        entry["stage"] = SNIPPET_STAGE + entry["dest"]
    return files


def role_plan(sites, server_identity="", upstream_identity="", mtls_dir="/etc/mtls", trust_bundle=None, crl=None,
              disable_default_site="auto", identity_list=None, verify_depth=None, mode="managed",
              snippets_dir="/etc/nginx/fleet-mtls", http_snippet="/etc/nginx/conf.d/fleet-mtls-maps.conf"):
    """What the fleet.mtls.nginx role needs besides the templates.

    ``identities``: server identities and client identities of https upstreams; ``required_files``:
    the trust bundle and CRL (when there are sites) and every identity's chain and key;
    ``identity_role_files``: the files the identity role installs on this host in this play (its
    ``mtls_identity_list``; None when it did not run); ``drop_default_site``.

    Snippets mode adds ``snippets`` (see ``snippet_files``), the directories they live in
    (``snippet_directories``, staged and live) and ``snippet_places`` (``--place STAGE=DEST`` of
    nginx-config-test); Debian's default site is never touched there.
    """
    plan = site_plan(sites, server_identity, upstream_identity, verify_depth, mode)
    identities = []
    for site in plan:
        names = [site["identity"]] + [location["upstream_identity"] for location in site["locations"]]
        for name in names:
            if name and name not in identities:
                identities.append(name)
    trust_bundle = trust_bundle or "%s/trust-bundle.pem" % mtls_dir
    crl = crl or "%s/crl.pem" % mtls_dir
    required = [trust_bundle, crl] if plan else []
    for name in identities:
        required.extend(identity_files(mtls_dir, name))
    role_files = []
    if identity_list is not None:
        role_files = ["%s/trust-bundle.pem" % mtls_dir, "%s/crl.pem" % mtls_dir]
        for entry in identity_list:
            role_files.extend(identity_files(mtls_dir, entry["name"]))
    result = {
        "mode": mode,
        "sites": plan,
        "identities": identities,
        "required_files": required,
        "identity_role_files": role_files,
        "drop_default_site": drop_default_site(sites, disable_default_site) and mode == "managed",
        "snippets": [],
        "snippet_directories": [],
        "snippet_places": [],
    }
    if mode == "snippets":
        files = snippet_files(plan, snippets_dir, http_snippet)
        directories = []
        for entry in files:
            for path in (entry["stage"], entry["dest"]):
                directory = posixpath.dirname(path)
                if directory not in directories:
                    directories.append(directory)
        result["snippets"] = files
        result["snippet_directories"] = directories
        result["snippet_places"] = ["--place=%s=%s" % (entry["stage"], entry["dest"]) for entry in files]
    return result


def access_table(sites, subject=None, common_name=None):
    """Per site and location: the effective verification and allowlist, and the outcome for a
    client with identity ``subject``/``common_name`` and for a client without a certificate."""
    rows = []
    for site in site_plan(sites):
        for location in site["locations"]:
            rows.append({
                "site": site["name"], "path": location["path"], "verify_client": location["verify_client"],
                "require_client_cert": location["require_client_cert"], "allow_cn": location["allow_cn"],
                "allow_dn": location["allow_dn"], "own_allowlist": location["own_allowlist"],
                "with_identity": outcome(location, True, subject=subject, common_name=common_name),
                "without_identity": outcome(location, False),
            })
    return rows


def _host_value(host, key, default=None):
    value = host.get(key) if hasattr(host, "get") else None
    return default if value is None else value


def verify_targets(nginx_hosts, mosquitto_hosts=None, subject=None, common_name=None):
    """The probes of fleet.mtls.verify with their expectations, for a client with identity
    ``subject``/``common_name`` (either may be empty).

    ``nginx_hosts``/``mosquitto_hosts``: the hostvars of each service host (``inventory_hostname``,
    ``ansible_host``, ``mtls_nginx_sites``, ``mtls_mosquitto_port``). One probe per location a
    fixed path reaches (the first location of a site claiming a path wins, as in NGINX for equal
    prefixes); a broker accepts every fleet identity and refuses a client without one.
    """
    targets = []
    for host in nginx_hosts or []:
        if _host_value(host, "mtls_nginx_mode", "managed") == "snippets":
            # Its server blocks (ports, names, locations) belong to another role: nothing to probe here.
            continue
        server = _host_value(host, "inventory_hostname")
        address = _host_value(host, "ansible_host", server)
        for site in site_plan(_host_value(host, "mtls_nginx_sites", [])):
            seen = set()
            for location in site["locations"]:
                path = location["probe_path"]
                if path is None or path in seen:
                    continue
                seen.add(path)
                label = "%s:%s (%s)" % (server, site["listen"], site["name"])
                if len(site["locations"]) > 1:
                    label += " %s" % location["path"]
                targets.append({
                    "label": label, "host": address, "port": site["listen"],
                    "server_name": site["server_names"][0] if site["server_names"] else server,
                    "protocol": "http", "http_path": path,
                    "with_identity": outcome(location, True, subject=subject, common_name=common_name)["expect"],
                    "without_identity": outcome(location, False)["expect"],
                })
    for host in mosquitto_hosts or []:
        server = _host_value(host, "inventory_hostname")
        port = _host_value(host, "mtls_mosquitto_port", 8883)
        targets.append({
            "label": "%s:%s (mosquitto)" % (server, port), "host": _host_value(host, "ansible_host", server),
            "port": port, "server_name": server, "protocol": "mqtt", "http_path": "/",
            "with_identity": "accepted", "without_identity": "rejected",
        })
    return targets
