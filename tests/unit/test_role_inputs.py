"""Role input checks: every problem is reported at once, naming the variable, the item and the value."""

from __future__ import annotations

import pytest

from ansible_collections.fleet.mtls.plugins.filter.role_inputs import FilterModule
from ansible_collections.fleet.mtls.plugins.module_utils import role_inputs

SITE = {"name": "api", "server_name": ["api.test"], "return": '200 "ok"'}


def test_filters_are_the_library_functions():
    filters = FilterModule().filters()
    assert filters["identity_problems"] is role_inputs.identity_problems
    assert filters["nginx_site_problems"] is role_inputs.nginx_site_problems
    assert filters["mosquitto_acl_problems"] is role_inputs.mosquitto_acl_problems


def test_good_inputs_have_no_problems():
    assert role_inputs.identity_problems([{"name": "web-1.a_b", "profile": "server", "sans": ["DNS:web"]},
                                          {"name": "app", "profile": "server_client"}]) == []
    sites = [dict(SITE), {"name": "b_2", "server_name": ["b"], "verify_client": "optional", "allow_cn": ["app 1"],
                          "locations": [{"path": "/", "proxy_pass": "http://x", "allow_cn": ["app.svc*"]},
                                        {"path": "/s", "root": "/srv"}]}]
    assert role_inputs.nginx_site_problems(sites) == []
    assert role_inputs.mosquitto_acl_problems({"sensor": [{"topic": "s/%u/#", "access": "write"}]},
                                              [{"topic": "x", "access": "deny"}], []) == []


def test_identity_problems_name_entry_and_value():
    problems = role_inputs.identity_problems([
        {"name": "a/b", "profile": "client"},
        {"name": "app", "profile": "peer", "sans": "DNS:a.test"},
        {"name": "app", "profile": "client", "sans": ["DNS:x", 7]},
        "just-a-name",
    ])
    assert problems == [
        'mtls_identities[0] ("a/b"): name must be 1-128 letters, digits, \'.\', \'_\' or \'-\' (not starting with '
        '\'.\' or \'-\'), got "a/b"',
        'mtls_identities[1] ("app"): profile must be one of server, client, server_client, got "peer"',
        'mtls_identities[1] ("app"): sans must be a list such as ["DNS:host.example"], got "DNS:a.test"',
        'mtls_identities[2] ("app"): every SAN must be a string such as "DNS:host.example", got 7',
        'mtls_identities[3] must be a dict with at least \'name\', got "just-a-name"',
        'mtls_identities: name "app" is used by 2 entries; names must be unique',
    ]
    assert role_inputs.identity_problems("app") == ['mtls_identities must be a list of identities, got "app"']


@pytest.mark.parametrize("site, expected", [
    (dict(SITE, verify_client=True), 'site "api": verify_client must be the string "on" or "optional"'),
    (dict(SITE, name="bad-name"), 'site "bad-name": name must use only letters, digits and \'_\''),
    (dict(SITE, root="/srv"), 'site "api" has no \'locations\', so it needs exactly one of proxy_pass, root or '
                              'return; got root, return'),
    (dict(SITE, **{"return": ""}), "got none"),
    (dict(SITE, locations=[{"root": "/srv"}]), 'every location needs a path, got {"root": "/srv"}'),
    (dict(SITE, locations=[{"path": "/a"}]), 'site "api" location "/a" needs exactly one of proxy_pass, root or '
                                             'return; got none'),
    (dict(SITE, allow_cn=["CN=x,O=y"]), 'site "api": allow_cn entry "CN=x,O=y" may only contain'),
    (dict(SITE, locations=[{"path": "/", "root": "/s", "allow_cn": ["a\nb"]}]),
     'site "api" location "/": allow_cn entry "a\\nb"'),
])
def test_nginx_site_problems_name_site_location_and_value(site, expected):
    problems = role_inputs.nginx_site_problems([site])
    assert len(problems) == 1 and expected in problems[0], problems
    assert problems[0].startswith("mtls_nginx_sites")


def test_nginx_duplicate_site_names_are_reported_once():
    problems = role_inputs.nginx_site_problems([dict(SITE), dict(SITE), dict(SITE)])
    assert problems == ['mtls_nginx_sites: site name "api" is used by 3 sites; names must be unique']


def test_mosquitto_acl_problems_name_variable_identity_and_rule():
    problems = role_inputs.mosquitto_acl_problems(
        {"sensor": [{"topic": "t/#", "access": "all"}, {"access": "read"}], " pad": [], "x": "t/#"},
        [{"topic": " t", "access": "read"}], ["deny"])
    assert problems == [
        'mtls_mosquitto_acls["sensor"]: access of topic "t/#" must be one of read, write, readwrite, deny, got "all"',
        'mtls_mosquitto_acls["sensor"]: topic must be one MQTT topic filter without surrounding spaces, got null',
        'mtls_mosquitto_acls[" pad"]: the identity must be a certificate CN without surrounding spaces',
        'mtls_mosquitto_acls["x"] must be a list of {topic, access} rules, got "t/#"',
        'mtls_mosquitto_acl_patterns: topic must be one MQTT topic filter without surrounding spaces, got " t"',
        'mtls_mosquitto_anonymous_acl: every rule must be a dict {topic, access}, got "deny"',
    ]
    assert role_inputs.mosquitto_acl_problems(["a"]) == ['mtls_mosquitto_acls must map certificate CNs to rule '
                                                         'lists, got ["a"]']
