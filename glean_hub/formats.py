"""StyleGAN2 generators in the layouts people have, other than MMGeneration's: rename tables to our keys.

rosinality/stylegan2-pytorch checkpoints (`train.py`: {'g', 'd', 'g_ema', 'g_optim', 'd_optim', 'args'};
`convert_weight.py`: {'g_ema', 'latent_avg'}) hold the generator under `g_ema` with the names MMGeneration's
were derived from; the numerics are the same (equalised lr, modulated convs, the same blur kernels and
noise), so a rename table is the whole conversion. `args` (an argparse.Namespace) is the one class allowed
beyond tensors and containers. The discriminator (`d`) has another layout and is dropped.

NVlabs stylegan2-ada-pytorch pickles (`G_ema` inside a pickle of `torch_utils.persistence` classes) are read by
a restricted unpickler that never runs code from the file, then renamed the same way (see the section below).
"""

from __future__ import annotations

import argparse
import re

import torch

# torch.load(weights_only=True) may build these (argparse.Namespace: attribute assignment only, no code).
SAFE_GLOBALS = [argparse.Namespace]

# rosinality key -> MMGeneration key (ours), first match wins; a key that matches no rule is an error
ROSINALITY_RENAMES: tuple[tuple[str, str], ...] = (
    (r"^style\.(\d+)\.weight$", r"style_mapping.\1.linear.weight_orig"),
    (r"^style\.(\d+)\.bias$", r"style_mapping.\1.bias"),
    (r"^input\.input$", "constant_input.input"),
    (r"^noises\.noise_(\d+)$", r"injected_noise_\1"),
    (r"^(conv1|convs\.\d+|to_rgb1|to_rgbs\.\d+)\.conv\.weight$", r"\1.conv.weight_orig"),
    (r"^(conv1|convs\.\d+|to_rgb1|to_rgbs\.\d+)\.conv\.modulation\.weight$", r"\1.conv.style_modulation.linear.weight_orig"),
    (r"^(conv1|convs\.\d+|to_rgb1|to_rgbs\.\d+)\.conv\.modulation\.bias$", r"\1.conv.style_modulation.bias"),
    (r"^(conv1|convs\.\d+)\.noise\.weight$", r"\1.noise_injector.weight"),
    (r"^(conv1|convs\.\d+)\.activate\.bias$", r"\1.activate.bias"),
    (r"^(convs\.\d+)\.conv\.blur\.kernel$", r"\1.conv.blur.kernel"),
    (r"^(to_rgb1|to_rgbs\.\d+)\.bias$", r"\1.bias"),
    (r"^(to_rgbs\.\d+)\.upsample\.kernel$", r"\1.upsample.kernel"),
)


def is_rosinality(obj) -> bool:
    return isinstance(obj, dict) and isinstance(obj.get("g_ema"), dict) and "state_dict" not in obj


def rosinality_to_mmgen(obj: dict) -> dict[str, torch.Tensor]:
    """{'g_ema': {...}} -> {'generator_ema.<our key>': tensor}; unknown keys raise CheckpointError by name."""
    from .errors import CheckpointError

    out, unknown = {}, []
    for key, value in obj["g_ema"].items():
        for pattern, target in ROSINALITY_RENAMES:
            if re.match(pattern, key):
                out["generator_ema." + re.sub(pattern, target, key)] = value
                break
        else:
            unknown.append(key)
    if unknown:
        raise CheckpointError(f"rosinality checkpoint: g_ema keys that no rename rule covers: {', '.join(unknown[:10])}")
    if not all(isinstance(v, torch.Tensor) for v in out.values()):
        raise CheckpointError("rosinality checkpoint: g_ema holds something other than tensors")
    return out


