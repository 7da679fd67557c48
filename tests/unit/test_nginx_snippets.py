"""mtls_nginx_mode snippets of the fleet.mtls.nginx role: the plan, its input checks and the real
snippet templates, which must print the same directives as the managed site template for the
same data (nothing decided twice), only split into server, location and http-level files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ansible_collections.fleet.mtls.plugins.filter import nginx_access as access_filter
from ansible_collections.fleet.mtls.plugins.module_utils import nginx_access, role_inputs
from ansible_collections.fleet.mtls.plugins.module_utils.errors import MtlsError

from test_nginx_access import ROLE_VARS, TEMPLATE, _env

TEMPLATES = Path(TEMPLATE).parent
SNIPPET_VARS = dict(ROLE_VARS, mtls_nginx_snippets_dir="/etc/nginx/fleet-mtls",
                    mtls_nginx_http_snippet_path="/etc/nginx/conf.d/fleet-mtls-maps.conf")

# The same access rules, once as a whole server block and once as snippets.
ACCESS = {"verify_client": "optional", "allow_dn": ["CN=ops,O=Example"], "verify_depth": 3}
MANAGED = [dict(ACCESS, name="web", server_name=["web.test"], locations=[
    {"path": "/", "proxy_pass": "http://127.0.0.1:8080"},
    {"path": "/admin/", "allow_cn": ["admin.svc*"], "require_client_cert": True, "proxy_pass": "https://backend:8443",
     "upstream_server_name": "backend.internal", "upstream_identity": "web-client"},
    {"path": "/open/", "allow_cn": [], "return": '200 "open"'},
])]
SNIPPETS = [dict(ACCESS, name="web", locations=[
    {"name": "app", "upstream": "http"},
    {"name": "admin", "allow_cn": ["admin.svc*"], "require_client_cert": True, "upstream": "https",
     "upstream_server_name": "backend.internal", "upstream_identity": "web-client"},
    {"name": "open", "allow_cn": []},
])]


def _plan(sites, mode):
    return access_filter.nginx_plan(sites, server_identity="web1", upstream_identity="", mtls_dir="/etc/mtls",
                                    verify_depth=2, mode=mode)


def render_snippets(sites):
    plan = _plan(sites, "snippets")
    env = _env()
    files = {}
    for entry in plan["snippets"]:
        site = plan["sites"][entry["site"]] if entry["site"] is not None else None
        location = site["locations"][entry["location"]] if entry["location"] is not None else None
        template = env.from_string((TEMPLATES / ("snippet-%s.conf.j2" % entry["kind"])).read_text())
        files[entry["dest"]] = template.render(dict(SNIPPET_VARS, mtls_nginx_sites=sites, _mtls_nginx_plan=plan,
                                                    site=site, location=location))
    return plan, files


def render_managed(sites):
    variables = dict(ROLE_VARS, mtls_nginx_sites=sites, _mtls_nginx_plan=_plan(sites, "managed"))
    return _env().from_string(TEMPLATE.read_text()).render(**variables)


def _directives(text):
    """The directive lines of a configuration text, without indentation and comments."""
    lines = [line.strip() for line in text.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def _managed_location(conf, path):
    return re.search(r"^    location %s \{\n(.*?)^    \}$" % re.escape(path), conf, re.M | re.S).group(1)


def test_plan_lists_every_snippet_with_its_stage_and_place():
    plan = _plan(SNIPPETS, "snippets")
    assert [(entry["kind"], entry["dest"]) for entry in plan["snippets"]] == [
        ("http", "/etc/nginx/conf.d/fleet-mtls-maps.conf"),
        ("server", "/etc/nginx/fleet-mtls/web/server.conf"),
        ("location", "/etc/nginx/fleet-mtls/web/app.conf"),
        ("location", "/etc/nginx/fleet-mtls/web/admin.conf"),
        ("location", "/etc/nginx/fleet-mtls/web/open.conf"),
    ]
    assert all(entry["stage"] == nginx_access.SNIPPET_STAGE + entry["dest"] for entry in plan["snippets"])
    assert plan["snippet_places"][1] == ("--place=/var/lib/fleet-mtls/nginx-snippets/etc/nginx/fleet-mtls/web/"
                                         "server.conf=/etc/nginx/fleet-mtls/web/server.conf")
    assert "/etc/nginx/fleet-mtls/web" in plan["snippet_directories"]
    assert "/var/lib/fleet-mtls/nginx-snippets/etc/nginx/conf.d" in plan["snippet_directories"]
    assert plan["identities"] == ["web1", "web-client"]
    assert plan["drop_default_site"] is False
    assert plan["sites"][0]["listen"] is None
    assert [location["proxied"] for location in plan["sites"][0]["locations"]] == [True, True, False]
    # Managed mode has none of it.
    managed = _plan(MANAGED, "managed")
    assert managed["snippets"] == managed["snippet_places"] == []
    assert managed["identities"] == plan["identities"]
    assert managed["required_files"] == plan["required_files"]


def test_a_site_without_locations_has_one_location_snippet_main():
    plan = _plan([{"name": "solo", "allow_cn": ["app"], "upstream": "https", "upstream_server_name": "up"}], "snippets")
    assert [entry["dest"] for entry in plan["snippets"]][-1] == "/etc/nginx/fleet-mtls/solo/main.conf"
    assert plan["sites"][0]["locations"][0]["https_upstream"] is True


def test_snippets_print_what_the_managed_server_block_prints():
    managed = render_managed(MANAGED)
    plan, files = render_snippets(SNIPPETS)
    server = _directives(files["/etc/nginx/fleet-mtls/web/server.conf"])
    managed_lines = _directives(managed)
    # Every server-level TLS directive of the managed block, in the same order, and nothing else.
    start = managed_lines.index(server[0])
    assert managed_lines[start:start + len(server)] == server
    assert "ssl_verify_client optional;" in server and "ssl_verify_depth 3;" in server
    # The maps: identical, only at http level.
    maps = _directives(files["/etc/nginx/conf.d/fleet-mtls-maps.conf"])
    assert maps == managed_lines[:managed_lines.index("server {")]
    assert len([line for line in maps if line.startswith("map ")]) == 2
    # Per location: the managed location's directives minus what the user's own location block holds.
    user_owned = re.compile(r"^(proxy_pass |root |return (?!403;)|proxy_set_header (Host|X-Forwarded-For|X-Forwarded-Proto) )")
    for path, name in (("/", "app"), ("/admin/", "admin"), ("/open/", "open")):
        expected = [line for line in _directives(_managed_location(managed, path)) if not user_owned.match(line)]
        assert _directives(files["/etc/nginx/fleet-mtls/web/%s.conf" % name]) == expected, name
    admin = files["/etc/nginx/fleet-mtls/web/admin.conf"]
    assert "proxy_ssl_name backend.internal;" in admin
    assert "proxy_ssl_certificate     /etc/mtls/certs/web-client.chain.pem;" in admin
    assert "if ($ssl_client_verify != SUCCESS) {" in admin
    assert _directives(files["/etc/nginx/fleet-mtls/web/open.conf"]) == []


@pytest.mark.parametrize("site, expected", [
    ({"name": "a", "listen": 443}, 'site "a" sets listen, which only a server block fleet.mtls.nginx writes uses'),
    ({"name": "a", "server_name": ["a"]}, 'site "a" sets server_name'),
    ({"name": "a", "proxy_pass": "http://x"}, 'site "a" sets proxy_pass'),
    ({"name": "a", "locations": [{"name": "x", "path": "/"}]},
     'site "a" location "x" sets path, which only a location fleet.mtls.nginx writes uses'),
    ({"name": "a", "locations": [{"name": "x", "return": "200"}]}, 'location "x" sets return'),
    ({"name": "a", "locations": [{"upstream": "http"}]}, "in snippets mode every location needs a name"),
    ({"name": "a", "locations": [{"name": "x/y"}]}, "in snippets mode every location needs a name"),
    ({"name": "a", "locations": [{"name": "x"}, {"name": "x"}]}, 'location name "x" is used by 2 locations'),
    ({"name": "a", "locations": [{"name": "x", "upstream": "ftp"}]}, 'location "x": upstream must be one of none, http, https'),
    ({"name": "a", "locations": [{"name": "x", "upstream": "https"}]}, 'location "x": upstream https needs upstream_server_name'),
    ({"name": "a", "upstream": "https"}, 'site "a": upstream https needs upstream_server_name'),
])
def test_snippet_mode_problems_name_the_field(site, expected):
    problems = role_inputs.nginx_site_problems([site], mode="snippets")
    assert any(expected in problem for problem in problems), problems


def test_mode_specific_fields_and_unknown_mode():
    assert role_inputs.nginx_site_problems(SNIPPETS, mode="snippets") == []
    assert role_inputs.nginx_site_problems(MANAGED) == []
    # upstream (snippets mode) and a site without server_name are refused in managed mode.
    problems = role_inputs.nginx_site_problems(
        [{"name": "a", "upstream": "http", "return": "200"}], mode="managed")
    assert problems == ['mtls_nginx_sites site "a" needs a server_name',
                        'mtls_nginx_sites site "a" sets upstream, which only mtls_nginx_mode snippets uses '
                        '(here proxy_pass says it)']
    assert role_inputs.nginx_site_problems([], mode="both") == [
        'mtls_nginx_mode must be one of managed, snippets, got "both"']
    with pytest.raises(MtlsError, match="mtls_nginx_mode must be one of managed, snippets"):
        nginx_access.site_plan([], mode="both")


@pytest.mark.parametrize("snippets_dir, http_snippet, expected", [
    ("/srv/nginx", "/etc/nginx/conf.d/m.conf", "mtls_nginx_snippets_dir must be inside /etc/nginx"),
    ("/etc/nginx/x/../../srv", "/etc/nginx/conf.d/m.conf", "mtls_nginx_snippets_dir must be a normalised"),
    ("etc/nginx/x", "/etc/nginx/conf.d/m.conf", "mtls_nginx_snippets_dir must be a normalised absolute"),
    ("/etc/nginx", "/etc/nginx/conf.d/m.conf", "mtls_nginx_snippets_dir must be a normalised"),
    ("/etc/nginx/fleet", "/tmp/m.conf", "mtls_nginx_http_snippet_path must be inside /etc/nginx"),
    ("/etc/nginx/fleet", "/etc/nginx/fleet/m.conf", "must not be inside mtls_nginx_snippets_dir"),
])
def test_snippet_paths_stay_inside_the_tested_configuration(snippets_dir, http_snippet, expected):
    with pytest.raises(MtlsError, match=expected):
        nginx_access.role_plan(SNIPPETS, server_identity="web1", mode="snippets", snippets_dir=snippets_dir,
                               http_snippet=http_snippet)


def test_verify_skips_hosts_whose_server_blocks_another_role_writes():
    hosts = [{"inventory_hostname": "web", "mtls_nginx_sites": MANAGED},
             {"inventory_hostname": "user", "mtls_nginx_mode": "snippets", "mtls_nginx_sites": SNIPPETS}]
    assert {target["host"] for target in nginx_access.verify_targets(hosts)} == {"web"}


def test_missing_nginx_is_named_in_snippets_mode_only():
    assert access_filter.nginx_missing("managed", "nginx", "not-installed", None) == ""
    assert access_filter.nginx_missing("snippets", "nginx", "installed", "active") == ""
    assert "package nginx-full is not installed. Nothing was changed." in access_filter.nginx_missing(
        "snippets", "nginx-full", "not-installed", None)
    assert "the nginx service is inactive, not active" in access_filter.nginx_missing(
        "snippets", "nginx", "installed", "inactive")
    assert "the nginx service is unknown, not active" in access_filter.nginx_missing("snippets", "nginx", "installed")
    with pytest.raises(Exception, match="fleet.mtls.nginx_missing: mtls_nginx_mode must be one of"):
        access_filter.nginx_missing("other")
