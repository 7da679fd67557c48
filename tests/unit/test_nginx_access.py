"""Which identity reaches which NGINX site and location: module_utils.nginx_access, the real site
template rendered from its plan, and the expectations fleet.mtls.verify takes from it.

The rendered file is read back by a small model of how NGINX applies it (ssl_verify_client, the
require_client_cert check, the allowlist map: exact keys first, then regexes in order), and what
that model answers must be what the Python decision says, for every combination of site and
location allowlists (none, allow_cn, allow_dn, both, an empty own list), verify_client and
require_client_cert, for clients on either list, on neither and without a certificate.
"""

from __future__ import annotations

import itertools
import re
import shutil
import subprocess
from pathlib import Path

import jinja2
import pytest

from ansible_collections.fleet.mtls.plugins.filter import nginx_access as access_filter
from ansible_collections.fleet.mtls.plugins.filter import fleet as fleet_filter
from ansible_collections.fleet.mtls.plugins.module_utils import nginx_access
from ansible_collections.fleet.mtls.plugins.module_utils.errors import MtlsError

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "roles" / "nginx" / "templates" / "fleet-mtls.conf.j2"

ROLE_VARS = {
    "mtls_dir": "/etc/mtls", "mtls_nginx_trust_bundle": "/etc/mtls/trust-bundle.pem", "mtls_nginx_crl": "/etc/mtls/crl.pem",
    "mtls_nginx_verify_depth": 2, "mtls_nginx_tls_protocols": ["TLSv1.2", "TLSv1.3"], "mtls_nginx_ciphers": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "mtls_nginx_session_cache": "shared:fleet_mtls:10m", "mtls_nginx_session_timeout": "5m", "mtls_nginx_session_tickets": False,
    "mtls_nginx_identity_headers": {"X-Client-Verify": "$ssl_client_verify", "X-Client-DN": "$ssl_client_s_dn"},
    "mtls_nginx_listen_ipv6": True,
}

# Allowlists a site or a location may carry ("inherit": the location sets neither list).
LISTS = {
    "inherit": {},
    "cn": {"allow_cn": ["alpha", "svc.a*b"]},
    "dn": {"allow_dn": ["CN=beta,O=Example"]},
    "both": {"allow_cn": ["gamma"], "allow_dn": ["CN=beta,O=Example"]},
    "empty": {"allow_cn": []},
}

# Verified client subjects as NGINX prints them (RFC 2253), and None for no certificate.
CLIENTS = {
    "alpha": "CN=alpha,O=Example",
    "wildcard-cn": "CN=svc.a*b,O=Example",
    "beta": "CN=beta,O=Example",
    "beta-other-org": "CN=beta,O=Other",
    "gamma": "CN=gamma",
    "nobody": "CN=nobody,O=Example",
    "escaped-comma": "CN=x\\,CN=alpha,O=Example",
    "no certificate": None,
}


# The README's example plus the other shapes a location can take; data/nginx-fleet-mtls.conf is
# what the template rendered for it before its rules moved to Python (the live file must not change).
GOLDEN_SITES = [
    {"name": "api", "server_name": ["api.example.net"], "listen": 443, "verify_client": "on",
     "allow_cn": ["billing", "reporting"], "proxy_pass": "http://127.0.0.1:8080"},
    {"name": "portal", "server_name": ["portal.example.net"], "verify_client": "optional", "allow_dn": ["CN=ops,O=Example"],
     "locations": [
         {"path": "/", "root": "/srv/portal"},
         {"path": "/admin/", "allow_dn": ["CN=ops,O=Example", 'CN=a "quoted" name'], "proxy_pass": "https://admin.internal:8443",
          "upstream_identity": "portal-client"},
         {"path": "/billing/", "allow_cn": ["billing.svc*"], "require_client_cert": True, "return": '200 "billing"'},
         {"path": "/open/", "allow_cn": [], "return": '200 "open"'},
         {"path": "/members/", "require_client_cert": True, "return": '200 "hello\\n"'}]},
    {"name": "edge", "server_name": "edge.example.net", "listen": 80, "identity": "edge", "verify_depth": 3,
     "upstream_server_name": "backend.internal", "proxy_pass": "https://10.0.0.9:8443"},
]


def _env():
    env = jinja2.Environment(trim_blocks=True, undefined=jinja2.StrictUndefined)
    for module in (access_filter, fleet_filter):
        for name, function in module.FilterModule().filters().items():
            env.filters["fleet.mtls." + name] = function
    return env