# ---------------------------------------------------------------------------------------------
# NVlabs stylegan2-ada-pytorch pickles (network-snapshot-*.pkl, and the TF models converted by its legacy.py)
# ---------------------------------------------------------------------------------------------
#
# Those files are plain pickles of {'G', 'D', 'G_ema', 'augment_pipe', 'training_set_kwargs'}. The networks are
# `torch_utils.persistence` classes: each pickles as a call of `_reconstruct_persistent_obj(meta)`, where meta
# holds the class's *source code* (which the real loader executes) and the module's `__dict__`. Here a restricted
# unpickler answers only the globals listed in `NVLABS_GLOBALS`: the persistent object becomes an inert
# `PersistentRecord` (its source is never compiled), EasyDict a dict, numpy number scalars Python numbers, tensors
# are rebuilt by torch's own functions from storages read with torch.load(weights_only=True); any other global
# is refused by name.
#
# Renaming G_ema to our (MMGeneration) keys is exact for the tensors (tested: every tensor arrives unchanged up
# to the reshapes below). That the networks then compute the same function rests on the code of both ports
# (each follows the TF original: lr-multiplied mapping, demodulated convs, transposed up-convs with the TF weight
# flipped in both, [1, 3, 3, 1] blur, skip ToRGBs) and is not tested against NVlabs' code, which is not at hand.
# Known differences: NVlabs clamps activations to +-conv_clamp (256 in networks trained with its train.py;
# a warning says so) and demodulates without the 1/sqrt(fan_in) factor, which moves the 1e-8 epsilon (~1e-9
# relative).


class PersistentRecord:
    """An NVlabs persistent object as data: its class name and attributes (`state`); no code from the file."""

    def __init__(self, class_name: str, state: dict):
        self.class_name = class_name
        self.state = state

    def __repr__(self) -> str:
        return f"PersistentRecord({self.class_name})"


def _reconstruct_persistent_obj(meta):
    from .errors import CheckpointError

    if not (isinstance(meta, dict) and meta.get("type") == "class" and isinstance(meta.get("class_name"), str)
            and isinstance(meta.get("state"), dict)):
        raise CheckpointError("NVlabs pickle: a persistent object without the expected {type: 'class', class_name, state}")
    return PersistentRecord(meta["class_name"], meta["state"])


def _load_storage(data):
    import io

    if not isinstance(data, (bytes, bytearray)):
        from .errors import CheckpointError

        raise CheckpointError("NVlabs pickle: a tensor storage that is not bytes")
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


_NUMPY_DTYPES = {"f2", "f4", "f8", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "b1"}


def _numpy_dtype(spec, align=False, copy=True):
    """numpy.dtype for the plain number types only (NVlabs stores gains such as lr / sqrt(n) as numpy.float64)."""
    import numpy as np

    from .errors import CheckpointError

    if not isinstance(spec, str) or spec not in _NUMPY_DTYPES:
        raise CheckpointError(f"NVlabs pickle: numpy dtype {str(spec)[:20]!r} refused (only plain numbers are read)")
    return np.dtype(spec)


def _numpy_scalar(dtype, data=None):
    """A numpy number scalar, returned as the Python number it holds."""
    import numpy as np

    from .errors import CheckpointError

    if not (isinstance(dtype, np.dtype) and dtype.kind in "biuf" and isinstance(data, bytes) and len(data) == dtype.itemsize):
        raise CheckpointError("NVlabs pickle: a numpy scalar that is not a plain number")
    return np.frombuffer(data, dtype)[0].item()


def _nvlabs_globals() -> dict[tuple[str, str], object]:
    import collections

    return {
        ("numpy", "dtype"): _numpy_dtype,
        ("numpy.core.multiarray", "scalar"): _numpy_scalar,  # numpy < 2 (the NVlabs era)
        ("numpy._core.multiarray", "scalar"): _numpy_scalar,  # numpy >= 2
        ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
        ("dnnlib.util", "EasyDict"): dict,
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("builtins", "set"): set,
        ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
        ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
        ("torch.storage", "_load_from_bytes"): _load_storage,
    }


NVLABS_GLOBALS = tuple(_nvlabs_globals())  # (module, name) pairs the restricted unpickler answers


def is_nvlabs_pickle(path) -> bool:
    """A raw pickle (not torch's zip or legacy format) that names torch_utils.persistence near its start."""
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    return head[:1] == b"\x80" and head[2:3] != b"\x8a" and b"torch_utils.persistence" in head


