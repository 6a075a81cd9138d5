"""`glean-hub push`: upload a trained bank or GLEAN folder with a card built from what the run measured."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from .cards import CardFacts, bank_card, glean_card
from .config import CONFIG_NAME, WEIGHTS_NAME, BankConfig, GLEANConfig
from .errors import BankMismatchError, ConfigError, GleanError
from .hub import CARD_NAME, _resolve_bank_location, push_folder, sha256_file


def _beside(folder: Path, name: str) -> dict | None:
    """A run's JSON file, in the folder or the run folder above it."""
    for path in (folder / name, folder.parent / name):
        if path.is_file():
            return json.loads(path.read_text())
    return None


def card_facts(folder: Path, license: str = "other", license_name: str | None = None) -> CardFacts:
    facts = CardFacts(license=license, license_name=license_name)
    training = _beside(folder, "training.json")
    if training:
        args = training.get("args", {})
        facts.training = (
            f"{training.get('step')} steps, batch {args.get('batch_size')}, seed {args.get('seed')}, "
            f"{training.get('minutes')} minutes. Data: `{Path(str(args.get('data', '?'))).name}`."
        )
    metrics = _beside(folder, "metrics.json")
    if metrics and "glean" in metrics:
        facts.metrics = {"GLEAN": metrics["glean"], "bicubic": metrics["bicubic"]}
    return facts


def push(folder: str | Path, repo_id: str, *, bank_repo: str | None = None, embed_bank: bool = False,
         license: str = "other", license_name: str | None = None, **push_kwargs):
    """Upload `folder` (a bank or a GLEAN model) to `repo_id`; see `glean-hub push --help`."""
    folder = Path(folder)
    if not (folder / CONFIG_NAME).is_file() or not (folder / WEIGHTS_NAME).is_file():
        raise GleanError(f"{folder} is not a bank or GLEAN folder (needs {CONFIG_NAME} and {WEIGHTS_NAME})")
    kind = json.loads((folder / CONFIG_NAME).read_text()).get("kind")
    facts = card_facts(folder, license, license_name)
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp) / "repo"
        shutil.copytree(folder, staged)
        if kind == BankConfig.kind:
            config = BankConfig.load(staged / CONFIG_NAME)
            (staged / CARD_NAME).write_text(bank_card(config, sha256_file(staged / WEIGHTS_NAME), facts))
            return push_folder(staged, repo_id, **push_kwargs)
        if kind != GLEANConfig.kind:
            raise ConfigError(f"{folder / CONFIG_NAME}: unknown kind {kind!r}")
        config = GLEANConfig.load(staged / CONFIG_NAME)
        local_bank = config.bank_id is not None and Path(_resolve_bank_location(config, folder)).is_dir()
        if local_bank and embed_bank:
            from .glean import GLEAN

            model = GLEAN.from_pretrained(str(folder), torch_dtype="auto")
            shutil.rmtree(staged)
            model.save_pretrained(staged, embed_bank=True)
            config = model.config.replace(bank_id=None, bank_revision=None, bank_sha256=None)
        elif local_bank:
            if bank_repo is None:
                raise GleanError(
                    f"{folder} references the local bank {config.bank_id!r}, which the Hub copy could not find: "
                    "pass --bank-repo REPO to push the bank too, or --embed-bank for a self-contained upload"
                )
            bank_dir = Path(_resolve_bank_location(config, folder))
            if sha256_file(bank_dir / WEIGHTS_NAME) != config.bank_sha256:
                raise BankMismatchError(f"the bank at {bank_dir} is not the one {folder} was trained with (sha256 differs)")
            bank_commit = push(bank_dir, bank_repo, license=license, license_name=license_name, **push_kwargs)
            config = config.replace(bank_id=bank_repo, bank_revision=bank_commit.oid)
            config.save(staged)
        (staged / CARD_NAME).write_text(glean_card(config, facts, repo_id=repo_id))
        return push_folder(staged, repo_id, **push_kwargs)
