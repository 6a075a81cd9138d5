"""The demo's Download button is enabled exactly when the before/after slider holds a result (issue 15).

Gradio 6.31's ImageSlider sends a change with [None, None] when the page loads; that once enabled the button
before any result. The browser test (test_demo_browser.py) checks the drawn button; this checks the rule."""

from __future__ import annotations

import pytest
from demo_helpers import load_app


@pytest.mark.parametrize(("pair", "enabled"), [
    (None, False),
    ([None, None], False),  # the slider's page-load change
    ((None, None), False),
    (("before.png", "after.png"), True),
])
def test_the_download_button_follows_the_result(pair, enabled):
    app = load_app()
    assert app.has_result(pair) is enabled
    assert app.download_button_state(pair).interactive is enabled
