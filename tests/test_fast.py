"""The fast path (glean_hub/fast.py) against the reference GLEAN.forward, on tiny models."""

from __future__ import annotations

import os
import warnings

import pytest
import torch
import torch.nn.functional as F

from conftest import tiny_model
from glean_hub import GLEAN
from glean_hub.bench import psnr
from glean_hub.fast import FastStyleConv, optimize, subpixel_weight
from glean_hub.ops import make_kernel, upfirdn2d
from glean_hub.stylegan2 import ModulatedConv2d, ModulatedStyleConv

SIZES = [(8, 32), (4, 64), (16, 32)]


def _input(model: GLEAN, n: int = 3, seed: int = 1) -> torch.Tensor:
    s = model.config.in_size
    return torch.rand(n, 3, s, s, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_subpixel_weight_equals_transposed_conv_and_blur():
    torch.manual_seed(0)
    weight = torch.randn(5, 7, 3, 3)  # [O, I, 3, 3]
    blur = make_kernel((1, 3, 3, 1), gain=4)
    x = torch.randn(2, 7, 6, 9)
    reference = upfirdn2d(F.conv_transpose2d(x, weight.transpose(0, 1), stride=2), blur, pad=(1, 1))
    folded = F.pixel_shuffle(F.conv2d(x, subpixel_weight(weight, blur), padding=1), 2)
    assert folded.shape == reference.shape == (2, 5, 12, 18)
    assert (folded - reference).abs().max() < 1e-5


@pytest.mark.parametrize("upsample", ["transpose", "subpixel"])
@pytest.mark.parametrize("channels_last", [True, False])
@pytest.mark.parametrize("sizes", SIZES)
def test_fp32_equals_reference(sizes, upsample, channels_last):
    model = tiny_model(in_size=sizes[0], out_size=sizes[1])
    x = _input(model)
    with torch.no_grad():
        reference = model(x)
        out = optimize(model, upsample=upsample, channels_last=channels_last)(x)
    assert out.shape == reference.shape and out.dtype == torch.float32 and out.is_contiguous()
    assert (out - reference).abs().max() < 1e-5


def test_style_conv_with_input_modulation_equals_official_grouped_conv():
    torch.manual_seed(0)
    layer = ModulatedStyleConv(6, 5, 8, upsample=True).eval()
    with torch.no_grad():
        layer.noise_injector.weight.fill_(0.3)
        layer.activate.bias.normal_()
    noise = torch.randn(1, 1, 10, 10)
    x, style = torch.randn(3, 6, 5, 5), torch.randn(3, 8)
    with torch.no_grad():
        reference = layer(x, style, noise)
        out = FastStyleConv(layer, noise, torch.float32, torch.contiguous_format, "transpose", None)(x, style)
    assert (out - reference).abs().max() < 1e-5


def test_fp16_rescaling_is_exact():
    """The float16 rescaling of styles and weights (StyleGAN2-ADA) cancels under demodulation."""
    torch.manual_seed(0)
    layer = ModulatedStyleConv(6, 5, 8).eval()
    noise = torch.randn(1, 1, 7, 7)
    x, style = torch.randn(2, 6, 7, 7), torch.randn(2, 8) * 30  # large styles
    with torch.no_grad():
        reference = layer(x, style, noise)
        assert FastStyleConv(layer, noise, torch.float16, torch.contiguous_format, "transpose", None).normalize
        fast = FastStyleConv(layer, noise, torch.float32, torch.contiguous_format, "transpose", None, rescale=True)
        out = fast(x, style)  # the float16 rescaling, evaluated in float32
    assert (out - reference).abs().max() < 1e-5


def test_fp16_clamps_bank_activations():
    model = tiny_model()
    with torch.no_grad():  # push a bank layer far beyond float16's comfortable range
        model.generator.convs[1].activate.bias.fill_(1e4)
    fast = optimize(model, dtype="fp16")
    assert fast.conv_clamp == 256 and all(c.conv_clamp == 256 for c in fast.bank.convs)
    layer = fast.bank.convs[1]
    x = torch.randn(2, layer.weight.shape[1], 8, 8, dtype=torch.float16)
    with torch.no_grad():
        out = layer(x, torch.randn(2, model.config.bank.style_channels))
    assert out.abs().max() <= 256 and torch.isfinite(out).all()
    assert optimize(model, dtype="bf16").conv_clamp is None and optimize(model).conv_clamp is None


@pytest.mark.parametrize("dtype, min_psnr", [("bf16", 50.0), ("fp16", 65.0)])
def test_low_precision_close_to_fp32(dtype, min_psnr):
    model = tiny_model()
    x = _input(model)
    with torch.no_grad():
        reference = model(x)
        out = optimize(model, dtype=dtype)(x)
    assert out.dtype == {"bf16": torch.bfloat16, "fp16": torch.float16}[dtype]
    out = out.float()
    assert torch.isfinite(out).all()
    assert psnr(out, reference) > min_psnr
    rel = (out - reference).square().mean().sqrt() / reference.square().mean().sqrt()
    assert rel < {"bf16": 3e-2, "fp16": 5e-3}[dtype]


def test_reference_model_is_untouched():
    model = tiny_model()
    x = _input(model)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    params = {k: (p, p.dtype, p.stride(), p.requires_grad) for k, p in model.named_parameters()}
    with torch.no_grad():
        before = model(x)
        fast = optimize(model, dtype="bf16", upsample="subpixel")
        fast(x)
        after = model(x)
    assert torch.equal(before, after)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert all((p, p.dtype, p.stride(), p.requires_grad) == params[k] for k, p in model.named_parameters())
    assert all(m.fused for m in model.modules() if isinstance(m, ModulatedConv2d))
    assert not any(p.requires_grad for p in fast.parameters())


def test_models_sharing_a_bank_share_the_fast_bank():
    a, b = tiny_model(seed=0), tiny_model(seed=1)
    b.generator = a.generator
    assert optimize(a).bank is optimize(b).bank
    assert optimize(a, dtype="bf16").bank is not optimize(a).bank


def test_bankless_ablation_and_input_checks():
    model = tiny_model(use_bank=False)
    x = _input(model, n=2)
    with torch.no_grad():
        assert (optimize(model)(x) - model(x)).abs().max() < 1e-5
    fast = optimize(tiny_model())
    with pytest.raises(ValueError, match="expects input of shape"):
        fast(torch.zeros(1, 3, 9, 9))
    with pytest.raises(ValueError, match="dtype"):
        optimize(tiny_model(), dtype="int8")


def test_compile_unavailable_falls_back(monkeypatch):
    model = tiny_model()
    x = _input(model)

    def broken(*args, **kwargs):
        raise RuntimeError("no compiler here")

    monkeypatch.setattr(torch, "compile", broken)
    with pytest.warns(RuntimeWarning, match="torch.compile is unavailable"):
        fast = optimize(model, compile=True)
    assert fast.compiled is None
    with torch.no_grad():
        assert (fast(x) - model(x)).abs().max() < 1e-5


def test_compile_failure_at_first_call_falls_back():
    model = tiny_model()
    x = _input(model)
    fast = optimize(model)

    def failing(x):
        raise RuntimeError("inductor exploded")

    fast.compiled = failing
    with torch.no_grad(), pytest.warns(RuntimeWarning, match="inductor exploded"):
        out = fast(x)
    assert fast.compiled is None
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("error")
        assert torch.equal(fast(x), out)
        assert (out - model(x)).abs().max() < 1e-5


@pytest.mark.skipif(os.environ.get("GLEAN_HUB_TEST_COMPILE") != "1",
                    reason="torch.compile takes minutes on 2 CPU cores; set GLEAN_HUB_TEST_COMPILE=1")
def test_compiled_equals_reference():
    model = tiny_model()
    x = _input(model)
    fast = optimize(model, compile=True)
    with torch.no_grad():
        out = fast(x)
        assert fast.compiled is not None
        assert (out - model(x)).abs().max() < 1e-5
