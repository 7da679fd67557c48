# -*- coding: utf-8 -*-
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters behind the fleet.mtls.report and fleet.mtls.verify playbooks and the demo (docs in the .yml files beside)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError
from ansible_collections.fleet.mtls.plugins.module_utils import report as report_lib
from ansible_collections.fleet.mtls.plugins.module_utils import report_html
from ansible_collections.fleet.mtls.plugins.module_utils.errors import MtlsError


def fleet_report(hosts, ca=None, warn_days=30, crl_warn_days=2, now=None, previous=None):
    try:
        report = report_lib.build_report(hosts, ca=ca, warn_days=warn_days, crl_warn_days=crl_warn_days, now=now,
                                         previous=previous)
        return {
            "report": report,
            "table": report_lib.report_table(report),
            "json": report_lib.report_json(report),
            "html": report_html.report_html(report),
            # None without prometheus_client; report_settings refuses a textfile directory then.
            "prometheus": report_lib.report_prometheus(report) if report_lib.HAS_PROMETHEUS_CLIENT else None,
        }
    except MtlsError as exc:
        raise AnsibleFilterError("fleet.mtls.fleet_report: %s" % exc)


def report_settings(variables):
    try:
        return report_lib.report_settings(variables)
    except MtlsError as exc:
        raise AnsibleFilterError("fleet.mtls.report_settings: %s" % exc)


def probe_summary(probes):
    try:
        return report_lib.summarize_probes(probes)
    except MtlsError as exc:
        raise AnsibleFilterError("fleet.mtls.probe_summary: %s" % exc)


def verify_probes(clients, hostvars, service_hosts=None):
    if isinstance(clients, str) or not hasattr(clients, "__iter__"):
        raise AnsibleFilterError("fleet.mtls.verify_probes: the input must be the list of client hosts")
    return report_lib.verify_probes(list(clients), hostvars, list(service_hosts or []))


def text_table(rows, columns):
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise AnsibleFilterError("fleet.mtls.text_table: the input must be a list of dicts (one per row)")
    if not isinstance(columns, list) or not all(
            isinstance(column, (list, tuple)) and len(column) == 2 for column in columns):
        raise AnsibleFilterError("fleet.mtls.text_table: columns must be a list of [key, header] pairs")
    return report_lib.format_table(rows, [tuple(column) for column in columns])


class FilterModule(object):
    def filters(self):
        return {"fleet_report": fleet_report, "report_settings": report_settings, "probe_summary": probe_summary,
                "verify_probes": verify_probes, "text_table": text_table}