def render(sites, **extra):
    variables = dict(ROLE_VARS, mtls_nginx_sites=sites, **extra)
    variables["_mtls_nginx_plan"] = access_filter.nginx_plan(
        sites, server_identity="web1", upstream_identity="", mtls_dir="/etc/mtls", verify_depth=2)
    return _env().from_string(TEMPLATE.read_text()).render(**variables)


# ---- a model of NGINX reading the rendered file

def _unquote(text):
    """An NGINX quoted string as NGINX reads it: \\" and \\\\ unescaped, other escapes kept."""
    assert text[0] == text[-1] == '"', text
    out, body, index = [], text[1:-1], 0
    while index < len(body):
        if body[index] == "\\" and index + 1 < len(body) and body[index + 1] in '"\\':
            out.append(body[index + 1])
            index += 2
        else:
            out.append(body[index])
            index += 1
    return "".join(out)


def parse(conf):
    maps = {}
    for variable, body in re.findall(r'^map "\$ssl_client_verify \$ssl_client_s_dn" \$(\w+) \{\n(.*?)^\}', conf, re.M | re.S):
        entries = re.findall(r'^    (default|".*") (\d);$', body, re.M)
        assert entries and entries[0] == ("default", "0"), body
        maps[variable] = [_unquote(key) for key, value in entries[1:] if value == "1"]
    servers = []
    for body in re.split(r"^# ---- site ", conf, flags=re.M)[1:]:
        name = body.split("\n", 1)[0]
        verify = re.search(r"^    ssl_verify_client (\S+);$", body, re.M).group(1)
        locations = {}
        for path, block in re.findall(r"^    location (.+?) \{\n(.*?)^    \}$", body, re.M | re.S):
            allow = re.search(r"if \(\$(\w+) = 0\) \{\n\s+return 403;", block)
            locations[path] = {"require": "if ($ssl_client_verify != SUCCESS) {\n            return 403;" in block,
                               "allow": allow.group(1) if allow else None}
        servers.append({"name": name, "verify": verify, "locations": locations})
    return maps, servers


def nginx_answer(maps, server, path, subject):
    """403/400 as NGINX answers for a request at ``path``, or None when it serves the location."""
    verify = "SUCCESS" if subject else "NONE"
    if server["verify"] == "on" and not subject:
        return 400
    location = server["locations"][path]
    if location["require"] and verify != "SUCCESS":
        return 403
    if location["allow"]:
        value = "%s %s" % (verify, subject or "")
        keys = maps[location["allow"]]
        exact = [key for key in keys if not key.startswith("~")]
        regexes = [key[1:] for key in keys if key.startswith("~")]
        if value not in exact and not any(re.search(regex, value) for regex in regexes):
            return 403
    return None


def _sites(site_list, location_list, verify, require):
    return [
        dict({"name": "single", "server_name": ["a.test"], "verify_client": verify, "return": '200 "ok"'},
             **LISTS[site_list]),
        dict({"name": "multi", "server_name": ["b.test"], "listen": 8443, "verify_client": verify, "locations": [
            dict({"path": "/", "root": "/srv/www"}, **LISTS[location_list]),
            {"path": "/inherits/", "require_client_cert": require, "proxy_pass": "http://127.0.0.1:8080"},
            dict({"path": "= /exact", "require_client_cert": require, "return": '200 "exact"'}, **LISTS[location_list]),
        ]}, **LISTS[site_list]),
    ]


COMBINATIONS = list(itertools.product(LISTS, LISTS, ["on", "optional"], [False, True]))


@pytest.mark.parametrize("site_list,location_list,verify,require", COMBINATIONS,
                         ids=["site-%s/location-%s/%s/require-%s" % combo for combo in COMBINATIONS])
def test_rendered_rules_answer_what_python_decides(site_list, location_list, verify, require):
    sites = _sites(site_list, location_list, verify, require)
    maps, servers = parse(render(sites))
    rows = access_filter.nginx_access_table(sites)
    assert [server["name"] for server in servers] == ["single", "multi"]
    assert len(rows) == 4
    for client, subject in CLIENTS.items():
        rows = nginx_access.access_table(sites, subject=subject)
        for row in rows:
            server = next(server for server in servers if server["name"] == row["site"])
            expected = row["with_identity"] if subject else row["without_identity"]
            assert nginx_answer(maps, server, row["path"], subject) == expected["status"], (client, row)
            assert (expected["status"] is None) == (expected["outcome"] == nginx_access.ACCEPTED)


