"""What both training loops share: the run folder, seeding per step, EMA, logs, sample grids, checkpoints."""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..errors import GleanError

CHECKPOINT = "checkpoint.pt"
LOG = "log.jsonl"


def seed_step(seed: int, step: int, rank: int = 0) -> None:
    """Seed every RNG from (seed, step, rank): a step's randomness does not depend on the steps before it,
    so a run resumed from a checkpoint repeats the uninterrupted run exactly."""
    s = (seed * 1_000_003 + step * 7919 + rank * 104_729) % (2**63)
    torch.manual_seed(s)
    np.random.seed(s % (2**32))
    random.seed(s)


@torch.no_grad()
def ema_update(ema: torch.nn.Module, model: torch.nn.Module, beta: float) -> None:
    """ema = beta * ema + (1 - beta) * model, parameter by parameter (buffers copied)."""
    for e, p in zip(ema.parameters(), model.parameters()):
        e.lerp_(p.detach().to(e.dtype), 1 - beta)
    for e, b in zip(ema.buffers(), model.buffers()):
        e.copy_(b)


def cosine_lr(step: int, total: int, base: float, warmup: int = 0, final_fraction: float = 0.1) -> float:
    """Linear warm-up, then cosine decay from `base` to `final_fraction * base`."""
    if step < warmup:
        return base * (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    return base * (final_fraction + (1 - final_fraction) * 0.5 * (1 + math.cos(math.pi * t)))


def prepare_run_dir(out: Path, resume: bool) -> Path:
    """Create the run folder; refuse to overwrite an earlier run unless resuming it."""
    out = Path(out)
    if (out / CHECKPOINT).exists() and not resume:
        raise GleanError(f"{out} already holds a training run ({CHECKPOINT}); pass --resume to continue it or choose another --out")
    if resume and not (out / CHECKPOINT).exists():
        raise GleanError(f"--resume: no {CHECKPOINT} in {out}")
    (out / "samples").mkdir(parents=True, exist_ok=True)
    return out


class JsonlLog:
    """One JSON object per line: step, losses, learning rate, images/s."""

    def __init__(self, path: Path, enabled: bool = True, truncate_after: int | None = None):
        self.path = Path(path)
        self.enabled = enabled
        if enabled and truncate_after is not None and self.path.exists():  # resuming: drop lines after the checkpoint
            lines = [l for l in self.path.read_text().splitlines() if l and json.loads(l)["step"] <= truncate_after]
            self.path.write_text("".join(l + "\n" for l in lines))

    def write(self, **row) -> None:
        if self.enabled:
            with self.path.open("a") as f:
                f.write(json.dumps({k: (round(v, 6) if isinstance(v, float) else v) for k, v in row.items()}) + "\n")

    def read(self) -> list[dict]:
        return [json.loads(l) for l in self.path.read_text().splitlines() if l] if self.path.exists() else []


def save_grid(rows: list[torch.Tensor], path: Path, pad: int = 2) -> Path:
    """Save images as a grid: each tensor [N, 3, H, W] in [-1, 1] is one column, N rows; columns are resized
    (nearest) to the tallest height so LR | SR | HR line up."""
    from .data import to_uint8

    size = max(r.shape[-1] for r in rows)
    cols = [torch.nn.functional.interpolate(r.float(), size=(size, size), mode="nearest") if r.shape[-1] != size else r.float() for r in rows]
    n = cols[0].shape[0]
    grid = torch.full((3, n * (size + pad) + pad, len(cols) * (size + pad) + pad), 255, dtype=torch.uint8)
    for j, col in enumerate(cols):
        imgs = to_uint8(col.cpu())
        for i in range(n):
            y, x = pad + i * (size + pad), pad + j * (size + pad)
            grid[:, y : y + size, x : x + size] = imgs[i]
    Image.fromarray(grid.permute(1, 2, 0).numpy()).save(path)
    return path


def save_checkpoint(path: Path, **state) -> None:
    tmp = Path(path).with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)  # never leave a half-written checkpoint


def load_checkpoint(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


@dataclass
class Throughput:
    """Images per second over the last interval."""

    start: float = 0.0
    images: int = 0

    def __post_init__(self):
        self.start = time.perf_counter()

    def add(self, n: int) -> None:
        self.images += n

    def rate(self) -> float:
        now = time.perf_counter()
        r = self.images / max(now - self.start, 1e-9)
        self.start, self.images = now, 0
        return r


def args_dict(args) -> dict:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(args).items()}


def make_accelerator(mixed_precision: str, cpu: bool):
    """accelerate handles devices, bf16 autocast and multi-GPU (`accelerate launch`).

    accelerate keeps its mixed-precision setting per process and refuses to change it; a second run in the
    same process (Python API, tests) may ask for another one, so that setting is reset (the distributed
    state, which `accelerate launch` sets up, is kept)."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    if AcceleratorState._shared_state and AcceleratorState().mixed_precision != mixed_precision:
        AcceleratorState._reset_state()
    return Accelerator(mixed_precision=mixed_precision, cpu=cpu)
