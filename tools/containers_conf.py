"""Set keys in a containers.conf (TOML) file in place, keeping everything else.

    containers_conf.py FILE SECTION.KEY=VALUE ...

VALUE is written verbatim as TOML (quote strings yourself). A key that is already set
in its section is replaced, a missing key is added to its section, a missing section
is appended. The file is only rewritten when something changes; exit status 0 either way.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile

SECTION_RE = re.compile(r"^\s*\[([^\[\]]+)\]\s*(#.*)?$")


def key_re(key: str) -> re.Pattern[str]:
    return re.compile(r"^\s*#?\s*" + re.escape(key) + r"\s*=")


def set_key(lines: list[str], section: str, key: str, value: str) -> list[str]:
    wanted = f"{key} = {value}\n"
    start = None
    end = len(lines)
    for index, line in enumerate(lines):
        match = SECTION_RE.match(line)
        if match is None:
            continue
        if start is not None:
            end = index
            break
        if match.group(1).strip() == section:
            start = index
    if start is None:
        tail = [] if not lines or lines[-1].endswith("\n") else ["\n"]
        blank = ["\n"] if lines else []
        return lines + tail + blank + [f"[{section}]\n", wanted]

    pattern = key_re(key)
    active = [i for i in range(start + 1, end) if pattern.match(lines[i]) and not lines[i].lstrip().startswith("#")]
    if active:
        first = active[0]
        # A TOML value may span lines (arrays); drop continuation lines of the old value.
        stop = first + 1
        old_value = lines[first].split("=", 1)[1]
        if old_value.count("[") > old_value.count("]"):
            while stop < end and "]" not in lines[stop]:
                stop += 1
            stop = min(stop + 1, end)
        return lines[:first] + [wanted] + lines[stop:]
    return lines[: start + 1] + [wanted] + lines[start + 1 :]


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    path = argv[1]
    try:
        with open(path, encoding="utf-8") as handle:
            original = handle.readlines()
    except FileNotFoundError:
        original = []
    lines = list(original)
    for assignment in argv[2:]:
        target, sep, value = assignment.partition("=")
        section, dot, key = target.partition(".")
        if not sep or not dot or not key or not value:
            print(f"containers_conf.py: expected SECTION.KEY=VALUE, got {assignment!r}", file=sys.stderr)
            return 2
        lines = set_key(lines, section, key, value)
    if lines == original:
        print(f"{path}: already configured")
        return 0
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".containers.conf.")
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.writelines(lines)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    print(f"{path}: updated")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
