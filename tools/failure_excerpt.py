"""Print the lines of a test layer's log that say why it failed.

The full log of a long layer (molecule, the module tests) is thousands of lines and CI
systems often keep only its end, so test-layers.sh prints this excerpt after the summary:
the last Ansible failure that was not ignored (its task name and result), and the failure
lines of pytest, ansible-test and ansible-lint.

    failure_excerpt.py LOG [MAX_LINES]
"""

import re
import sys

ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
# Molecule frames each Ansible line in a box: "  │ TASK [...]".
BOX_PREFIX = re.compile(r"^\s*│\s?")
ANSIBLE_FAILURE = re.compile(r"^(fatal|failed): \[[^\]]+\]")
ANSIBLE_BLOCK_END = re.compile(r"^(TASK|PLAY|RUNNING HANDLER) \[|^PLAY RECAP|^\.\.\.ignoring|^\S+\s+: ok=")
OTHER_FAILURE = re.compile(
    r"^(FAILED (?!- RETRYING)|ERROR[: ]|E {3}|make(\[\d+\])?: \*\*\*)"  # pytest, ansible-test/molecule, make
    r"|^\S+:\d+(:\d+)?: [a-z][\w-]*\["  # ansible-lint "path:line: rule[tag]"
)
LINE_WIDTH = 300


def clean(line):
    return BOX_PREFIX.sub("", ANSI_ESCAPE.sub("", line.rstrip("\n")))


def last_ansible_failure(lines):
    """The last fatal/failed result that was not ignored, with the task that produced it."""
    found = []
    task = None
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("TASK [") or line.startswith("RUNNING HANDLER ["):
            task = line
        if ANSIBLE_FAILURE.match(line):
            block = [line]
            index += 1
            while index < len(lines) and not ANSIBLE_BLOCK_END.match(lines[index]):
                if lines[index].strip():
                    block.append(lines[index])
                index += 1
            ignored = index < len(lines) and lines[index].startswith("...ignoring")
            if not ignored:
                found = ([task] if task else []) + block
            continue
        index += 1
    return found


def excerpt(lines, max_lines):
    ansible = last_ansible_failure(lines)
    others = [line for line in lines if OTHER_FAILURE.match(line)]
    # Half the room for the Ansible failure when there are other failure lines too.
    picked = ansible[: max_lines // 2 or 1] if others else ansible[:max_lines]
    room = max_lines - len(picked)
    picked += others[-room:] if room > 0 else []
    return [line if len(line) <= LINE_WIDTH else line[: LINE_WIDTH - 3] + "..." for line in picked]


def main(argv):
    if len(argv) not in (2, 3):
        sys.exit("usage: failure_excerpt.py LOG [MAX_LINES]")
    max_lines = int(argv[2]) if len(argv) == 3 else 30
    with open(argv[1], encoding="utf-8", errors="replace") as log_file:
        lines = [clean(line) for line in log_file]
    for line in excerpt(lines, max_lines):
        print("  " + line)


if __name__ == "__main__":
    main(sys.argv)
