"""Loading, saving and pushing GLEAN models and latent banks: safetensors only, strict, Hub-native.

Folder layout (the same on disk, in the package's bundled weights and in a Hub repo):

    bank repo:   config.json (BankConfig)  model.safetensors (bank)  [discriminator.safetensors]  README.md
    GLEAN repo:  config.json (GLEANConfig) model.safetensors         README.md

A GLEAN repo either references its bank (`bank_id` + `bank_sha256` in config.json; the weights
file then holds only encoder, fusions and decoder) or embeds it (`bank_id` null; the weights
file also holds every `generator.*` tensor). A referenced bank is found, in this order, among
the bundled banks, as a local folder (absolute, or relative to the GLEAN folder), or on the Hub;
its `model.safetensors` must hash to `bank_sha256`, or loading fails. Loaded banks share their
tensors' memory between models (same sha256, dtype and device), but every model gets its own bank
module and Parameter objects: casting or moving one model (`.to`, `.half`, `.cuda`) never changes
another, and `load_state_dict` into one bank first gives it private copies of its tensors.

Nothing is ever unpickled here: weights are read with safetensors only.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors.torch import load_file, save_file

from .config import CONFIG_NAME, WEIGHTS_NAME, BankConfig, GLEANConfig
from .errors import BankMismatchError, CheckpointError, ConfigError, GleanError, ModelNotFoundError, os_error_message

if TYPE_CHECKING:  # the model classes pass themselves in (cls=): this module imports no model module
    from .glean import GLEAN
    from .stylegan2 import StyleGAN2Generator

BANK_PREFIX = "generator."
DISCRIMINATOR_NAME = "discriminator.safetensors"
CARD_NAME = "README.md"
# One metadata key only: safetensors writes the metadata map in hash order, so two keys would make the
# bytes (and the sha256 that GLEAN repos pin their bank by) differ between two saves of the same tensors.
SAFETENSORS_METADATA = {"format": "pt"}


# ---------------------------------------------------------------------------------------------
# Finding files: local folder or Hub repo
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HubOptions:
    """The Hub arguments every loader accepts, passed through to `hf_hub_download`."""

    revision: str | None = None
    cache_dir: str | os.PathLike | None = None
    local_files_only: bool = False
    token: str | bool | None = None
    force_download: bool = False  # download again even if the file is in the HF cache


def is_model_folder(path: str | os.PathLike) -> bool:
    """A local folder with a config.json: such a folder wins over a category or repo id of the same name."""
    return (Path(path).expanduser() / CONFIG_NAME).is_file()


def bundled_bank(repo_id: str | os.PathLike, revision: str | None = None) -> str | None:
    """The installed copy of a bundled bank repo (`glean-hub/bank-faces-64`), when the revision allows it."""
    from .registry import bank_entry

    if is_model_folder(repo_id):
        return None
    entry = bank_entry(str(repo_id))
    if entry is None or entry.local_dir is None or revision not in (None, entry.revision):
        return None
    return str(entry.local_dir)


def one_dtype(torch_dtype, dtype):
    """`torch_dtype=` (transformers, diffusers < 0.32) and `dtype=` (their newer name) are one argument."""
    if torch_dtype is not None and dtype is not None and torch_dtype != dtype:
        raise ConfigError(f"torch_dtype={torch_dtype!r} and dtype={dtype!r} disagree; pass one of them (they are the same argument)")
    return dtype if torch_dtype is None else torch_dtype


def check_safe_serialization(safe_serialization: bool) -> None:
    if not safe_serialization:
        raise ConfigError("safe_serialization=False is not supported: glean-hub writes safetensors only (no pickled .bin files)")


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def fetch(name_or_path: str | os.PathLike, filename: str, options: HubOptions, required: bool = True) -> Path | None:
    """Path of `filename` in a local folder or a Hub repo (downloaded into the HF cache).

    Hub failures become `ModelNotFoundError`s that say what to do; a missing optional file is None.
    Released names (`openmmlab/glean-cats-8x`) and `.pth` URLs resolve to their converted cache folder.
    """
    from .released import resolve

    name_or_path = resolve(name_or_path, options.local_files_only)
    local = Path(name_or_path).expanduser()
    if local.is_dir():
        path = local / filename
        if path.is_file():
            return path
        if required:
            raise ModelNotFoundError(f"{local} has no {filename}: not a glean-hub model folder")
        return None
    name = str(name_or_path)
    if local.is_file():
        hint = " Convert official .pth checkpoints first: glean-hub convert FILE OUT_DIR." if local.suffix in (".pth", ".pt") else ""
        raise ModelNotFoundError(f"{name} is a file; expected a model folder or a Hub repo id.{hint}")
    if local.exists() or name.startswith((".", "/", "~")) or name.count("/") > 1 or (os.sep != "/" and os.sep in name):
        raise ModelNotFoundError(f"no model folder {name!r} (and it is not a Hub repo id, which looks like 'owner/name')")
    return _hub_download(name, filename, options, required)


def _hub_download(repo_id: str, filename: str, options: HubOptions, required: bool) -> Path | None:
    import huggingface_hub as hf
    from huggingface_hub import errors

    from . import __version__

    where = f"{repo_id}" + (f"@{options.revision}" if options.revision else "")
    try:
        path = hf.hf_hub_download(
            repo_id,
            filename,
            revision=options.revision,
            cache_dir=options.cache_dir,
            local_files_only=options.local_files_only,
            token=options.token,
            force_download=options.force_download,
            library_name="glean-hub",
            library_version=__version__,
        )
        return Path(path)
    except errors.HFValidationError as e:
        raise ModelNotFoundError(f"{repo_id!r} is neither a local folder nor a valid Hub repo id ({' '.join(str(e).split())})") from None
    except errors.RevisionNotFoundError:
        raise ModelNotFoundError(f"the Hub repo {repo_id} has no revision {options.revision!r} (a branch, tag or commit sha)") from None
    except errors.RepositoryNotFoundError:
        raise ModelNotFoundError(
            f"the Hub repo {repo_id!r} was not found; check the name, or pass token= for a private or gated repo"
        ) from None
    except errors.LocalEntryNotFoundError:
        # offline (HF_HUB_OFFLINE=1 / local_files_only=True) and not in the cache, or the Hub is unreachable
        if not required:
            return None
        raise ModelNotFoundError(
            f"{filename} of {where} is not in the local Hugging Face cache and the Hub cannot be reached "
            "(offline mode, local_files_only=True, or no network). Download it once while online, or pass a local folder."
        ) from None
    except errors.EntryNotFoundError:
        if not required:
            return None
        raise ModelNotFoundError(f"{where} has no file {filename}: is it a glean-hub repo?") from None
    except errors.HfHubHTTPError as e:
        raise GleanError(f"the Hub refused the download of {filename} from {where}: {e}") from None
    except (ConnectionError, TimeoutError, getattr(errors, "HTTPError", ConnectionError)) as e:
        # the connection dropped or timed out, after huggingface_hub's own retries; it discards the partial file
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise GleanError(
            f"the download of {filename} from {where} was interrupted ({type(e).__name__}: {first}); "
            "nothing was cached: check the network and try again"
        ) from None


# ---------------------------------------------------------------------------------------------
# Strict state-dict loading
# ---------------------------------------------------------------------------------------------


def check_state_dict(expected: dict[str, torch.Tensor], got: dict[str, torch.Tensor], what: str) -> None:
    """Raise CheckpointError naming every missing, unexpected and misshapen tensor."""
    missing = [k for k in expected if k not in got]
    unexpected = [k for k in got if k not in expected]
    mismatched = [
        f"{k}: file {list(got[k].shape)} vs model {list(expected[k].shape)}"
        for k in expected
        if k in got and tuple(got[k].shape) != tuple(expected[k].shape)
    ]
    if missing or unexpected or mismatched:
        parts = []
        for label, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", mismatched)):
            if items:
                shown = ", ".join(items[:12]) + (f", ... ({len(items) - 12} more)" if len(items) > 12 else "")
                parts.append(f"{len(items)} {label}: {shown}")
        raise CheckpointError(f"{what} does not match its config ({len(got)} tensors in file, {len(expected)} expected). " + "; ".join(parts))


def _resolve_dtype(torch_dtype: torch.dtype | str | None, stored: torch.dtype) -> torch.dtype:
    if torch_dtype is None:
        return torch.float32
    if torch_dtype == "auto":
        return stored
    if isinstance(torch_dtype, str):
        try:
            torch_dtype = {"fp32": torch.float32, "float32": torch.float32, "fp16": torch.float16, "float16": torch.float16,
                           "bf16": torch.bfloat16, "bfloat16": torch.bfloat16}[torch_dtype]
        except KeyError:
            raise ConfigError(f"torch_dtype must be a torch dtype, 'auto', 'fp32', 'fp16' or 'bf16', got {torch_dtype!r}") from None
    if not isinstance(torch_dtype, torch.dtype) or not torch_dtype.is_floating_point:
        raise ConfigError(f"torch_dtype must be a floating-point dtype (torch.float32, torch.bfloat16, torch.float16), "
                          f"'auto', 'fp32', 'fp16' or 'bf16', got {torch_dtype!r}")
    return torch_dtype


def check_device(device: str | torch.device | None) -> torch.device:
    """None -> cpu; anything torch cannot place a tensor on is a ConfigError that says what to pass."""
    if device is None:
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
        torch.empty(0, device=resolved)
    except (RuntimeError, TypeError, ValueError, AssertionError) as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(f"device={device!r} is not a usable torch device here ({reason}); use 'cpu', 'cuda' or 'cuda:1'") from None
    return resolved


def write_safetensors(state: dict[str, torch.Tensor], path: str | os.PathLike) -> None:
    """save_file with our one metadata key, and the file mode every other file gets (umask): safetensors >= 0.7
    writes through a private temporary file and leaves the result readable by its owner only."""
    save_file(_contiguous(state), path, metadata=SAFETENSORS_METADATA)
    os.chmod(path, 0o666 & ~_umask())


def _umask() -> int:
    """The process umask, read without changing it where the OS tells it (os.umask() alone sets it, for all threads)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def read_safetensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """All tensors of a safetensors file; a damaged file is a CheckpointError that names it."""
    from safetensors import SafetensorError

    try:
        state = load_file(path)
    except (SafetensorError, OSError, ValueError, RuntimeError, OverflowError, MemoryError) as e:
        reason = " ".join(str(e).split())[:200] or type(e).__name__
        raise CheckpointError(
            f"{path} is not a readable safetensors file ({reason}); it is truncated or damaged: download or save it again"
        ) from None
    if not state:
        raise CheckpointError(f"{path} holds no tensors; download or save it again")
    return state


