"""NVlabs stylegan2-ada-pytorch pickles (issue 16): `G_ema` inside a pickle of `torch_utils.persistence` objects
converts to a bank through a restricted unpickler that never runs code from the file.

No real NVlabs file is at hand, so the pickles here are synthetic, made the way NVlabs' `persistence.py`
pickles: each network reduces to `torch_utils.persistence._reconstruct_persistent_obj(meta)`, meta carrying
the class's source code (which NVlabs' loader executes) and the module's `__dict__` (`_parameters`,
`_buffers`, `_modules`, plain attributes); the top level is {'G', 'D', 'G_ema', 'augment_pipe',
'training_set_kwargs' (a dnnlib EasyDict)}, as `training_loop.py` writes it. The generator's tensors come from
one of our tiny banks, renamed to NVlabs' state-dict names by a table written here independently of the
converter's. What is asserted: every tensor arrives unchanged (so the bank's outputs are bitwise those of the
bank that was disguised), odd networks are refused, and nothing in the file is ever executed. That NVlabs'
own code computes the same function from those tensors is not tested (glean_hub/formats.py says why it should).
"""

from __future__ import annotations

import collections
import contextlib
import io
import pickle
import re
import sys
import types

import numpy as np
import pytest
import torch
from conftest import tiny_model

from glean_hub import StyleGAN2Generator
from glean_hub.cli import main
from glean_hub.convert import convert_bank, read_checkpoint
from glean_hub.errors import CheckpointError, GleanWarning
from glean_hub.formats import NVLABS_GLOBALS

MALICIOUS_SOURCE = "import os\nos.system('touch /tmp/pwned-by-nvlabs-pickle')\nclass Generator: pass\n"


# --- a stand-in for NVlabs' torch_utils.persistence and dnnlib, present only while pickling ------------------------


@contextlib.contextmanager
def nvlabs_modules():
    """Register fake `torch_utils.persistence` and `dnnlib.util` so pickle can name their globals; removed after."""
    persistence = types.ModuleType("torch_utils.persistence")

    def _reconstruct_persistent_obj(meta):  # never called: the loader under test must not import this
        raise AssertionError("the real reconstruct function ran")

    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj
    util = types.ModuleType("dnnlib.util")

    class EasyDict(dict):
        pass

    EasyDict.__module__, EasyDict.__qualname__ = "dnnlib.util", "EasyDict"
    util.EasyDict = EasyDict
    names = {"torch_utils": types.ModuleType("torch_utils"), "torch_utils.persistence": persistence,
             "dnnlib": types.ModuleType("dnnlib"), "dnnlib.util": util}
    saved = {n: sys.modules.get(n) for n in names}
    sys.modules.update(names)
    try:
        yield persistence, util
    finally:
        for n, module in saved.items():
            if module is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = module


class Persistent:
    """Pickles like an NVlabs persistent nn.Module: `_reconstruct_persistent_obj(meta)` with source and __dict__."""

    def __init__(self, reconstruct, class_name: str, params=None, buffers=None, modules=None, source=None, **attrs):
        self.reconstruct, self.class_name, self.source = reconstruct, class_name, source
        self.module_dict = {
            "training": False,
            "_parameters": collections.OrderedDict((k, torch.nn.Parameter(v.clone(), requires_grad=False))
                                                   for k, v in (params or {}).items()),
            "_buffers": collections.OrderedDict((k, v.clone()) for k, v in (buffers or {}).items()),
            "_non_persistent_buffers_set": set(),
            "_backward_hooks": collections.OrderedDict(),
            "_forward_hooks": collections.OrderedDict(),
            "_modules": collections.OrderedDict(modules or {}),
            **attrs,
        }

    def __reduce__(self):
        meta = {"type": "class", "version": 6, "module_src": self.source or f"class {self.class_name}: ...\n",
                "class_name": self.class_name, "state": self.module_dict}
        return (self.reconstruct, (meta,))