def read_nvlabs_pickle(path) -> dict:
    """Unpickle an NVlabs network pickle with only `NVLABS_GLOBALS` answered; anything else is refused."""
    import pickle

    from .errors import CheckpointError

    allowed = _nvlabs_globals()

    class Restricted(pickle.Unpickler):
        def find_class(self, module, name):
            found = allowed.get((module, name))
            if found is None:
                raise CheckpointError(
                    f"{path}: refused to unpickle {module}.{name}: an NVlabs network pickle needs only tensors, "
                    "containers and torch_utils.persistence objects, so this file is not one (or it carries code)"
                )
            return found

        def persistent_load(self, pid):
            raise CheckpointError(f"{path}: persistent ids are not part of an NVlabs network pickle")

    try:
        with open(path, "rb") as f:
            data = Restricted(f).load()
    except CheckpointError:
        raise
    except Exception as e:  # noqa: BLE001 - truncated or corrupt pickles, wrong arguments for the allowed functions
        raise CheckpointError(f"{path}: not a readable NVlabs network pickle ({type(e).__name__}: {e})"[:300]) from None
    if not isinstance(data, dict) or not isinstance(data.get("G_ema"), PersistentRecord):
        raise CheckpointError(f"{path}: an NVlabs pickle without a G_ema network (keys: {sorted(data)[:8] if isinstance(data, dict) else type(data).__name__})")
    return data


def _module_tensors(record: PersistentRecord, prefix: str = "") -> tuple[dict[str, torch.Tensor], dict[str, PersistentRecord]]:
    """(state_dict-style tensors, every submodule record by its dotted name) of a persistent nn.Module record."""
    from .errors import CheckpointError

    tensors, modules = {}, {prefix.rstrip("."): record}
    for slot in ("_parameters", "_buffers"):
        for name, value in (record.state.get(slot) or {}).items():
            if value is None:
                continue
            if not isinstance(value, torch.Tensor):
                raise CheckpointError(f"NVlabs pickle: {prefix}{name} is a {type(value).__name__}, not a tensor")
            tensors[prefix + name] = value.detach()
    for name, child in (record.state.get("_modules") or {}).items():
        if not isinstance(child, PersistentRecord):
            raise CheckpointError(f"NVlabs pickle: submodule {prefix}{name} is a {type(child).__name__}, not a persistent network")
        t, m = _module_tensors(child, f"{prefix}{name}.")
        tensors |= t
        modules |= m
    return tensors, modules


# NVlabs G_ema key -> (our key, reshape): b{R} is the block at resolution R; {k} = log2(R) - 3 for R >= 8.
def _nvlabs_target(key: str, resolutions: dict[int, int]):
    m = re.fullmatch(r"mapping\.fc(\d+)\.(weight|bias)", key)
    if m:
        i = int(m.group(1)) + 1  # slot 0 is the parameter-free PixelNorm
        return (f"style_mapping.{i}.linear.weight_orig" if m.group(2) == "weight" else f"style_mapping.{i}.bias"), None
    if key == "synthesis.b4.const":
        return "constant_input.input", lambda t: t.unsqueeze(0)
    m = re.fullmatch(r"synthesis\.b(\d+)\.(conv0|conv1|torgb)\.(.+)", key)
    if m:
        res, layer, rest = int(m.group(1)), m.group(2), m.group(3)
        k = resolutions[res]
        if layer == "torgb":
            name = "to_rgb1" if res == 4 else f"to_rgbs.{k}"
        else:
            name = "conv1" if res == 4 else f"convs.{2 * k + (layer == 'conv1')}"
        noise = 0 if res == 4 else 2 * k + 1 + (layer == "conv1")
        table = {
            "weight": (f"{name}.conv.weight_orig", lambda t: t.unsqueeze(0)),
            "affine.weight": (f"{name}.conv.style_modulation.linear.weight_orig", None),
            "affine.bias": (f"{name}.conv.style_modulation.bias", None),
            "bias": (f"{name}.bias", lambda t: t.reshape(1, -1, 1, 1)) if layer == "torgb" else (f"{name}.activate.bias", None),
            "noise_strength": (f"{name}.noise_injector.weight", lambda t: t.reshape(1)),
            "noise_const": (f"injected_noise_{noise}", lambda t: t.reshape(1, 1, *t.shape)),
            # the FIR filter of an up-sampling conv, as the blur kernel after the transposed conv (gain up^2 = 4)
            "resample_filter": (f"{name}.conv.blur.kernel", lambda t: t * 4) if layer == "conv0" else (None, None),
        }
        if rest in table:
            return table[rest]
    m = re.fullmatch(r"synthesis\.b(\d+)\.resample_filter", key)
    if m:  # the block's filter up-samples the skip image before its ToRGB adds to it
        res = int(m.group(1))
        return (None, None) if res == 4 else (f"to_rgbs.{resolutions[res]}.upsample.kernel", lambda t: t * 4)
    if key == "mapping.w_avg":  # the truncation average: GLEAN does not truncate
        return None, None
    return "", None  # unknown