def test_location_allowlist_replaces_the_sites():
    """The reported bug: a location's own allow_cn under a site with allow_dn. The site's DN does
    not reach that location; NGINX answers 403 and verify must expect it."""
    sites = [{"name": "api", "server_name": ["api.test"], "allow_dn": ["CN=ops,O=Example"], "locations": [
        {"path": "/", "return": '200 "ok"'},
        {"path": "/billing/", "allow_cn": ["billing"], "return": '200 "billing"'}]}]
    ops = {row["path"]: row["with_identity"] for row in nginx_access.access_table(sites, subject="CN=ops,O=Example")}
    assert ops["/"] == {"outcome": "accepted", "status": None, "expect": "accepted"}
    assert ops["/billing/"] == {"outcome": "refused_allowlist", "status": 403, "expect": "rejected"}
    billing = {row["path"]: row["with_identity"]["outcome"]
               for row in nginx_access.access_table(sites, subject="CN=billing,O=Example")}
    assert billing == {"/": "refused_allowlist", "/billing/": "accepted"}
    maps, servers = parse(render(sites))
    assert nginx_answer(maps, servers[0], "/billing/", "CN=ops,O=Example") == 403
    targets = nginx_access.verify_targets([{"inventory_hostname": "web1", "mtls_nginx_sites": sites}],
                                          subject="CN=ops,O=Example", common_name="ops")
    assert [(t["http_path"], t["with_identity"], t["without_identity"]) for t in targets] == [
        ("/", "accepted", "rejected"), ("/billing/", "rejected", "rejected")]


def test_effective_access_per_location():
    site = {"name": "s", "verify_client": "optional", "allow_cn": ["a"], "allow_dn": ["CN=b"]}
    own_cn = nginx_access.location_access(site, {"path": "/x", "allow_cn": ["c"]})
    assert (own_cn["allow_cn"], own_cn["allow_dn"], own_cn["own_allowlist"]) == (["c"], [], True)
    inherited = nginx_access.location_access(site, {"path": "/y"})
    assert (inherited["allow_cn"], inherited["allow_dn"], inherited["own_allowlist"]) == (["a"], ["CN=b"], False)
    # An own empty list opens the location (the site's list no longer applies there).
    opened = nginx_access.location_access(site, {"path": "/z", "allow_dn": []})
    assert opened["restricted"] is False
    assert nginx_access.outcome(opened, False)["outcome"] == "accepted"
    assert nginx_access.outcome(inherited, False) == {"outcome": "refused_allowlist", "status": 403, "expect": "rejected"}
    required = nginx_access.location_access({"name": "s", "verify_client": "optional"}, {"require_client_cert": True})
    assert nginx_access.outcome(required, False) == {"outcome": "refused_no_certificate", "status": 403,
                                                     "expect": "rejected"}
    strict = nginx_access.location_access({"name": "s"}, {"path": "/"})
    assert nginx_access.outcome(strict, False)["status"] == 400
    # Only the CN known (mtls_verify_identity given): CN lists match by name, DN lists cannot.
    assert nginx_access.outcome(inherited, True, common_name="a")["outcome"] == "accepted"
    assert nginx_access.outcome(inherited, True, common_name="b")["outcome"] == "refused_allowlist"
    assert nginx_access.outcome(inherited, True, subject="CN=x\\,CN=a")["outcome"] == "refused_allowlist"
    assert nginx_access.outcome(inherited, True, subject="O=Ex,CN=a")["outcome"] == "accepted"


def test_role_plan_identities_files_and_default_site():
    sites = [
        {"name": "a", "server_name": "a.test", "proxy_pass": "https://up.test:8443"},
        {"name": "b", "server_name": ["b.test"], "identity": "b-server", "upstream_identity": "b-client", "listen": 80,
         "locations": [{"path": "/", "proxy_pass": "https://x.test"},
                       {"path": "/l/", "proxy_pass": "https://y.test", "upstream_identity": "l-client"},
                       {"path": "/plain/", "proxy_pass": "http://z.test", "upstream_identity": "unused"}]},
    ]
    plan = nginx_access.role_plan(sites, server_identity="web1", upstream_identity="up-client", mtls_dir="/m",
                                  identity_list=[{"name": "web1"}])
    assert plan["identities"] == ["web1", "up-client", "b-server", "b-client", "l-client"]
    assert plan["required_files"][:2] == ["/m/trust-bundle.pem", "/m/crl.pem"]
    assert plan["required_files"][2:4] == ["/m/certs/web1.chain.pem", "/m/private/web1.key"]
    assert len(plan["required_files"]) == 2 + 2 * 5
    assert plan["identity_role_files"] == ["/m/trust-bundle.pem", "/m/crl.pem", "/m/certs/web1.chain.pem",
                                           "/m/private/web1.key"]
    assert plan["drop_default_site"] is True
    assert plan["sites"][0]["locations"][0]["upstream_server_name"] == "up.test"
    assert plan["sites"][0]["server_names"] == ["a.test"]
    empty = nginx_access.role_plan([], server_identity="web1")
    assert (empty["identities"], empty["required_files"], empty["identity_role_files"]) == ([], [], [])
    assert [nginx_access.drop_default_site(sites[:1], value) for value in ("auto", "true", True, "false", False)] == [
        False, True, True, False, False]
    with pytest.raises(MtlsError, match="maybe"):
        nginx_access.drop_default_site([], "maybe")


