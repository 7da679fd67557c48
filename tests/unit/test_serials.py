# -*- coding: utf-8 -*-
"""Serial allocation, formatting and parsing: the one implementation every module uses."""
from __future__ import annotations

import pytest

from ansible_collections.fleet.mtls.plugins.module_utils import serials
from ansible_collections.fleet.mtls.plugins.module_utils.errors import MtlsError


def test_serial_int_reads_every_form_users_give():
    # Moved from test_index.py::test_reason_names.
    assert serials.serial_int("0xFF") == 255
    assert serials.serial_int("ff") == 255
    assert serials.serial_int("0A:FF") == 0xAFF
    assert serials.serial_int(" 0x0aff ") == 0xAFF
    assert serials.serial_int(17) == 17


@pytest.mark.parametrize("bad", ["zz", "", True, "0x"])
def test_serial_int_refuses_what_is_not_hex(bad):
    with pytest.raises(MtlsError, match="invalid serial"):
        serials.serial_int(bad)


def test_serial_hex_is_the_one_format_and_round_trips():
    assert serials.serial_hex(0x0AFF) == "aff"
    for dummy in range(20):
        serial = serials.random_serial()
        assert serials.serial_int(serials.serial_hex(serial)) == serial


def test_random_serial_fits_rfc5280():
    for dummy in range(200):
        serial = serials.random_serial()
        assert 0 < serial < 2 ** 159


def test_random_serial_never_returns_zero(monkeypatch):
    draws = iter([bytes(20), b"\x00" * 19 + b"\x02"])
    monkeypatch.setattr(serials.os, "urandom", lambda n: next(draws))
    assert serials.random_serial() == 1
