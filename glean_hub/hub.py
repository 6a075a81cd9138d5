"""Loading, saving and pushing GLEAN models and latent banks: safetensors only, strict, Hub-native.

Folder layout (the same on disk, in the package's bundled weights and in a Hub repo):

    bank repo:   config.json (BankConfig)  model.safetensors (bank)  [discriminator.safetensors]  README.md
    GLEAN repo:  config.json (GLEANConfig) model.safetensors         README.md

A GLEAN repo either references its bank (`bank_id` + `bank_sha256` in config.json; the weights
file then holds only encoder, fusions and decoder) or embeds it (`bank_id` null; the weights
file also holds every `generator.*` tensor). A referenced bank is found, in this order, among
the bundled banks, as a local folder (absolute, or relative to the GLEAN folder), or on the Hub;
its `model.safetensors` must hash to `bank_sha256`, or loading fails. Loaded banks are shared in
memory between models (same sha256, dtype and device).

Nothing is ever unpickled here: weights are read with safetensors only.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .config import CONFIG_NAME, WEIGHTS_NAME, BankConfig, GLEANConfig
from .errors import BankMismatchError, CheckpointError, ConfigError, GleanError, ModelNotFoundError
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


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def fetch(name_or_path: str | os.PathLike, filename: str, options: HubOptions, required: bool = True) -> Path | None:
    """Path of `filename` in a local folder or a Hub repo (downloaded into the HF cache).

    Hub failures become `ModelNotFoundError`s that say what to do; a missing optional file is None.
    """
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
            library_name="glean-hub",
            library_version=__version__,
        )
        return Path(path)
    except errors.HFValidationError as e:
        raise ModelNotFoundError(f"{repo_id!r} is neither a local folder nor a valid Hub repo id ({e})") from None
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
            raise ValueError(f"torch_dtype must be a torch dtype, 'auto', 'fp32', 'fp16' or 'bf16', got {torch_dtype!r}") from None
    return torch_dtype


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

_BANKS: "weakref.WeakValueDictionary[tuple, StyleGAN2Generator]" = weakref.WeakValueDictionary()
_BANKS_LOCK = threading.Lock()


def load_bank(
    name_or_path: str | os.PathLike,
    *,
    expected_sha256: str | None = None,
    torch_dtype: torch.dtype | str | None = None,
    device: str | torch.device | None = None,
    options: HubOptions = HubOptions(),
    share: bool = True,
) -> StyleGAN2Generator:
    """Load a bank folder or Hub repo. With `share`, models asking for the same bytes get one module."""
    config_path = fetch(name_or_path, CONFIG_NAME, options)
    weights_path = fetch(name_or_path, WEIGHTS_NAME, options)
    sha = sha256_file(weights_path)
    if expected_sha256 is not None and sha != expected_sha256:
        raise BankMismatchError(
            f"the latent bank at {name_or_path} has sha256 {sha}, but the model was trained with {expected_sha256}. "
            "The bank was changed or replaced; use the bank revision the model names (bank_revision in config.json)."
        )
    config = BankConfig.load(config_path)
    state = load_file(weights_path)
    dtype = _resolve_dtype(torch_dtype, next(iter(state.values())).dtype)
    device = torch.device(device) if device is not None else torch.device("cpu")
    key = (sha, dtype, str(device))
    with _BANKS_LOCK:
        bank = _BANKS.get(key) if share else None
        if bank is not None and bank.constant_input.input.dtype == dtype and bank.constant_input.input.device == device:
            return bank  # (a shared bank that someone cast or moved in place is not reused)
        with torch.device("meta"):
            bank = StyleGAN2Generator(config)
        _load_weights(bank, state, f"latent bank {name_or_path}", dtype, device)
        bank.requires_grad_(False).eval()
        bank.sha256 = sha
        if share:
            _BANKS[key] = bank
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
    save_file(_contiguous(state), weights, metadata=SAFETENSORS_METADATA)
    if discriminator is not None:
        save_file(_contiguous(discriminator), directory / DISCRIMINATOR_NAME, metadata=SAFETENSORS_METADATA)
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
    if candidate.is_dir():
        return str(candidate)
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
) -> GLEAN:
    """See `GLEAN.from_pretrained`."""
    from .registry import categories, lookup

    name = str(name_or_path)
    if name in categories() or (name.isalpha() and name.islower() and not Path(name).exists()):
        entry = lookup(name, scale)
        if entry.local_dir is not None and revision in (None, entry.revision):
            name_or_path = entry.local_dir
        else:
            name_or_path, revision = entry.repo_id, revision or entry.revision
        category = category or entry.category

    options = HubOptions(revision, cache_dir, local_files_only, token)
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

    state = load_file(fetch(name_or_path, WEIGHTS_NAME, options))
    dtype = _resolve_dtype(torch_dtype, next(iter(state.values())).dtype)
    device = torch.device(device) if device is not None else torch.device("cpu")
    with torch.device("meta"):
        model = GLEAN(config)

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
            options=HubOptions(config.bank_revision, cache_dir, local_files_only, token),
        )
        if bank.config != config.bank:
            raise BankMismatchError(f"the bank {config.bank_id} has config {bank.config}, but the model expects {config.bank}")
        head_expected = {k: v for k, v in model.state_dict().items() if not k.startswith(BANK_PREFIX)}
        check_state_dict(head_expected, state, f"GLEAN weights of {name_or_path}")
        model.generator = bank  # the shared module: its tensors are not copied
        state = {k: v.to(device=device, dtype=dtype) for k, v in state.items()}
        result = model.load_state_dict(state, strict=False, assign=True)
        assert not result.unexpected_keys and all(k.startswith(BANK_PREFIX) for k in result.missing_keys)
    model.generator.requires_grad_(False)
    model.fusion_skip.requires_grad_(False)
    return model.eval()


def save_glean(model: GLEAN, directory: str | os.PathLike, *, embed_bank: bool | None = None, card: str | None = None,
               dtype: torch.dtype | None = None) -> Path:
    """Write config.json, model.safetensors and README.md. Returns the folder.

    By default the bank is referenced when `config.bank_id` is set and embedded otherwise;
    `embed_bank=True` always writes a self-contained folder (config.bank_id becomes null).
    `dtype`: store floating tensors in this dtype (e.g. float16 for half-size files); the model is not changed.
    """
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
    save_file(_contiguous(state), directory / WEIGHTS_NAME, metadata=SAFETENSORS_METADATA)
    (directory / CARD_NAME).write_text(card if card is not None else glean_card(config))
    return directory


def push_folder(directory: str | os.PathLike, repo_id: str, *, token=None, private: bool | None = None,
                revision: str | None = None, commit_message: str | None = None, create_pr: bool = False):
    """Create the repo if needed and upload a saved folder in one commit. Returns huggingface_hub's CommitInfo."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True)
    return api.upload_folder(
        repo_id=repo_id,
        folder_path=str(directory),
        revision=revision,
        commit_message=commit_message or "Upload with glean-hub",
        create_pr=create_pr,
    )


def push_glean(model: GLEAN, repo_id: str, *, embed_bank: bool | None = None, **kwargs):
    with tempfile.TemporaryDirectory() as tmp:
        save_glean(model, tmp, embed_bank=embed_bank)
        return push_folder(tmp, repo_id, **kwargs)


def push_bank(bank: StyleGAN2Generator, repo_id: str, **kwargs):
    with tempfile.TemporaryDirectory() as tmp:
        save_bank(bank, tmp)
        return push_folder(tmp, repo_id, **kwargs)


