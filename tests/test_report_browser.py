"""The HTML report displays in a real browser: headless Chromium renders its first A4 page
(1240 x 1754 px, A4 at 150 dpi) to PNG. Deselected by default; run with `-m browser`."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from projections.governance import Anchor, content_digest, governance_report
from projections.report_render import render_html
from tests.report_history import fixed_state
from tests.test_reports import OCTOBER, REPORT_ID

pytestmark = pytest.mark.browser


def test_the_html_report_renders_to_png_in_headless_chromium(tmp_path: Path) -> None:
    browser = shutil.which("chromium")
    if browser is None:
        pytest.skip("chromium is not on PATH (Debian: apt-get install chromium)")
    state = fixed_state()
    anchor = Anchor("example.org/test-ledger", state.size, "A" * 43 + "=")
    content = governance_report(state, report_id=REPORT_ID, parameters=OCTOBER, anchor=anchor)
    page = tmp_path / "report.html"
    page.write_bytes(render_html(content, content_digest(content)))
    png = tmp_path / "report.png"
    subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--screenshot={png}",
            "--window-size=1240,1754",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    from PIL import Image

    with Image.open(png) as image:
        assert image.size == (1240, 1754)
        pixels = image.convert("L").getdata()
        inked = sum(1 for p in pixels if p < 200) / len(pixels)
        accent = image.convert("RGB").getcolors(maxcolors=1 << 20) or []
    assert inked > 0.02, f"the page looks blank ({inked:.1%} inked)"
    # The headings' rule and the chart lines are Okabe-Ito blue (#0072B2): the CSS and the
    # inline SVG were both applied.
    assert any(
        abs(r - 0x00) < 30 and abs(g - 0x72) < 30 and abs(b - 0xB2) < 30 for _, (r, g, b) in accent
    )
