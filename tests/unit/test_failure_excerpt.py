"""tools/failure_excerpt.py: the lines test-layers.sh prints after a failed layer."""

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "failure_excerpt.py"


@pytest.fixture(name="failure_excerpt", scope="module")
def fixture_failure_excerpt():
    spec = importlib.util.spec_from_file_location("failure_excerpt", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_skips_ignored_failures_and_keeps_the_last_real_one(failure_excerpt):
    log = [
        "\x1b[2m  │\x1b[0m TASK [Expected refusal]",
        "  │ fatal: [h1]: FAILED! =>",
        "  │     msg: refused on purpose",
        "  │ ...ignoring",
        "  │ TASK [Check the load]",
        "  │ fatal: [h2]: FAILED! =>",
        "  │     msg: 3 requests failed",
        "  │ ",
        "  │ PLAY RECAP",
        "ERROR    Ansible return code was 2",
        "FAILED - RETRYING: [localhost]: Wait (3 retries left).",
    ]
    lines = [failure_excerpt.clean(line) for line in log]
    assert failure_excerpt.excerpt(lines, 30) == [
        "TASK [Check the load]",
        "fatal: [h2]: FAILED! =>",
        "    msg: 3 requests failed",
        "ERROR    Ansible return code was 2",
    ]


def test_pytest_sanity_and_lint_lines_are_kept_within_the_limit(failure_excerpt):
    lines = [f"ERROR: plugins/x.py:{n}:1: pylint issue" for n in range(50)]
    lines += [
        "FAILED tests/unit/test_a.py::test_b - AssertionError",
        "roles/ca/tasks/main.yml:3: name[missing]: All tasks should be named.",
        "x" * 500,
    ]
    picked = failure_excerpt.excerpt(lines, 5)
    assert picked == [
        "ERROR: plugins/x.py:47:1: pylint issue",
        "ERROR: plugins/x.py:48:1: pylint issue",
        "ERROR: plugins/x.py:49:1: pylint issue",
        "FAILED tests/unit/test_a.py::test_b - AssertionError",
        "roles/ca/tasks/main.yml:3: name[missing]: All tasks should be named.",
    ]


def test_a_clean_log_gives_an_empty_excerpt(failure_excerpt):
    assert not failure_excerpt.excerpt(["PLAY RECAP", "h1 : ok=3 changed=0 failed=0"], 30)
