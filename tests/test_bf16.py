"""The pipeline's default dtype: bf16 on CPUs with native bf16 for models large enough to gain, fp32 otherwise;
overridable; and bf16 output close to float32 on a tiny model."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import tiny_model

from glean_hub import GLEANPipeline, pipeline
from glean_hub.cli import build_parser
from glean_hub.config import OFFICIAL_CONFIGS
from glean_hub.pipeline import BF16_MIN_GFLOP, default_dtype


def photo(w: int, h: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w] / max(w, h)
    return np.round(np.stack([0.5 + 0.4 * np.sin(2 * np.pi * (k + 1) * (xx + yy)) for k in range(3)], -1) * 255).astype(np.uint8)


@pytest.fixture
def native_bf16(monkeypatch):
    monkeypatch.setattr(pipeline, "cpu_has_native_bf16", lambda: True)


@pytest.fixture
def large(monkeypatch):  # the tiny test model counted as a large one
    monkeypatch.setattr(pipeline, "model_gflop", lambda config: 2 * BF16_MIN_GFLOP)


def test_native_bf16_is_read_from_cpuinfo(monkeypatch):
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"avx512_bf16": True, "amx_bf16": False})
    assert pipeline.cpu_has_native_bf16()
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"avx512_bf16": False, "amx_bf16": True})
    assert pipeline.cpu_has_native_bf16()
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"avx512_bf16": False, "amx_bf16": False, "avx2": True})
    assert not pipeline.cpu_has_native_bf16()


def test_the_auto_choice(monkeypatch, native_bf16):
    cpu = torch.device("cpu")
    assert default_dtype(cpu, OFFICIAL_CONFIGS["glean_cat_8x"]) == torch.bfloat16  # 335 GFLOP/img
    assert pipeline.model_gflop(tiny_model().config) < BF16_MIN_GFLOP
    assert default_dtype(cpu, tiny_model().config) == torch.float32  # overhead-bound: bf16 does not pay
    assert default_dtype(cpu, OFFICIAL_CONFIGS["glean_cat_8x"], fast=False) == torch.float32  # the exact reference
    assert default_dtype(torch.device("cuda"), OFFICIAL_CONFIGS["glean_cat_8x"]) == torch.float32
    monkeypatch.setattr(pipeline, "cpu_has_native_bf16", lambda: False)
    assert default_dtype(cpu, OFFICIAL_CONFIGS["glean_cat_8x"]) == torch.float32


def test_pipeline_default_is_bf16_fast_path_on_a_float32_model(native_bf16, large):
    model = tiny_model()
    pipe = GLEANPipeline(model, device="cpu")
    assert pipe.dtype == torch.bfloat16 and pipe.network.dtype == torch.bfloat16
    assert next(pipe.model.parameters()).dtype == torch.float32  # the caller's model is not cast
    assert "dtype=torch.bfloat16" in repr(pipe)
    assert GLEANPipeline(model, device="cpu", fast=False).dtype == torch.float32


def test_override(tmp_path, native_bf16, large):
    tiny_model().save_pretrained(tmp_path / "m")
    assert GLEANPipeline.from_pretrained(tmp_path / "m", device="cpu").dtype == torch.bfloat16
    for spelling in ("fp32", torch.float32):
        pipe = GLEANPipeline.from_pretrained(tmp_path / "m", device="cpu", dtype=spelling)
        assert pipe.dtype == torch.float32 and pipe.network.dtype == torch.float32
    assert GLEANPipeline(tiny_model(), device="cpu", dtype="fp32").network.dtype == torch.float32
    assert build_parser().parse_args(["upscale", "x.png", "-o", "o", "--dtype", "fp32"]).dtype == "fp32"


def test_bf16_output_close_to_fp32(monkeypatch, native_bf16, large):
    model = tiny_model(seed=3)
    bf = GLEANPipeline(model, device="cpu")(photo(24, 24), output_type="np").images[0]
    monkeypatch.setattr(pipeline, "cpu_has_native_bf16", lambda: False)
    fp = GLEANPipeline(model, device="cpu")(photo(24, 24), output_type="np").images[0]
    err = float(np.mean((bf - fp) ** 2))
    assert 0 < err and 10 * math.log10(1 / err) > 40  # PSNR over [0, 1]
    assert np.abs(bf - fp).max() < 0.05


def test_help_states_the_default(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["upscale", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "bf16 on a CPU with native bf16 (AVX512-BF16 or AMX)" in text and "--dtype fp32" in text
