# -*- coding: utf-8 -*-
"""The HTML report in a real headless browser (Debian's chromium): it renders to a non-blank
screenshot and the DOM the browser built has every row. Network access is cut off for the browser
(host resolver maps every name to nothing), so the page shows all it shows from itself alone.

Skipped only outside CI when chromium is not installed; in CI (CI=true) tools/setup-host.sh installs
it and a missing browser fails the test.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import zlib

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from test_report_html import Page, fleet_report  # noqa: E402

from ansible_collections.fleet.mtls.plugins.module_utils.report_html import report_html  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
WIDTH, HEIGHT = 1280, 1600


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is missing in CI: tools/setup-host.sh installs it")
        pytest.skip("chromium is not installed (Debian package chromium)")
    return CHROMIUM


def _run(browser, tmp_path, *arguments):
    profile = tmp_path / ("profile-%d" % len(list(tmp_path.iterdir())))
    profile.mkdir()
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--host-resolver-rules=MAP * ~NOTFOUND", "--user-data-dir=%s" % profile,
               "--window-size=%d,%d" % (WIDTH, HEIGHT)] + list(arguments)
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def _png_pixels(path):
    """(width, height, set of RGB tuples) of an 8-bit RGB or RGBA PNG, decoded here (no imaging library)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    offset, header, idat = 8, None, b""
    while offset < len(data):
        length, kind = struct.unpack(">I4s", data[offset:offset + 8])
        body = data[offset + 8:offset + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        offset += 12 + length
    width, height, depth, colour_type = header[:4]
    assert depth == 8 and colour_type in (2, 6)
    channels = 3 if colour_type == 2 else 4
    raw, stride = zlib.decompress(idat), width * channels
    previous, colours = bytes(stride), set()
    for row in range(height):
        start = row * (stride + 1)
        kind, line = raw[start], raw[start + 1:start + 1 + stride]
        if kind == 2:
            line = bytes([(a + b) & 0xFF for a, b in zip(line, previous)])
        elif kind in (1, 3, 4):
            out = bytearray(line)
            for index in range(stride):
                left = out[index - channels] if index >= channels else 0
                if kind == 1:
                    predicted = left
                elif kind == 3:
                    predicted = (left + previous[index]) >> 1
                else:
                    up = previous[index]
                    up_left = previous[index - channels] if index >= channels else 0
                    guess = left + up - up_left
                    to_left, to_up, to_up_left = abs(guess - left), abs(guess - up), abs(guess - up_left)
                    if to_left <= to_up and to_left <= to_up_left:
                        predicted = left
                    elif to_up <= to_up_left:
                        predicted = up
                    else:
                        predicted = up_left
                out[index] = (out[index] + predicted) & 0xFF
            line = bytes(out)
        colours.update(line[index:index + 3] for index in range(0, stride, channels))
        previous = line
    return width, height, colours


@pytest.fixture(scope="module")
def page_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("report") / "fleet-mtls-report.html"
    path.write_text(report_html(fleet_report()), encoding="utf-8")
    return path


def test_screenshot_is_a_rendered_page(browser, page_file, tmp_path):
    shot = tmp_path / "report.png"
    result = _run(browser, tmp_path, "--screenshot=%s" % shot, page_file.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    width, height, colours = _png_pixels(shot)
    assert (width, height) == (WIDTH, HEIGHT)
    # A blank or error page has a handful of colours; text anti-aliasing alone gives hundreds.
    assert shot.stat().st_size > 30000 and len(colours) > 100
    # The status colours of the bars and badges were painted: ok green, expired red, renew_soon orange,
    # not_inspected grey.
    for colour in ("2e7d32", "b71c1c", "e65100", "616161"):
        assert bytes.fromhex(colour) in colours, colour


def test_browser_dom_has_every_row(browser, page_file, tmp_path):
    result = _run(browser, tmp_path, "--dump-dom", page_file.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    dom = Page(result.stdout)
    certificates = [attrs for tag, attrs in dom.tags if tag == "tr" and "data-identity" in attrs]
    assert [(row["data-host"], row["data-identity"], row["data-status"]) for row in certificates] == [
        ("api1", "api1", "revoked"), ("client1", "client1", "expired"), ("db1", "", "not_inspected"),
        ("web1", "<script>alert(1)</script>", "renew_soon"), ("web1", "web1", "ok")]
    timeline = [attrs for tag, attrs in dom.tags if tag == "g" and attrs.get("class") == "timeline-row"]
    assert len(timeline) == 8
    assert [row["data-ca"] for row in dom.find("tr") if "data-ca" in row] == ["issuing-2", "issuing-3", "root-3"]
    # The identity that looks like markup stayed text: the browser built no script element from it.
    assert not dom.find("script")