def test_verify_targets_cover_every_location_a_path_reaches():
    sites = [{"name": "portal", "server_name": ["p.test"], "listen": 8444, "verify_client": "optional", "locations": [
        {"path": "/", "return": '200 "public"'},
        {"path": "/members/", "require_client_cert": True, "return": '200 "m"'},
        {"path": "~ \\.php$", "return": "403"},
        {"path": "@fallback", "return": "404"}]},
        {"name": "api", "server_name": ["api.test"], "allow_cn": ["app"], "return": '200 "ok"'}]
    hosts = [{"inventory_hostname": "web1", "ansible_host": "10.0.0.5", "mtls_nginx_sites": sites}]
    brokers = [{"inventory_hostname": "mq1"}]
    targets = nginx_access.verify_targets(hosts, brokers, subject="CN=app,O=Example", common_name="app")
    assert [(t["label"], t["host"], t["port"], t["http_path"], t["with_identity"], t["without_identity"])
            for t in targets] == [
        ("web1:8444 (portal) /", "10.0.0.5", 8444, "/", "accepted", "accepted"),
        ("web1:8444 (portal) /members/", "10.0.0.5", 8444, "/members/", "accepted", "rejected"),
        ("web1:443 (api)", "10.0.0.5", 443, "/", "accepted", "rejected"),
        ("mq1:8883 (mosquitto)", "mq1", 8883, "/", "accepted", "rejected")]
    assert targets[0]["server_name"] == "p.test" and targets[3]["protocol"] == "mqtt"
    other = nginx_access.verify_targets(hosts, subject="CN=other", common_name="other")
    assert [t["with_identity"] for t in other] == ["accepted", "accepted", "rejected"]


def test_bad_declarations_are_named():
    with pytest.raises(MtlsError, match="must be a list"):
        nginx_access.site_plan({"name": "x"})
    with pytest.raises(MtlsError, match="verify_client"):
        nginx_access.site_plan([{"name": "x", "verify_client": True, "return": "200"}])
    with pytest.raises(MtlsError, match="allow_cn must be a list"):
        nginx_access.site_plan([{"name": "x", "allow_cn": "app", "return": "200"}])
    with pytest.raises(Exception, match="fleet.mtls.nginx_plan: mtls_nginx_sites"):
        access_filter.nginx_plan("nope")


def test_rendered_file_is_what_the_template_rendered_before():
    expected = (Path(__file__).parent / "data" / "nginx-fleet-mtls.conf").read_text()
    assert render(GOLDEN_SITES) == expected


def test_quote():
    assert nginx_access.nginx_quote('a"b\\c') == '"a\\"b\\\\c"'


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed on this machine")
def test_nginx_accepts_every_rendered_combination(tmp_path):
    pki = tmp_path / "mtls"
    (pki / "certs").mkdir(parents=True)
    (pki / "private").mkdir()
    key = pki / "private" / "web1.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-subj", "/CN=web1", "-keyout", str(key), "-out", str(pki / "certs" / "web1.chain.pem"),
                    "-days", "1"], check=True, capture_output=True)
    shutil.copy(pki / "certs" / "web1.chain.pem", pki / "trust-bundle.pem")
    for site_list, location_list, verify, require in COMBINATIONS:
        conf = render(_sites(site_list, location_list, verify, require),
                      mtls_dir=str(pki), mtls_nginx_trust_bundle=str(pki / "trust-bundle.pem"))
        conf = conf.replace("    ssl_crl /etc/mtls/crl.pem;\n", "")
        main = tmp_path / "nginx.conf"
        main.write_text("pid %s/nginx.pid;\nerror_log stderr;\nevents {}\nhttp {\n%s\n}\n" % (tmp_path, conf))
        test = subprocess.run(["nginx", "-t", "-q", "-p", str(tmp_path), "-c", str(main)],
                              capture_output=True, text=True, check=False)
        assert test.returncode == 0, (site_list, location_list, verify, require, test.stderr)