def _check_nvlabs(G: PersistentRecord, modules: dict[str, PersistentRecord]) -> list[str]:
    """Refuse what the rename cannot represent; return notes on what it represents approximately."""
    from .config import BankConfig
    from .errors import CheckpointError

    def attr(record, name, default=None):
        return record.state.get(name, default)

    problems, notes = [], []
    if attr(G, "c_dim", 0):
        problems.append(f"it is class-conditional (c_dim={attr(G, 'c_dim')}); banks are unconditional")
    if attr(G, "img_channels", 3) != 3:
        problems.append(f"it makes {attr(G, 'img_channels')}-channel images; banks make RGB")
    clamps = set()
    for name, record in modules.items():
        cls = record.class_name
        if cls == "SynthesisBlock" and attr(record, "architecture", "skip") != "skip":
            problems.append(f"{name} has architecture {attr(record, 'architecture')!r}; only 'skip' (StyleGAN2's) is supported")
        if cls == "SynthesisLayer":
            if not attr(record, "use_noise", True):
                problems.append(f"{name} has no noise input")
            if attr(record, "activation", "lrelu") != "lrelu":
                problems.append(f"{name} uses activation {attr(record, 'activation')!r}, not lrelu")
        if cls == "FullyConnectedLayer" and name.startswith("mapping.fc"):
            gain = attr(record, "bias_gain", BankConfig.lr_mlp)
            if not isinstance(gain, (int, float)) or abs(gain - BankConfig.lr_mlp) > 1e-12:
                problems.append(f"{name} has learning-rate multiplier {gain!r}; banks use {BankConfig.lr_mlp}")
            if attr(record, "activation", "lrelu") != "lrelu":
                problems.append(f"{name} uses activation {attr(record, 'activation')!r}, not lrelu")
        if cls in ("SynthesisLayer", "ToRGBLayer") and attr(record, "conv_clamp") is not None:
            clamps.add(attr(record, "conv_clamp"))
    if problems:
        raise CheckpointError("NVlabs G_ema cannot be a bank: " + "; ".join(problems[:5]))
    if clamps:
        notes.append(f"the NVlabs generator clamps activations to +-{', '.join(map(str, sorted(clamps)))} (conv_clamp); "
                     "the bank does not, so outputs differ wherever an activation exceeds that")
    return notes


def nvlabs_to_mmgen(path) -> dict[str, torch.Tensor]:
    """An NVlabs stylegan2-ada-pytorch pickle -> {'generator_ema.<our key>': tensor}; unknown keys raise by name."""
    import warnings

    from .errors import CheckpointError, GleanWarning

    G = read_nvlabs_pickle(path)["G_ema"]
    tensors, modules = _module_tensors(G)
    blocks = sorted(int(m.group(1)) for k in tensors if (m := re.fullmatch(r"synthesis\.b(\d+)\.torgb\.bias", k)))
    if not blocks or blocks[0] != 4 or any(b != 4 * 2 ** i for i, b in enumerate(blocks)):
        raise CheckpointError(f"{path}: G_ema's synthesis blocks are at {blocks}, expected 4, 8, 16, ...")
    notes = _check_nvlabs(G, {k: v for k, v in modules.items() if k})
    resolutions = {res: i - 1 for i, res in enumerate(blocks)}  # b8 -> 0, b16 -> 1, ...
    out, unknown = {}, []
    for key, value in tensors.items():
        target, reshape = _nvlabs_target(key, resolutions)
        if target == "":
            unknown.append(key)
        elif target is not None:
            out["generator_ema." + target] = reshape(value) if reshape else value
    if unknown:
        raise CheckpointError(f"NVlabs G_ema tensors that no rename rule covers: {', '.join(unknown[:10])}")
    for note in notes:
        warnings.warn(f"{path}: {note}", GleanWarning, stacklevel=2)
    return out
