# -*- coding: utf-8 -*-
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters over module_utils.nginx_access: which identity reaches which NGINX site and location
(docs in the .yml files beside)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError
from ansible_collections.fleet.mtls.plugins.module_utils import nginx_access
from ansible_collections.fleet.mtls.plugins.module_utils.errors import MtlsError


def _call(name, function, *args, **kwargs):
    try:
        return function(*args, **kwargs)
    except MtlsError as exc:
        raise AnsibleFilterError("fleet.mtls.%s: %s" % (name, exc))


def nginx_plan(sites, server_identity="", upstream_identity="", mtls_dir="/etc/mtls", trust_bundle=None, crl=None,
               disable_default_site="auto", identity_list=None, verify_depth=None, mode="managed",
               snippets_dir="/etc/nginx/fleet-mtls", http_snippet="/etc/nginx/conf.d/fleet-mtls-maps.conf"):
    return _call("nginx_plan", nginx_access.role_plan, sites, server_identity=server_identity,
                 upstream_identity=upstream_identity, mtls_dir=mtls_dir, trust_bundle=trust_bundle, crl=crl,
                 disable_default_site=disable_default_site, identity_list=identity_list, verify_depth=verify_depth,
                 mode=mode, snippets_dir=snippets_dir, http_snippet=http_snippet)


def nginx_access_table(sites, subject=None, common_name=None):
    return _call("nginx_access", nginx_access.access_table, sites, subject=subject, common_name=common_name)


def nginx_quote(value):
    return nginx_access.nginx_quote(value)


def verify_targets(nginx_hosts, mosquitto_hosts=None, subject=None, common_name=None):
    return _call("verify_targets", nginx_access.verify_targets, list(nginx_hosts or []), list(mosquitto_hosts or []),
                 subject=subject, common_name=common_name)


def nginx_missing(mode, package="nginx", package_status="", active_state=None):
    return _call("nginx_missing", nginx_access.missing_nginx, mode, package, package_status, active_state)


class FilterModule(object):
    def filters(self):
        return {"nginx_plan": nginx_plan, "nginx_access": nginx_access_table, "nginx_quote": nginx_quote,
                "verify_targets": verify_targets, "nginx_missing": nginx_missing}
