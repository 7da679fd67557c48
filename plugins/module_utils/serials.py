# -*- coding: utf-8 -*-
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Certificate serial numbers: the one place that allocates, formats and parses them.

``random_serial()`` draws a new serial (CA certificates and leaves alike), ``serial_hex(n)`` is the
one format every return, index entry and message uses (lower-case hex, no colons, no leading
zeros), ``serial_int(text)`` parses what users and the index give (int, ``0x..``/plain hex, or
openssl's colon-separated hex). ``MAX_REDRAWS`` bounds how often a colliding serial is redrawn.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.fleet.mtls.plugins.module_utils.errors import MtlsError

# A serial collision of 159 random bits does not happen by chance; a loop that keeps colliding is a bug.
MAX_REDRAWS = 8


def random_serial():
    """Positive serial with 159 random bits: at most 20 octets (RFC 5280 4.1.2.2), never zero."""
    while True:
        serial = int.from_bytes(os.urandom(20), "big") >> 1
        if serial:
            return serial


def serial_hex(serial_number):
    """The one serial format of returns: lower-case hex, no colons, no leading zeros."""
    return "%x" % serial_number


def serial_int(serial):
    """Serial from an int, '0x..' / plain hex, or colon-separated hex (openssl's form)."""
    if isinstance(serial, int) and not isinstance(serial, bool):
        return serial
    text = str(serial).strip().lower().replace(":", "")
    if text.startswith("0x"):
        text = text[2:]
    try:
        return int(text, 16)
    except ValueError:
        raise MtlsError("invalid serial %r: expected hexadecimal" % (serial,))