def _load_weights(module: torch.nn.Module, state: dict[str, torch.Tensor], what: str, dtype: torch.dtype, device) -> None:
    """Strictly load `state` into a module built on the meta device, then cast and move it."""
    check_state_dict(module.state_dict(), state, what)
    state = {k: v.to(device=device, dtype=dtype if v.is_floating_point() else v.dtype) for k, v in state.items()}
    module.load_state_dict(state, strict=True, assign=True)


def _head_state(model: GLEAN) -> dict[str, torch.Tensor]:
    return {k: v for k, v in model.state_dict().items() if not k.startswith(BANK_PREFIX)}


# ---------------------------------------------------------------------------------------------
# Latent bank
# ---------------------------------------------------------------------------------------------

class _SharedTensors:
    """The tensors of one loaded bank (sha256, dtype, device); every model's bank module aliases them."""

    def __init__(self, config: BankConfig, state: dict[str, torch.Tensor]) -> None:
        self.config = config
        self.state = state


_BANKS: "weakref.WeakValueDictionary[tuple, _SharedTensors]" = weakref.WeakValueDictionary()
_BANKS_LOCK = threading.Lock()


def _unshare_before_load(module, state_dict, prefix, *args) -> None:
    """load_state_dict pre-hook of a shared bank: copy its tensors first, so other models keep theirs."""
    if getattr(module, "_shared_tensors", None) is None:
        return
    with torch.no_grad():
        for m in module.modules():
            for name, p in m._parameters.items():
                if p is not None:
                    p.data = p.data.clone()
            for name, b in m._buffers.items():
                if b is not None:
                    m._buffers[name] = b.clone()
    module._shared_tensors = None


