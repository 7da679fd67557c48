# -*- coding: utf-8 -*-
"""Every changelog fragment parses as YAML and uses only the sections changelogs/config.yaml knows.

antsibull-changelog (make build) and ansible-test sanity check this too, minutes later; an unquoted
``: `` inside a fragment line is easy to write and breaks both, so the unit layer catches it first.
"""

from __future__ import annotations

import os

import pytest
import yaml

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FRAGMENTS = os.path.join(REPO, "changelogs", "fragments")


def _config():
    with open(os.path.join(REPO, "changelogs", "config.yaml")) as handle:
        return yaml.safe_load(handle)


@pytest.mark.parametrize("name", sorted(name for name in os.listdir(FRAGMENTS) if name.endswith((".yml", ".yaml"))))
def test_fragment_parses_into_known_sections_of_strings(name):
    with open(os.path.join(FRAGMENTS, name)) as handle:
        try:
            fragment = yaml.safe_load(handle)
        except yaml.YAMLError as error:
            pytest.fail("%s is not valid YAML (quote an entry holding ': ' with >- or quotes): %s" % (name, error))
    assert isinstance(fragment, dict) and fragment, "%s holds no sections" % name
    config = _config()
    prelude = config["prelude_section_name"]
    unknown = set(fragment) - {entry[0] for entry in config["sections"]} - {"trivial", prelude}
    assert not unknown, "%s: sections %s are not in changelogs/config.yaml" % (name, sorted(unknown))
    for section, entries in fragment.items():
        if section == prelude:
            assert isinstance(entries, str) and entries.strip(), "%s: %s must be a text" % (name, prelude)
            continue
        assert isinstance(entries, list) and entries, "%s: %s must be a list of entries" % (name, section)
        assert all(isinstance(entry, str) and entry.strip() for entry in entries), \
            "%s: every entry of %s must be a non-empty string" % (name, section)
