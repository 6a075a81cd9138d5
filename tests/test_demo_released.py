"""The demo offers the released OpenMMLab models that are already converted in the cache (issue 16), under their
own Category entry, with the sizes of the converted model (cats 8x: 32 -> 256), next to the bundled ones; the
ones not cached yet are listed with their approximate download size and fetched only when a user asks for one
(`/download_released`), after which they are served like a cached one.

The cache is filled the way a user fills it: `GLEAN.from_pretrained("openmmlab/glean-cats-8x")` against the
loopback stand-in for download.openmmlab.com of test_released.py, serving a tiny official-layout checkpoint
with the released model's real input and output sizes (32 -> 256; narrow layers)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from conftest import tiny_model
from demo_helpers import EXAMPLE, free_port, load_app, png_size, serving
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from hub_fixtures import set_offline
from test_released import CATS_8X, _publish, host, tiny_glean_pth  # noqa: F401 - host is a fixture

from glean_hub import GLEAN, GLEANPipeline, registry
from glean_hub.errors import GleanError, ModelNotFoundError
from glean_hub.released import ENDPOINT_ENV

RELEASED_CHOICE = "cats · OpenMMLab 256 px"


@pytest.fixture(scope="module")
def cats_256():
    model = tiny_model(seed=5, in_size=32, out_size=256, category="cats")
    return model, tiny_glean_pth(model)


def test_only_cached_released_models_are_offered(host, cats_256, monkeypatch):  # noqa: F811
    app = load_app()
    assert all(source.group != RELEASED_CHOICE for source in app.model_table().values())  # not cached yet
    _publish(monkeypatch, host, CATS_8X, cats_256[1])
    GLEAN.from_pretrained(CATS_8X)  # download, check, convert, cache
    set_offline(monkeypatch, True)  # what the demo lists is found without the network
    host.files.clear()

    table = app.model_table()
    source = table[(RELEASED_CHOICE, 8)]
    assert (source.category, source.scale, source.in_size, source.out_size) == ("cats", 8, 32, 256)
    assert source.choice_label == "8× (32→256)"
    assert "23.98" in source.notes and CATS_8X in source.label
    assert source.location == str(registry.released_entry(CATS_8X).local_dir)
    bundled = [s for (group, _), s in table.items() if group == "cats"]
    assert all(s.out_size != 256 for s in bundled)  # the bundled cats models stay under "cats"
    assert all(s.group != "faces · OpenMMLab 1024 px" for s in table.values())  # not cached: not offered


def test_a_cached_released_model_upscales_at_its_real_sizes(host, cats_256, monkeypatch):  # noqa: F811
    app = load_app()
    model, data = cats_256
    _publish(monkeypatch, host, CATS_8X, data)
    GLEAN.from_pretrained(CATS_8X)
    set_offline(monkeypatch, True)
    table = app.model_table()
    cache = app.PipelineCache()
    result = app.upscale_request(table, cache, str(EXAMPLE), RELEASED_CHOICE, 8, "crop", False, "float32")
    assert result.lr.size == (32, 32) and result.after.size == (256, 256)
    assert CATS_8X in result.status and "32×32 → 256×256" in result.status
    # the demo ran the converted released model (not the bundled cats 8x): the same result from the original
    # weights on the same 32x32 input (to one grey level: the converted weights' results differ in float rounding)
    direct = GLEANPipeline(model)(result.lr).images[0]
    assert np.abs(np.asarray(direct, np.int16) - np.asarray(result.after, np.int16)).max() <= 1
    if ("cats", 8) in table:  # the bundled cats 8x is another model, cached apart
        other = app.upscale_request(table, cache, str(EXAMPLE), "cats", 8, "crop", False, "float32")
        assert other.after.size != result.after.size


def test_uncached_released_models_are_listed_with_their_approximate_download_size(host, no_network):  # noqa: F811
    app = load_app()
    choices = {name: label for label, name in map(app.download_choice, app.downloadable_released())}
    assert set(choices) == {r.name for r in registry.released_models() if r.unsupported is None}  # none cached yet
    assert choices[CATS_8X] == "cats 8× (32→256) · openmmlab/glean-cats-8x · ≈765 MB download (approximate)"
    config = str(app.build_demo().config)  # the registry's models: the released ones are offered for download
    assert choices[CATS_8X] in config and "download_released" in config and "approximate" in config
    assert "download_released" not in str(app.build_demo({}).config)  # models given: nothing to download
    assert host.log == [] and no_network.attempts == []  # building the app downloads nothing


def test_a_user_downloads_a_released_model_then_upscales_with_it(host, cats_256, monkeypatch, tmp_path):  # noqa: F811
    app = load_app()
    demo = app.build_demo(downloads=True)
    with serving(app, demo) as url:
        client = Client(url, verbose=False, analytics_enabled=False, download_files=str(tmp_path))
        set_offline(monkeypatch, True)  # HF_HUB_OFFLINE=1: says it cannot, and how to do it by hand
        with pytest.raises(AppError, match=r"runs offline.*glean-hub convert FILE DIR.*glean-hub demo --model DIR"):
            client.predict(CATS_8X, api_name="/download_released")
        set_offline(monkeypatch, False)
        _publish(monkeypatch, host, CATS_8X, cats_256[1], sha256="00000000")  # released.py's errors, as gr.Error
        with pytest.raises(AppError, match="sha256 starts with .*expected 00000000"):
            client.predict(CATS_8X, api_name="/download_released")

        entry = _publish(monkeypatch, host, CATS_8X, cats_256[1])
        host.gate = threading.Event()  # hold the body until the page has shown progress
        job = client.submit(CATS_8X, api_name="/download_released")
        bars, deadline = {}, time.monotonic() + 30
        while entry.filename not in bars and time.monotonic() < deadline:
            bars |= {unit.desc: unit for unit in job.status().progress_data or []}
            time.sleep(0.05)
        host.gate.set()
        category, next_choice, status = job.result(timeout=60)[:3]  # the Upscale button is enabled too
        bar = bars[entry.filename]  # released.py's byte progress bar, shown by the page (gr.Progress(track_tqdm))
        assert (bar.unit, bar.length) == ("B", len(cats_256[1])), bar
        assert host.log.count(entry.path) == 2  # the failed try and this one; never at start-up
        assert category["value"] == RELEASED_CHOICE and [RELEASED_CHOICE] * 2 in category["choices"]  # an update
        assert "8× (32→256)" in status and CATS_8X not in str(next_choice["choices"])

        (_, after), lr, *_ = client.predict(handle_file(str(EXAMPLE)), RELEASED_CHOICE, 8, "crop", False,
                                                 "float32", api_name="/upscale")
        assert png_size(after) == (256, 256) and png_size(lr) == (32, 32)
    assert CATS_8X not in [r.name for r in app.downloadable_released()]
    assert (RELEASED_CHOICE, 8) in app.model_table()  # the next start lists it as a cached one


def test_no_network_404_and_unknown_names_are_one_line_errors(host, monkeypatch):  # noqa: F811
    app = load_app()
    with pytest.raises(ModelNotFoundError, match="HTTP 404"):
        app.fetch_released(CATS_8X)  # not published on the host
    monkeypatch.setenv(ENDPOINT_ENV, f"http://127.0.0.1:{free_port()}")  # nothing listens there: no network
    with pytest.raises(GleanError, match="cannot reach .*download it by hand and run `glean-hub convert FILE DIR`"):
        app.fetch_released(CATS_8X)
    with pytest.raises(ModelNotFoundError, match="not a released GLEAN model"):
        app.fetch_released("openmmlab/stylegan2-church-256")
    assert CATS_8X in [r.name for r in app.downloadable_released()]  # still offered: nothing was cached
    set_offline(monkeypatch, True)  # the page says so before anyone presses the button
    assert "runs offline" in app.download_note(CATS_8X) and registry.released_entry(CATS_8X).path in app.download_note(CATS_8X)