def load_bank(
    name_or_path: str | os.PathLike,
    *,
    expected_sha256: str | None = None,
    torch_dtype: torch.dtype | str | None = None,
    device: str | torch.device | None = None,
    options: HubOptions = HubOptions(),
    share: bool = True,
    cls: type | None = None,
) -> StyleGAN2Generator:
    """Load a bank folder or Hub repo. With `share`, models asking for the same bytes share the tensors' memory.

    `cls`: the bank class (StyleGAN2Generator passes itself; None imports it, for callers outside the classes).

    Each call returns a new module (its own Parameter objects over the shared storage), so casting,
    moving or re-loading one model's bank never changes another's.
    """
    config_path = fetch(name_or_path, CONFIG_NAME, options)
    weights_path = fetch(name_or_path, WEIGHTS_NAME, options)
    sha = sha256_file(weights_path)
    if expected_sha256 is not None and sha != expected_sha256:
        raise BankMismatchError(
            f"the latent bank at {name_or_path} has sha256 {sha}, but the model was trained with {expected_sha256}. "
            "The bank was changed or replaced; use the bank revision the model names (bank_revision in config.json)."
        )
    device = check_device(device)
    if cls is None:
        from .stylegan2 import StyleGAN2Generator as cls
    with _BANKS_LOCK:
        shared = None
        if share and not (isinstance(torch_dtype, str) and torch_dtype == "auto"):  # "auto" needs the file's dtype
            shared = _BANKS.get((sha, _resolve_dtype(torch_dtype, torch.float32), str(device)))
        if shared is None:
            config = BankConfig.load(config_path)
            state = read_safetensors(weights_path)
            dtype = _resolve_dtype(torch_dtype, next(iter(state.values())).dtype)
            key = (sha, dtype, str(device))
            shared = _BANKS.get(key) if share else None
            if shared is None:
                with torch.device("meta"):
                    check_state_dict(cls(config).state_dict(), state, f"latent bank {name_or_path}")
                state = {k: v.to(device=device, dtype=dtype if v.is_floating_point() else v.dtype) for k, v in state.items()}
                shared = _SharedTensors(config, state)
                if share:
                    _BANKS[key] = shared
        with torch.device("meta"):
            bank = cls(shared.config)
        bank.load_state_dict(shared.state, strict=True, assign=True)  # new Parameters over the shared storage
    bank.requires_grad_(False).eval()
    bank.sha256 = sha
    if share:
        bank._shared_tensors = shared  # keeps the shared tensors alive (and findable) while a model uses them
        bank._register_load_state_dict_pre_hook(_unshare_before_load, with_module=True)
    return bank


