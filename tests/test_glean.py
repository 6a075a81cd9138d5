"""The GLEAN network: shapes, input checks, determinism, gradients, and a stored golden output."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import tiny_config
from official import golden_value
from safetensors.torch import load_file

from glean_hub import GLEAN, BankConfig, GLEANConfig
from glean_hub.errors import ConfigError

TINY_GOLDEN = Path(__file__).parent / "data" / "tiny_golden.safetensors"


def recipe_model(config: GLEANConfig) -> GLEAN:
    """Weights from the official golden recipe (numpy, independent of torch's RNG)."""
    model = GLEAN(config).eval()
    state = {k: torch.from_numpy(golden_value(k, list(v.shape), t)) for t, (k, v) in enumerate(model.state_dict().items())}
    model.load_state_dict(state)
    return model


def test_output_shape_and_range_contract(tiny):
    lr = torch.rand(3, 3, 8, 8) * 2 - 1
    with torch.no_grad():
        out = tiny(lr)
    assert out.shape == (3, 3, 32, 32)
    assert out.dtype == torch.float32


def test_deterministic_and_batch_independent(tiny):
    lr = torch.rand(2, 3, 8, 8) * 2 - 1
    with torch.no_grad():
        a, b = tiny(lr), tiny(lr)
        single = tiny(lr[1:])
    assert torch.equal(a, b)
    torch.testing.assert_close(a[1:], single, rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    "shape, fragment",
    [((1, 3, 16, 16), "got [1, 3, 16, 16]"), ((1, 1, 8, 8), "got [1, 1, 8, 8]"), ((3, 8, 8), "got [3, 8, 8]"), ((1, 3, 8, 16), "got [1, 3, 8, 16]")],
)
def test_wrong_input_shape_is_a_value_error_naming_the_expected_shape(tiny, shape, fragment):
    with pytest.raises(ValueError) as e:
        tiny(torch.zeros(shape))
    assert "[N, 3, 8, 8]" in str(e.value) and fragment in str(e.value)


def test_integer_input_is_rejected(tiny):
    with pytest.raises(ValueError, match="floating-point"):
        tiny(torch.zeros(1, 3, 8, 8, dtype=torch.uint8))


def test_gradients_reach_every_trainable_parameter_and_never_the_bank(tiny):
    tiny.train()
    tiny(torch.rand(2, 3, 8, 8) * 2 - 1).square().mean().backward()
    trainable = {n for n, p in tiny.named_parameters() if p.requires_grad}
    assert trainable, "nothing to train"
    assert not any(n.startswith("generator.") or n.startswith("fusion_skip.") for n in trainable)
    for name, p in tiny.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and p.grad.abs().sum() > 0, f"no gradient for {name}"
        else:
            assert p.grad is None, f"frozen {name} got a gradient"
    assert {n.split(".")[0] for n in trainable} == {"encoder", "fusion_out", "decoder"}


def test_bankless_ablation_trains_only_what_it_uses():
    model = GLEAN(tiny_config().replace(use_bank=False))
    model(torch.rand(2, 3, 8, 8) * 2 - 1).square().mean().backward()
    for name, p in model.named_parameters():
        assert (p.grad is not None) == p.requires_grad, name
    assert {n.split(".")[0] for n, p in model.named_parameters() if p.requires_grad} == {"encoder", "decoder"}


def test_rgb_skip_path_does_not_change_the_output(tiny):
    """fusion_skip and to_rgb* exist for strict loading only; the official output never uses them."""
    lr = torch.rand(1, 3, 8, 8) * 2 - 1
    with torch.no_grad():
        before = tiny(lr)
        for m in [*tiny.fusion_skip, tiny.generator.to_rgb1, *tiny.generator.to_rgbs]:
            for p in m.parameters():
                p.add_(1.0)
        assert torch.equal(tiny(lr), before)


def test_tiny_golden_output():
    """Regression check of the whole network on numpy-built weights (made with this code once;
    exactness to the official implementation is proved by test_golden.py)."""
    data = load_file(TINY_GOLDEN)
    model = recipe_model(tiny_config(in_size=16, out_size=64))
    with torch.no_grad():
        out = model(data["input"])
    torch.testing.assert_close(out, data["output"], rtol=0, atol=1e-5)


@pytest.mark.parametrize("in_size, out_size", [(4, 32), (8, 64), (16, 32), (4, 256)])
def test_every_power_of_two_pair_builds_and_runs(in_size, out_size):
    model = GLEAN(tiny_config(in_size=in_size, out_size=out_size)).eval()
    with torch.no_grad():
        assert model(torch.zeros(1, 3, in_size, in_size)).shape == (1, 3, out_size, out_size)


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        (dict(in_size=32, out_size=32), "in_size must be smaller"),
        (dict(in_size=12, out_size=64), "power of two"),
        (dict(in_size=8, out_size=32, degradation="jpeg"), "degradation must be one of"),
    ],
)
def test_invalid_configs_fail_on_creation(kwargs, fragment):
    with pytest.raises(ConfigError, match=fragment):
        tiny_config(**kwargs)


def test_config_json_round_trip_is_strict():
    config = tiny_config(category="faces")
    data = config.to_dict()
    assert GLEANConfig.from_dict(data) == config
    assert data["scale"] == 4 and data["bank"]["kind"] == "stylegan2-bank"
    with pytest.raises(ConfigError, match="missing \\['num_rrdbs'\\]"):
        GLEANConfig.from_dict({k: v for k, v in data.items() if k != "num_rrdbs"})
    with pytest.raises(ConfigError, match="unknown \\['colour'\\]"):
        GLEANConfig.from_dict({**data, "colour": "red"})
    with pytest.raises(ConfigError, match="scale=8 disagrees"):
        GLEANConfig.from_dict({**data, "scale": 8})
    with pytest.raises(ConfigError, match="expected a 'glean' config"):
        GLEANConfig.from_dict(data["bank"])


def test_official_channel_table():
    bank = BankConfig(out_size=1024)
    assert [bank.channels(2**i) for i in range(2, 11)] == [512, 512, 512, 512, 512, 256, 128, 64, 32]
