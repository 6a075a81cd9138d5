"""Issue 14: models that share a bank stay independent; hostile configs, weights and loader arguments fail
early with one line of the project's own error types."""

from __future__ import annotations

import json
import math
import time

import pytest
import torch
from conftest import tiny_config, tiny_model
from safetensors.torch import save_file

from glean_hub import GLEAN, GLEANConfig
from glean_hub.config import MAX_PARAMETERS, BankConfig
from glean_hub.errors import CheckpointError, ConfigError, GleanError, ModelNotFoundError

pytestmark = pytest.mark.usefixtures("no_network")


def one_line(e: BaseException) -> str:
    text = str(e)
    assert "\n" not in text and "Traceback" not in text and "\x1b" not in text, text
    return text


# --- shared bank ----------------------------------------------------------------------------------


def test_casting_one_model_never_changes_another_that_shares_its_bank():
    m8 = GLEAN.from_pretrained("faces", scale=8)
    m16 = GLEAN.from_pretrained("faces", scale=16)
    shared = m8.generator.constant_input.input.data_ptr()
    assert m16.generator.constant_input.input.data_ptr() == shared  # one copy in memory
    lr8, lr16 = torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 4, 4)
    with torch.no_grad():
        before = m16(lr16)
        m8.to(torch.bfloat16)
        assert m16.generator.constant_input.input.dtype == torch.float32
        assert torch.equal(m16(lr16), before)
        assert m8(lr8.bfloat16()).dtype == torch.bfloat16
        m16.half()
        assert m8.generator.constant_input.input.dtype == torch.bfloat16
        m16.float()
        assert torch.equal(m16(lr16), before)
    # a model loaded after the casts gets the untouched float32 bank
    again = GLEAN.from_pretrained("faces", scale=16)
    with torch.no_grad():
        assert torch.equal(again(lr16), before)
    assert again.generator.constant_input.input.data_ptr() == shared


def test_loading_a_state_dict_into_one_bank_leaves_the_others(tmp_path):
    a = GLEAN.from_pretrained("faces", scale=8)
    b = GLEAN.from_pretrained("faces", scale=8)
    state = {k: torch.zeros_like(v) for k, v in a.generator.state_dict().items()}
    a.generator.load_state_dict(state)
    assert a.generator.constant_input.input.abs().sum() == 0
    assert b.generator.constant_input.input.abs().sum() > 0
    assert a.generator.constant_input.input.data_ptr() != b.generator.constant_input.input.data_ptr()


def test_requires_grad_and_train_mode_are_per_model():
    a = GLEAN.from_pretrained("faces", scale=8)
    b = GLEAN.from_pretrained("faces", scale=16)
    a.generator.requires_grad_(True).train()
    assert not any(p.requires_grad for p in b.generator.parameters()) and not b.generator.training


# --- config.json ----------------------------------------------------------------------------------


def write_folder(path, config: dict | str | bytes, weights: bytes | None = None):
    path.mkdir(parents=True, exist_ok=True)
    if not isinstance(config, (str, bytes)):
        config = json.dumps(config)
    (path / "config.json").write_bytes(config if isinstance(config, bytes) else config.encode())
    if weights is not None:
        (path / "model.safetensors").write_bytes(weights)
    return path


def good_config() -> dict:
    return tiny_config().to_dict()


def with_field(field: str, value, bank: bool = False) -> dict:
    data = good_config()
    (data["bank"] if bank else data)[field] = value
    return data


BAD_CONFIGS = {
    "list": [1, 2],
    "null": None,
    "number": 5,
    "string": "glean",
    "nan multiplier": with_field("channel_multiplier", math.nan, bank=True),
    "huge multiplier": with_field("channel_multiplier", 1e308, bank=True),
    "inf multiplier": with_field("channel_multiplier", math.inf, bank=True),
    "blur of strings": with_field("blur_kernel", ["a", "b"], bank=True),
    "blur number": with_field("blur_kernel", 5, bank=True),
    "blur zero sum": with_field("blur_kernel", [1, -1], bank=True),
    "lr_mlp string": with_field("lr_mlp", "x", bank=True),
    "bank null": with_field("bank", None),
    "bank list": with_field("bank", [1]),
    "input_range string": with_field("input_range", "ab"),
    "input_range nan": with_field("input_range", [math.nan, 1]),
    "sha number": with_field("bank_sha256", 123),
    "bool in_size": with_field("in_size", True),
    "float in_size": with_field("in_size", 8.0),
    "num_rrdbs huge": with_field("num_rrdbs", 100000),
    "num_rrdbs negative": with_field("num_rrdbs", -1),
    "num_mlps huge": with_field("num_mlps", 10**9, bank=True),
    "out_size huge": with_field("out_size", 2**40, bank=True),
    "channels huge": with_field("rrdb_channels", 10**6),
    "category number": with_field("category", 7),
    "degradation list": with_field("degradation", ["bicubic"]),
    "use_bank string": with_field("use_bank", "yes"),
    "bank_id number": with_field("bank_id", 5),
    "grayscale number": with_field("grayscale", 1, bank=True),
    "style_channels zero": with_field("style_channels", 0, bank=True),
    "unknown key": with_field("colour", "blue"),
}