def save_bank(bank: StyleGAN2Generator, directory: str | os.PathLike, *, card: str | None = None,
              discriminator: dict[str, torch.Tensor] | None = None, dtype: torch.dtype | None = None) -> str:
    """Write config.json, model.safetensors (and discriminator.safetensors); return the weights' sha256.
    `dtype`: store floating tensors in this dtype (the module itself is not changed)."""
    return write_bank_folder(directory, bank.config, _cast(bank.state_dict(), dtype), discriminator=discriminator, card=card)


def write_bank_folder(directory: str | os.PathLike, config: BankConfig, state: dict[str, torch.Tensor], *,
                      discriminator: dict[str, torch.Tensor] | None = None, card: str | None = None) -> str:
    """The bank folder layout, from a config and a state dict; returns the sha256 of model.safetensors."""
    from .cards import bank_card

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config.save(directory)
    weights = directory / WEIGHTS_NAME
    write_safetensors(state, weights)
    if discriminator is not None:
        write_safetensors(discriminator, directory / DISCRIMINATOR_NAME)
    sha = sha256_file(weights)
    (directory / CARD_NAME).write_text(card if card is not None else bank_card(config, sha))
    return sha


def _cast(state: dict[str, torch.Tensor], dtype: torch.dtype | None) -> dict[str, torch.Tensor]:
    if dtype is None:
        return state
    return {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}


def _contiguous(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().contiguous().cpu() for k, v in state.items()}


def _resolve_bank_location(config: GLEANConfig, model_dir: Path | None) -> str:
    """Where a referenced bank lives: bundled folder, local folder, or Hub repo id (in that order)."""
    from .registry import bank_entry

    bank_id = config.bank_id
    entry = bank_entry(bank_id)
    if entry is not None and entry.local_dir is not None and config.bank_revision in (None, entry.revision):
        return str(entry.local_dir)
    candidate = Path(bank_id).expanduser()
    if not candidate.is_absolute() and model_dir is not None:
        candidate = model_dir / candidate
    try:
        if candidate.is_dir():
            return str(candidate)
    except OSError:  # a name too long for a folder: try it as a repo id (which refuses it clearly)
        pass
    return bank_id


