"""The demo offers the released OpenMMLab models that are already converted in the cache (issue 16), under their
own Category entry, with the sizes of the converted model (cats 8x: 32 -> 256), next to the bundled ones.

The cache is filled the way a user fills it: `GLEAN.from_pretrained("openmmlab/glean-cats-8x")` against the
loopback stand-in for download.openmmlab.com of test_released.py, serving a tiny official-layout checkpoint
with the released model's real input and output sizes (32 -> 256; narrow layers)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import tiny_model
from demo_helpers import EXAMPLE, load_app
from hub_fixtures import set_offline
from test_released import CATS_8X, _publish, host, tiny_glean_pth  # noqa: F401 - host is a fixture

from glean_hub import GLEAN, GLEANPipeline, registry

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
