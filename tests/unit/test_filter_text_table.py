"""The text_table filter: the report module's table layout for any rows, clear errors for bad input."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.fleet.mtls.plugins.filter.report import FilterModule

text_table = FilterModule().filters()["text_table"]


def test_columns_in_order_with_headers_rule_and_padding():
    rows = [{"client": "client-bookworm", "observed": "HTTP 200", "ok": "yes", "extra": "ignored"},
            {"client": "c2", "observed": "rc 7: Error: The connection was lost.", "ok": "NO"}]
    table = text_table(rows, [["client", "client"], ["observed", "observed"], ["ok", "ok"]])
    assert table.splitlines() == [
        "client           observed                               ok",
        "---------------  -------------------------------------  ---",
        "client-bookworm  HTTP 200                               yes",
        "c2               rc 7: Error: The connection was lost.  NO",
    ]


def test_missing_value_shows_a_dash():
    assert text_table([{"a": "x"}], [["a", "A"], ["b", "B"]]).splitlines()[-1] == "x  -"


@pytest.mark.parametrize("rows, columns, problem", [
    ("not rows", [["a", "A"]], "list of dicts"),
    ([["a"]], [["a", "A"]], "list of dicts"),
    ([{"a": 1}], ["a"], "[key, header] pairs"),
    ([{"a": 1}], [["a", "A", "extra"]], "[key, header] pairs"),
])
def test_bad_input_names_the_problem(rows, columns, problem):
    with pytest.raises(AnsibleFilterError, match=r"text_table: .*" + problem.replace("[", r"\[").replace("]", r"\]")):
        text_table(rows, columns)