# ---------------------------------------------------------------------------------------------
# GLEAN
# ---------------------------------------------------------------------------------------------


def load_glean(
    name_or_path: str | os.PathLike,
    *,
    scale: int | None = None,
    category: str | None = None,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
    token: str | bool | None = None,
    torch_dtype: torch.dtype | str | None = None,
    device: str | torch.device | None = None,
    resolution: int | None = None,
    force_download: bool = False,
    cls: type | None = None,
) -> GLEAN:
    """See `GLEAN.from_pretrained`. `cls`: the model class (GLEAN passes itself; None imports it)."""
    from .registry import categories, lookup, model_entry

    if cls is None:
        from .glean import GLEAN as cls

    if not isinstance(name_or_path, (str, os.PathLike)):
        raise ModelNotFoundError(
            f"from_pretrained needs a category (e.g. 'faces'), a model folder or a Hub repo id, got {type(name_or_path).__name__} "
            f"{name_or_path!r}"
        )
    name = str(name_or_path)
    if not name.strip():
        raise ModelNotFoundError(f"empty model name {name!r}; pass a category ({', '.join(categories())}), a model folder or a Hub repo id")
    if scale is not None and not (isinstance(scale, int) and not isinstance(scale, bool)):
        raise ConfigError(f"scale must be an integer such as 8 or 16, got {type(scale).__name__} {scale!r}")
    try:
        Path(name).expanduser().exists()
    except OSError as e:  # a name longer than the filesystem allows, ...
        raise ModelNotFoundError(f"{os_error_message(e, repr(name))}: not a model folder, category or Hub repo id") from None
    if name.lower() in categories() and not Path(name).exists():
        name_or_path = name = name.lower()  # categories are case-insensitive ("FACES" is "faces")
    if isinstance(category, str) and category.lower() in categories():
        category = category.lower()
    device = check_device(device)
    if not (isinstance(torch_dtype, str) and torch_dtype == "auto"):
        _resolve_dtype(torch_dtype, torch.float32)  # a bad dtype fails before any file is read
    # an existing model folder wins over a category name; a folder without config.json (say ./faces of
    # photos) does not shadow the category
    if not is_model_folder(name) and (name in categories() or (name.isalpha() and name.islower() and not Path(name).exists())):
        entry = lookup(name, scale, resolution)
        if entry.local_dir is not None and revision in (None, entry.revision) and not force_download:
            name_or_path = entry.local_dir
        else:
            name_or_path, revision = entry.repo_id, revision or entry.revision
        category = category or entry.category
    elif not is_model_folder(name) and not force_download:
        # the repo id of a bundled model (as in its card's usage snippet): the installed copy, offline
        entry = model_entry(name)
        if entry is not None and entry.local_dir is not None and revision in (None, entry.revision):
            name_or_path = entry.local_dir

    options = HubOptions(revision, cache_dir, local_files_only, token, force_download)
    config_path = fetch(name_or_path, CONFIG_NAME, options)
    try:
        config = GLEANConfig.load(config_path)
    except ConfigError as e:
        raise ConfigError(f"{name_or_path}: {e}") from None
    if scale is not None and config.scale != scale:
        raise ConfigError(
            f"{name_or_path} is a {config.scale}x model ({config.in_size}->{config.out_size}), but scale={scale} was requested"
        )
    if category is not None and config.category is not None and config.category != category:
        raise ConfigError(f"{name_or_path} is a {config.category!r} model, but category={category!r} was requested")

    state = read_safetensors(fetch(name_or_path, WEIGHTS_NAME, options))
    dtype = _resolve_dtype(torch_dtype, next(iter(state.values())).dtype)
    with torch.device("meta"):
        model = cls(config)

    embedded = any(k.startswith(BANK_PREFIX) for k in state)
    if config.bank_id is None:
        _load_weights(model, state, f"GLEAN weights of {name_or_path}", dtype, device)
    elif embedded:
        raise CheckpointError(
            f"{name_or_path}: config.json references the bank {config.bank_id!r} but model.safetensors also holds "
            "generator.* tensors; a model either embeds its bank (bank_id null) or references it"
        )
    else:
        model_dir = Path(name_or_path) if Path(name_or_path).is_dir() else None
        bank = load_bank(
            _resolve_bank_location(config, model_dir),
            expected_sha256=config.bank_sha256,
            torch_dtype=dtype,
            device=device,
            options=HubOptions(config.bank_revision, cache_dir, local_files_only, token, force_download),
            cls=type(model.generator),
        )
        if bank.config != config.bank:
            raise BankMismatchError(f"the bank {config.bank_id} has config {bank.config}, but the model expects {config.bank}")
        head_expected = {k: v for k, v in model.state_dict().items() if not k.startswith(BANK_PREFIX)}
        check_state_dict(head_expected, state, f"GLEAN weights of {name_or_path}")
        state = {k: v.to(device=device, dtype=dtype) for k, v in state.items()}
        result = model.load_state_dict(state, strict=False, assign=True)
        assert not result.unexpected_keys and all(k.startswith(BANK_PREFIX) for k in result.missing_keys)
        model.generator = bank  # this model's own module over the shared bank tensors (see load_bank)
    model.generator.requires_grad_(False)
    model.fusion_skip.requires_grad_(False)
    return model.eval()