@pytest.mark.parametrize("name", list(BAD_CONFIGS))
def test_bad_configs_are_refused_before_building(tmp_path, name):
    folder = write_folder(tmp_path / "m", BAD_CONFIGS[name])
    start = time.perf_counter()
    with pytest.raises(ConfigError) as info:
        GLEAN.from_pretrained(str(folder))
    assert time.perf_counter() - start < 5
    assert str(folder) in one_line(info.value)


@pytest.mark.parametrize("raw", [b"\xff\xfe\x00garbage", b"[" * 100_000 + b"]" * 100_000, b'{"in_size": NaN}',
                                 b"", b"{", b" " * (2 << 20)])
def test_unreadable_config_files(tmp_path, raw):
    folder = write_folder(tmp_path / "m", raw)
    with pytest.raises(ConfigError) as info:
        GLEAN.from_pretrained(str(folder))
    one_line(info.value)


def test_the_parameter_limit_is_exact_and_enforced():
    for config in (tiny_config(), tiny_config(in_size=4, out_size=64)):
        with torch.device("meta"):
            model = GLEAN(config)
        assert config.num_parameters() == sum(t.numel() for t in [*model.parameters(), *model.buffers()])
    wide = tiny_config().replace(rrdb_channels=4096, num_rrdbs=100)
    assert wide.num_parameters() > MAX_PARAMETERS
    with pytest.raises(ConfigError, match="refuses more than"):
        GLEANConfig.from_dict(wide.to_dict())


def test_bank_config_alone_is_validated():
    data = tiny_config().bank.to_dict()
    data["channel_multiplier"] = math.nan
    with pytest.raises(ConfigError, match="channel_multiplier"):
        BankConfig.from_dict(data)


# --- model.safetensors ----------------------------------------------------------------------------


def weights_bytes(tmp_path) -> bytes:
    tiny_model().save_pretrained(tmp_path / "good")
    return (tmp_path / "good" / "model.safetensors").read_bytes()


def bad_weights(good: bytes) -> dict[str, bytes]:
    header_len = int.from_bytes(good[:8], "little")
    return {
        "empty": b"",
        "truncated": good[: len(good) // 2],
        "header only": good[: 8 + header_len],
        "random": bytes(range(256)) * 40,
        "2**63 header": (2**63).to_bytes(8, "little") + b"{}",
        "non-json header": (10).to_bytes(8, "little") + b"not json!!" + b"\0" * 16,
        "offsets out of range": (lambda h: len(h).to_bytes(8, "little") + h)(
            b'{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,1000000]}}'),
        "no tensors": (lambda h: len(h).to_bytes(8, "little") + h)(b'{"__metadata__":{"format":"pt"}}'),
    }


def test_broken_weights_name_the_file(tmp_path):
    good = weights_bytes(tmp_path)
    for name, data in bad_weights(good).items():
        folder = write_folder(tmp_path / name.replace(" ", "_").replace("*", ""), good_config(), data)
        with pytest.raises(CheckpointError) as info:
            GLEAN.from_pretrained(str(folder))
        assert "model.safetensors" in one_line(info.value), name


def test_a_truncated_bank_whose_pin_matches(tmp_path):
    from glean_hub.hub import sha256_file

    model = tiny_model()
    sha = model.generator.save_pretrained(tmp_path / "bank")
    weights = tmp_path / "bank" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    sha = sha256_file(weights)
    model.config = model.config.replace(bank_id=str(tmp_path / "bank"), bank_sha256=sha)
    model.save_pretrained(tmp_path / "m", embed_bank=False)
    with pytest.raises(CheckpointError, match="bank.*model.safetensors.*not a readable safetensors file"):
        GLEAN.from_pretrained(str(tmp_path / "m"))


# --- loader arguments -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", [None, 123, 1.5, b"faces", ["faces"], "", "   "])
def test_from_pretrained_with_a_non_name(name):
    with pytest.raises(ModelNotFoundError) as info:
        GLEAN.from_pretrained(name, scale=8)
    one_line(info.value)


@pytest.mark.parametrize("kwargs, match", [
    (dict(device="nonsense"), "device='nonsense'"),
    (dict(device=123456), "device=123456"),
    (dict(torch_dtype=torch.int8), "floating-point"),
    (dict(torch_dtype=torch.bool), "floating-point"),
    (dict(torch_dtype="int8"), "torch_dtype"),
    (dict(torch_dtype=5), "torch_dtype"),
    (dict(scale="8"), "scale must be an integer"),
    (dict(scale=8.0), "scale must be an integer"),
])
def test_bad_loader_arguments(kwargs, match):
    kwargs = {"scale": 8, **kwargs}
    with pytest.raises(ConfigError, match=match) as info:
        GLEAN.from_pretrained("faces", **kwargs)
    one_line(info.value)


def test_categories_are_case_insensitive():
    model = GLEAN.from_pretrained("FACES", scale=8)
    assert model.config.category == "faces"
    with pytest.raises(GleanError):
        GLEAN.from_pretrained("Faces", scale=3)
