# -*- coding: utf-8 -*-
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that check role inputs beyond what argument specs say (docs in the .yml files beside)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.fleet.mtls.plugins.module_utils import role_inputs


class FilterModule(object):
    def filters(self):
        return {
            "identity_problems": role_inputs.identity_problems,
            "consumer_problems": role_inputs.consumer_problems,
            "nginx_site_problems": role_inputs.nginx_site_problems,
            "mosquitto_acl_problems": role_inputs.mosquitto_acl_problems,
        }