def nvlabs_names(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our (MMGeneration) generator keys -> NVlabs G_ema state-dict names and shapes (written independently)."""
    out = {}
    for key, v in state.items():
        if m := re.fullmatch(r"style_mapping\.(\d+)\.linear\.weight_orig", key):
            out[f"mapping.fc{int(m[1]) - 1}.weight"] = v
        elif m := re.fullmatch(r"style_mapping\.(\d+)\.bias", key):
            out[f"mapping.fc{int(m[1]) - 1}.bias"] = v
        elif key == "constant_input.input":
            out["synthesis.b4.const"] = v[0]
        elif m := re.fullmatch(r"injected_noise_(\d+)", key):
            n = int(m[1])
            layer = "b4.conv1" if n == 0 else f"b{8 * 2 ** ((n - 1) // 2)}.conv{(n - 1) % 2}"
            out[f"synthesis.{layer}.noise_const"] = v[0, 0]
        else:
            m = re.fullmatch(r"(conv1|to_rgb1|convs\.(\d+)|to_rgbs\.(\d+))\.(.+)", key)
            name, j, k, rest = m[1], m[2], m[3], m[4]
            if name == "conv1":
                layer = "b4.conv1"
            elif name == "to_rgb1":
                layer = "b4.torgb"
            elif j is not None:
                layer = f"b{8 * 2 ** (int(j) // 2)}.conv{int(j) % 2}"
            else:
                layer = f"b{8 * 2 ** int(k)}.torgb"
            renamed = {"conv.weight_orig": ("weight", lambda t: t[0]),
                       "conv.style_modulation.linear.weight_orig": ("affine.weight", None),
                       "conv.style_modulation.bias": ("affine.bias", None),
                       "noise_injector.weight": ("noise_strength", lambda t: t.reshape(())),
                       "activate.bias": ("bias", None),
                       "bias": ("bias", lambda t: t.reshape(-1)),
                       "conv.blur.kernel": ("resample_filter", lambda t: t / 4)}
            if rest == "upsample.kernel":  # the skip image's up-sampling filter belongs to the block
                out[f"synthesis.{layer.split('.')[0]}.resample_filter"] = v / 4
                continue
            new, reshape = renamed[rest]
            out[f"synthesis.{layer}.{new}"] = reshape(v) if reshape else v
    return out


def nvlabs_generator(reconstruct, state: dict[str, torch.Tensor], source=None, conv_clamp=None, **overrides):
    """A persistent-object tree shaped like stylegan2-ada-pytorch's Generator, holding `state` (NVlabs names)."""
    tensors = nvlabs_names(state) | {"mapping.w_avg": torch.zeros(state["style_mapping.1.bias"].shape[0])}
    f = tensors["synthesis.b8.conv0.resample_filter"]
    for key in [k for k in tensors if k.endswith("conv1.weight")] + ["synthesis.b4.torgb.weight"]:
        if key.endswith("conv1.weight"):
            tensors[key.replace(".weight", ".resample_filter")] = f.clone()  # up=1 layers carry one too, unused
    tensors["synthesis.b4.resample_filter"] = f.clone()

    def leaves(prefix):
        return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix) and "." not in k[len(prefix):]}

    def fc(prefix, lr_multiplier=1, **attrs):  # weight_gain is a numpy.float64 in NVlabs' files, as here
        p = leaves(prefix)
        return Persistent(reconstruct, "FullyConnectedLayer", params={"weight": p["weight"], "bias": p["bias"]},
                          source=source, activation=attrs.pop("activation", "linear"), bias_gain=lr_multiplier,
                          weight_gain=lr_multiplier / np.sqrt(p["weight"].shape[1]), **attrs)

    def layer(prefix, up):
        p = leaves(prefix)
        params = {k: p[k] for k in ("weight", "noise_strength", "bias")}
        buffers = {"resample_filter": p["resample_filter"], "noise_const": p["noise_const"]}
        return Persistent(reconstruct, "SynthesisLayer", params=params, buffers=buffers, source=source,
                          modules={"affine": fc(prefix + "affine.")}, resolution=p["noise_const"].shape[-1],
                          up=up, activation=overrides.get("activation", "lrelu"), use_noise=True, conv_clamp=conv_clamp,
                          padding=1, act_gain=np.sqrt(2))

    def torgb(prefix):
        p = leaves(prefix)
        return Persistent(reconstruct, "ToRGBLayer", params={"weight": p["weight"], "bias": p["bias"]}, source=source,
                          modules={"affine": fc(prefix + "affine.")}, conv_clamp=conv_clamp,
                          weight_gain=1 / np.sqrt(p["weight"].shape[1]))

    resolutions = sorted(int(m[1]) for k in tensors if (m := re.fullmatch(r"synthesis\.b(\d+)\.torgb\.bias", k)))
    blocks = {}
    for res in resolutions:
        pre = f"synthesis.b{res}."
        modules = {} if res == 4 else {"conv0": layer(pre + "conv0.", 2)}
        modules |= {"conv1": layer(pre + "conv1.", 1), "torgb": torgb(pre + "torgb.")}
        params = {"const": tensors[pre + "const"]} if res == 4 else {}
        blocks[f"b{res}"] = Persistent(reconstruct, "SynthesisBlock", params=params, source=source, modules=modules,
                                       buffers={"resample_filter": tensors[pre + "resample_filter"]},
                                       resolution=res, architecture=overrides.get("architecture", "skip"))
    n_fc = len([k for k in tensors if re.fullmatch(r"mapping\.fc\d+\.bias", k)])
    mapping = Persistent(reconstruct, "MappingNetwork", buffers={"w_avg": tensors["mapping.w_avg"]}, source=source,
                         modules={f"fc{i}": fc(f"mapping.fc{i}.", activation="lrelu",
                                               lr_multiplier=overrides.get("lr_multiplier", 0.01)) for i in range(n_fc)},
                         num_layers=n_fc, w_avg_beta=0.995)
    synthesis = Persistent(reconstruct, "SynthesisNetwork", modules=blocks, source=source,
                           block_resolutions=resolutions, img_resolution=resolutions[-1])
    return Persistent(reconstruct, "Generator", modules={"synthesis": synthesis, "mapping": mapping}, source=source,
                      z_dim=tensors["mapping.fc0.weight"].shape[1], c_dim=overrides.get("c_dim", 0),
                      w_dim=tensors["mapping.fc0.weight"].shape[0], img_resolution=resolutions[-1], img_channels=3)


