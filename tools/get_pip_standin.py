"""Offline stand-in for the get-pip.py script ansible-test downloads per sanity venv.

ansible-test fetches get-pip from a host this network cannot reach, and looks for a
cached copy first (~/.ansible/test/cache/get_pip_<version>.py). tools/sanity.sh puts
this file there. It bootstraps pip from the interpreter's bundled wheel (ensurepip),
then lets that pip install what ansible-test asked for (e.g. pip==24.2) from PyPI.
"""

from __future__ import annotations

import subprocess
import sys

# Options only get-pip.py understands; pip itself rejects them.
GET_PIP_ONLY_OPTIONS = {"--no-setuptools", "--no-wheel"}


def main() -> int:
    pip_arguments = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY_OPTIONS]
    subprocess.run([sys.executable, "-m", "ensurepip", "--default-pip"], check=True, stdout=subprocess.DEVNULL)
    if not pip_arguments:
        return 0
    return subprocess.run([sys.executable, "-m", "pip", "install", *pip_arguments], check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
