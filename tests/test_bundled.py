"""The bundled default models: registered, loadable offline by category and scale, deterministic, small."""

from __future__ import annotations

import pytest
import torch
from safetensors import safe_open

from glean_hub import GLEAN, available
from glean_hub.registry import BANKS, MODELS, WEIGHTS_DIR, lookup

BUNDLED = [m for m in MODELS if m.local_dir is not None]
MB = 1024 * 1024


def test_weights_are_bundled_for_the_registry():
    assert BUNDLED, "no bundled weights under glean_hub/weights: run scripts/package_bundled.py"
    assert {(m.category, m.scale) for m in available()} >= {(m.category, m.scale) for m in BUNDLED}
    for m in BUNDLED:  # every bundled model's bank is bundled too
        assert next(b for b in BANKS if b.repo_id == m.bank_repo_id).local_dir is not None


@pytest.mark.parametrize("entry", BUNDLED, ids=lambda m: f"{m.category}-{m.scale}x")
def test_bundled_model_loads_offline_and_is_deterministic(entry, offline):
    model = GLEAN.from_pretrained(entry.category, scale=entry.scale)
    assert lookup(entry.category, entry.scale) == entry
    c = model.config
    assert (c.category, c.scale, c.in_size, c.out_size) == (entry.category, entry.scale, entry.in_size, entry.out_size)
    assert c.bank_id == entry.bank_repo_id and len(c.bank_sha256) == 64
    lr = torch.linspace(-1, 1, 2 * 3 * c.in_size**2).reshape(2, 3, c.in_size, c.in_size)
    with torch.no_grad():
        a, b = model(lr), model(lr)
    assert a.shape == (2, 3, c.out_size, c.out_size) and a.dtype == torch.float32
    assert torch.equal(a, b) and torch.isfinite(a).all()


def test_banks_are_shared_between_scales():
    by_category = {}
    for m in BUNDLED:
        by_category.setdefault(m.category, []).append(GLEAN.from_pretrained(m.category, scale=m.scale))
    for models in by_category.values():
        ptr = models[0].generator.constant_input.input.data_ptr()
        assert all(x.generator.constant_input.input.data_ptr() == ptr for x in models)  # one copy in memory


def test_bundled_files_are_fp16_and_within_budget():
    files = [p for p in WEIGHTS_DIR.rglob("*.safetensors")]
    assert files
    for path in files:
        assert path.stat().st_size <= 16 * MB, f"{path} is over 16 MB"
        with safe_open(path, "pt") as f:
            assert all(f.get_slice(k).get_dtype() == "F16" for k in f.keys()), f"{path} is not fp16"
    assert sum(p.stat().st_size for p in WEIGHTS_DIR.rglob("*") if p.is_file()) <= 120 * MB