def write_nvlabs_pickle(path, bank: StyleGAN2Generator, *, extra=None, source=None, **overrides):
    with nvlabs_modules() as (persistence, util):
        reconstruct = persistence._reconstruct_persistent_obj
        g_ema = nvlabs_generator(reconstruct, bank.state_dict(), source=source, **overrides)
        zeros = {k: torch.zeros_like(v) for k, v in bank.state_dict().items()}
        data = {
            "training_set_kwargs": util.EasyDict(path="~/datasets/ffhq.zip", resolution=bank.config.out_size,
                                                 use_labels=False, xflip=True, class_name="training.dataset.ImageFolderDataset"),
            "G": nvlabs_generator(reconstruct, zeros, source=source, **overrides),
            "D": Persistent(reconstruct, "Discriminator", params={"b4.out.weight": torch.ones(1, 8)}, source=source),
            "G_ema": g_ema,
            "augment_pipe": Persistent(reconstruct, "AugmentPipe", buffers={"p": torch.zeros([])}, source=source),
            **(extra or {}),
        }
        with open(path, "wb") as f:
            pickle.dump(data, f, protocol=3)  # stylegan2-ada-pytorch's pickle.dump default on Python 3.7
    assert "torch_utils.persistence" not in sys.modules
    return path


# --- tests ---------------------------------------------------------------------------------------------------------


def test_the_synthetic_file_is_shaped_like_the_real_one(tmp_path):
    import pickletools

    path = write_nvlabs_pickle(tmp_path / "network-snapshot-000000.pkl", tiny_model(seed=2).generator)
    data = path.read_bytes()
    globals_named = {tuple(arg.split(" ")) for op, arg, _ in pickletools.genops(data) if op.name == "GLOBAL"}
    assert ("torch_utils.persistence", "_reconstruct_persistent_obj") in globals_named
    assert ("numpy", "dtype") in globals_named  # numpy.float64 gains, as NVlabs' layers store them
    assert globals_named <= set(NVLABS_GLOBALS)  # the allow-list covers it, nothing more was needed
    assert b"class Generator" in data  # the source code travels in the file, as in the real ones


def test_g_ema_converts_to_a_bank_with_every_tensor_unchanged(tmp_path):
    bank = tiny_model(seed=2).generator
    path = write_nvlabs_pickle(tmp_path / "network-snapshot-000123.pkl", bank)
    state = read_checkpoint(path)
    assert all(k.startswith("generator_ema.") for k in state)
    ours = bank.state_dict()
    assert {k.removeprefix("generator_ema.") for k in state} == set(ours)
    for k, v in state.items():
        assert torch.equal(v, ours[k.removeprefix("generator_ema.")]), k

    assert main(["convert-bank", str(path), str(tmp_path / "bank"), "--category", "faces"]) == 0
    loaded = StyleGAN2Generator.from_pretrained(str(tmp_path / "bank"))
    assert loaded.config == bank.config.__class__(**{**bank.config.__dict__, "category": "faces"})
    w = torch.randn(2, bank.config.num_styles, bank.config.style_channels)
    with torch.no_grad():  # the same tensors in the same modules: bitwise the same images as the disguised bank
        assert torch.equal(loaded.synthesis(w), bank.synthesis(w))


