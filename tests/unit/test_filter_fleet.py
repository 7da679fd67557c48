"""fleet.mtls.ca_holder: the one definition of which host holds the CA."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.fleet.mtls.plugins.filter.fleet import FilterModule, ca_holder


def test_filter_is_the_function():
    assert FilterModule().filters()["ca_holder"] is ca_holder


@pytest.mark.parametrize("groups, holder", [
    ({"mtls_ca": ["ca1", "ca2"], "all": ["ca1", "ca2", "web"]}, "ca1"),
    ({"mtls_ca": [], "all": ["web"]}, "localhost"),
    ({"all": ["web"]}, "localhost"),
    ({"mtls_ca": None}, "localhost"),
    ({"mtls_ca": ("only",)}, "only"),
])
def test_first_host_of_mtls_ca_or_the_controller(groups, holder):
    assert ca_holder(groups) == holder


@pytest.mark.parametrize("groups, message", [
    ("mtls_ca", "expects the inventory's groups"),
    (["ca1"], "expects the inventory's groups"),
    ({"mtls_ca": "ca1"}, "must be a list of hosts"),
])
def test_bad_input_is_named(groups, message):
    with pytest.raises(AnsibleFilterError, match=message):
        ca_holder(groups)