def save_glean(model: GLEAN, directory: str | os.PathLike, *, embed_bank: bool | None = None, card: str | None = None,
               dtype: torch.dtype | None = None, safe_serialization: bool = True, push_to_hub: bool = False,
               repo_id: str | None = None, **push_kwargs):
    """Write config.json, model.safetensors and README.md. Returns the folder (with `push_to_hub`: the CommitInfo).

    By default the bank is referenced when `config.bank_id` is set and embedded otherwise;
    `embed_bank=True` always writes a self-contained folder (config.bank_id becomes null).
    `dtype`: store floating tensors in this dtype (e.g. float16 for half-size files); the model is not changed.
    `push_to_hub`: then upload the folder to `repo_id` (default: the folder's name), as PyTorchModelHubMixin does.
    """
    check_safe_serialization(safe_serialization)
    if push_kwargs and not push_to_hub:
        raise TypeError(f"save_pretrained got unexpected arguments {sorted(push_kwargs)} (Hub arguments need push_to_hub=True)")
    if push_to_hub:
        repo_id = repo_id or Path(directory).resolve().name
        if card is None:
            from .cards import glean_card

            saved = _saved_config(model, embed_bank)
            card = glean_card(saved, repo_id=repo_id)
        folder = save_glean(model, directory, embed_bank=embed_bank, card=card, dtype=dtype)
        return push_folder(folder, repo_id, **push_kwargs)
    config = model.config
    if embed_bank is None:
        embed_bank = config.bank_id is None
    if embed_bank:
        config = config.replace(bank_id=None, bank_revision=None, bank_sha256=None)
        state = model.state_dict()
    else:
        if config.bank_id is None or config.bank_sha256 is None:
            raise ConfigError(
                "this model has no bank_id/bank_sha256 to reference; save with embed_bank=True, or save the bank "
                "with model.generator.save_pretrained(dir) and set bank_id/bank_sha256 in model.config"
            )
        state = _head_state(model)
    return write_glean_folder(directory, config, _cast(state, dtype), card=card)


def write_glean_folder(directory: str | os.PathLike, config: GLEANConfig, state: dict[str, torch.Tensor], *,
                       card: str | None = None) -> Path:
    """The GLEAN folder layout, from a config and a state dict (with or without generator.* tensors)."""
    from .cards import glean_card

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config.save(directory)
    write_safetensors(state, directory / WEIGHTS_NAME)
    (directory / CARD_NAME).write_text(card if card is not None else glean_card(config))
    return directory


def _saved_config(model: GLEAN, embed_bank: bool | None) -> GLEANConfig:
    """The config save_glean writes for `embed_bank`."""
    config = model.config
    if embed_bank or (embed_bank is None and config.bank_id is None):
        config = config.replace(bank_id=None, bank_revision=None, bank_sha256=None)
    return config