def test_a_pickle_that_tries_to_run_code_is_refused_and_nothing_runs(tmp_path, monkeypatch):
    class Exploit:
        def __reduce__(self):
            return (__import__("os").system, ("touch /tmp/pwned-by-nvlabs-pickle",))

    bank = tiny_model(seed=2).generator
    path = write_nvlabs_pickle(tmp_path / "evil.pkl", bank, extra={"payload": Exploit()})
    ran = []
    monkeypatch.setattr("os.system", lambda command: ran.append(command))  # a call would be recorded, not run
    with pytest.raises(CheckpointError, match=r"refused to unpickle (posix|os)\.system"):
        convert_bank(path, tmp_path / "out")
    assert ran == [] and not (tmp_path / "out").exists()

    for module, name in [("builtins", "eval"), ("builtins", "exec"), ("subprocess", "Popen"), ("torch", "load"),
                         ("torch_utils.persistence", "persistent_class"), ("dnnlib.util", "call_func_by_name")]:
        payload = b"\x80\x03c" + f"{module}\n{name}\n".encode() + b"X\x06\x00\x00\x00print(1)\x85R."
        evil = tmp_path / "raw.pkl"
        evil.write_bytes(payload[:2] + b"}q\x00X\x17\x00\x00\x00torch_utils.persistenceq\x010" + payload[2:])
        with pytest.raises(CheckpointError, match=f"refused to unpickle {re.escape(module)}.{name}"):
            read_checkpoint(evil)


def test_the_source_code_in_the_file_is_never_executed(tmp_path, monkeypatch):
    bank = tiny_model(seed=2).generator
    path = write_nvlabs_pickle(tmp_path / "source.pkl", bank, source=MALICIOUS_SOURCE)
    ran = []
    monkeypatch.setattr("os.system", lambda command: ran.append(command))
    real_exec, real_compile = exec, compile
    monkeypatch.setattr("builtins.exec", lambda *a, **k: ran.append("exec") or real_exec(*a, **k))
    monkeypatch.setattr("builtins.compile", lambda *a, **k: ran.append("compile") or real_compile(*a, **k))
    state = read_checkpoint(path)
    assert len(state) == len(bank.state_dict())
    assert ran == [] and "torch_utils.persistence" not in sys.modules and "torch_utils" not in sys.modules


@pytest.mark.parametrize(("overrides", "message"), [
    ({"c_dim": 10}, "class-conditional"),
    ({"architecture": "resnet"}, "architecture 'resnet'"),
    ({"lr_multiplier": 1.0}, "learning-rate multiplier 1.0"),
    ({"activation": "relu"}, "activation 'relu'"),
])
def test_networks_a_bank_cannot_represent_are_refused_by_name(tmp_path, overrides, message):
    path = write_nvlabs_pickle(tmp_path / "odd.pkl", tiny_model(seed=2).generator, **overrides)
    with pytest.raises(CheckpointError, match=message):
        read_checkpoint(path)


def test_conv_clamp_is_accepted_with_a_warning_that_says_what_differs(tmp_path):
    path = write_nvlabs_pickle(tmp_path / "clamped.pkl", tiny_model(seed=2).generator, conv_clamp=256)
    with pytest.warns(GleanWarning, match=r"clamps activations to \+-256"):
        read_checkpoint(path)


def test_broken_pickles_are_one_line(tmp_path):
    path = write_nvlabs_pickle(tmp_path / "whole.pkl", tiny_model(seed=2).generator)
    data = path.read_bytes()
    (tmp_path / "cut.pkl").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="not a readable NVlabs network pickle") as e:
        read_checkpoint(tmp_path / "cut.pkl")
    assert "\n" not in str(e.value)
    with nvlabs_modules() as (persistence, _):  # a pickle with networks but no G_ema
        buf = io.BytesIO()
        pickle.dump({"G": Persistent(persistence._reconstruct_persistent_obj, "Generator")}, buf, protocol=3)
    (tmp_path / "no-ema.pkl").write_bytes(buf.getvalue())
    with pytest.raises(CheckpointError, match="without a G_ema"):
        read_checkpoint(tmp_path / "no-ema.pkl")


@pytest.mark.parametrize(("extra", "message"), [
    (np.dtype(object), "numpy dtype 'O8' refused"),
    (np.arange(3), r"refused to unpickle numpy\._?core\.multiarray\._reconstruct"),
])
def test_numpy_beyond_plain_number_scalars_is_refused(tmp_path, extra, message):
    path = write_nvlabs_pickle(tmp_path / "numpy.pkl", tiny_model(seed=2).generator, extra={"x": extra})
    with pytest.raises(CheckpointError, match=message):
        read_checkpoint(path)
