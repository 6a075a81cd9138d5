"""Shared fixtures: tiny configs that build in milliseconds, and the loopback Hub."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

from glean_hub import BankConfig, GLEAN, GLEANConfig  # noqa: E402

pytest_plugins = ["hub_fixtures"]  # hub_server, offline, go_offline, no_network


def tiny_config(in_size: int = 8, out_size: int = 32, **metadata) -> GLEANConfig:
    """A GLEAN small enough for CPU tests (~0.2 M parameters) with every structural feature of the real one."""
    bank = BankConfig(out_size=out_size, style_channels=32, num_mlps=2, channel_multiplier=1, channel_max=32)
    return GLEANConfig(in_size=in_size, bank=bank, rrdb_channels=16, num_rrdbs=2, rrdb_growth=8, decoder_channels=16, **metadata)


def tiny_model(seed: int = 0, **kwargs) -> GLEAN:
    torch.manual_seed(seed)
    model = GLEAN(tiny_config(**kwargs)).eval()
    with torch.no_grad():  # non-zero noise strengths and biases so that every path matters
        for name, p in model.named_parameters():
            if name.endswith("noise_injector.weight") or name.endswith("activate.bias"):
                p.normal_(0, 0.1)
    return model


def load_script(name: str):
    """scripts/<name>.py as a module (the scripts are not a package)."""
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def tiny() -> GLEAN:
    return tiny_model()


@pytest.fixture(scope="session", autouse=True)
def no_agent_registry_fetch():
    """huggingface_hub >= 2.4 fetches an "agent harnesses" list from huggingface.co the first time it builds request
    headers (any client, the tests' gradio Client included). Tests stay offline: resolve it once, offline (the cached
    copy or an empty list), so no test reaches for the Hub and `no_network` results do not depend on test order."""
    try:
        from huggingface_hub import constants
        from huggingface_hub.utils import _detect_agent
    except ImportError:  # older huggingface_hub: nothing is fetched
        yield
        return
    offline = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True
    try:
        _detect_agent._get_registry()
    finally:
        constants.HF_HUB_OFFLINE = offline
    yield