def push_folder(directory: str | os.PathLike, repo_id: str, *, token=None, private: bool | None = None,
                revision: str | None = None, branch: str | None = None, commit_message: str | None = None,
                create_pr: bool = False, delete_patterns: list[str] | str | None = None):
    """Create the repo if needed and upload a saved folder in one commit. Returns huggingface_hub's CommitInfo.

    `branch` is PyTorchModelHubMixin's name for `revision` (an existing branch); `delete_patterns`: files
    already in the repo that match are deleted in the same commit. Hub failures become one-line GleanErrors.
    """
    from huggingface_hub import HfApi

    if branch is not None and revision is not None and branch != revision:
        raise ConfigError(f"branch={branch!r} and revision={revision!r} disagree; pass one of them (they are the same argument)")
    revision = revision or branch
    api = HfApi(token=token)
    with hub_errors_for_push(repo_id, revision):
        api.create_repo(repo_id, private=private, exist_ok=True)
        return api.upload_folder(
            repo_id=repo_id,
            folder_path=str(directory),
            revision=revision,
            commit_message=commit_message or "Upload with glean-hub",
            create_pr=create_pr,
            delete_patterns=delete_patterns,
        )


@contextlib.contextmanager
def hub_errors_for_push(repo_id: str, revision: str | None = None):
    """Translate huggingface_hub's upload failures (offline, 401/403, missing repo or branch, no network)."""
    from huggingface_hub import constants, errors

    where = repo_id + (f"@{revision}" if revision else "")
    try:
        yield
    except errors.OfflineModeIsEnabled:
        raise GleanError(f"cannot push to {where}: offline mode is on (HF_HUB_OFFLINE=1); unset it and push again") from None
    except errors.RevisionNotFoundError:
        raise GleanError(
            f"the Hub repo {repo_id} has no branch {revision!r}: create it first "
            f"(huggingface_hub.HfApi().create_branch({repo_id!r}, branch={revision!r})) or push to the default branch"
        ) from None
    except errors.RepositoryNotFoundError:
        raise GleanError(
            f"the Hub repo {repo_id!r} was not found and could not be created: check the name "
            "(owner/name, where owner is you or an organisation you can write to) and your token"
        ) from None
    except errors.HfHubHTTPError as e:
        status = getattr(getattr(e, "response", None), "status_code", None)
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if status == 401:
            raise GleanError(
                f"the Hub did not accept your credentials for {where} (401): log in with `hf auth login`, set HF_TOKEN, "
                "or pass token= / --token"
            ) from None
        if status == 403:
            raise GleanError(
                f"your token may not write to {where} (403): use a token with write access to {repo_id.split('/')[0]!r}"
            ) from None
        raise GleanError(f"the Hub refused the upload to {where} ({first})") from None
    except (ConnectionError, TimeoutError, getattr(errors, "HTTPError", ConnectionError)) as e:
        raise GleanError(
            f"could not reach the Hub at {constants.ENDPOINT} to push {where} ({type(e).__name__}: {e}); "
            "check the network and try again"
        ) from None
    except RuntimeError as e:
        # huggingface_hub wraps a failed LFS upload: RuntimeError("Error while uploading 'x' to the Hub.") from the
        # network or HTTP error, which is translated like the others
        cause = e.__cause__
        if not isinstance(cause, (ConnectionError, TimeoutError, getattr(errors, "HTTPError", ConnectionError))):
            raise
        with hub_errors_for_push(repo_id, revision):
            raise cause from None


def push_glean(model: GLEAN, repo_id: str, *, embed_bank: bool | None = None, **kwargs):
    """save_glean into a temporary folder, with a card that names `repo_id`, then push_folder."""
    from .cards import glean_card

    with tempfile.TemporaryDirectory() as tmp:
        save_glean(model, tmp, embed_bank=embed_bank, card=glean_card(_saved_config(model, embed_bank), repo_id=repo_id))
        return push_folder(tmp, repo_id, **kwargs)


def push_bank(bank: StyleGAN2Generator, repo_id: str, **kwargs):
    """save_bank into a temporary folder, with a card that names `repo_id`, then push_folder."""
    from .cards import bank_card

    with tempfile.TemporaryDirectory() as tmp:
        sha = save_bank(bank, tmp)
        (Path(tmp) / CARD_NAME).write_text(bank_card(bank.config, sha, repo_id=repo_id))
        return push_folder(tmp, repo_id, **kwargs)


