"""Super-resolution by GAN inversion on a latent bank: the baseline GLEAN is compared with (PULSE, DGP).

    LR [N, 3, n, n] --> optimise per-layer codes W+ [N, L, D] of the frozen bank (and optionally its noise maps)
                        so that imresize_matlab(G(W+), n) == LR --> G(W+) [N, 3, S, S]

PULSE-style (Menon et al. 2020) with the StyleGAN2 projector's tricks:

* the codes are `w_mean + w_std * u`; `u` starts at 0 (the mean face) or, with `init="random"`, at the code of
  a seeded random z; `latent_weight * mean(u^2)` keeps them near the mapping network's output distribution
  (`w_mean`, `w_std` are measured on `mean_samples` seeded draws of z, like the projector's);
* the consistency loss is the MSE between the MATLAB-bicubic downscale of the generated image (the same
  `imresize` that made the LR, differentiable) and the LR, in [-1, 1];
* with `optimize_noise=True` the noise maps start at the bank's stored noise and are optimised too, kept
  white by the projector's autocorrelation penalty (`noise_weight`) and renormalised after each step;
* DGP-style (Pan et al. 2020), `generator_steps > 0`: after the latent steps, a copy of the bank is fine-tuned
  with the codes for that many more steps, per image, progressively (coarse layers first, one more
  resolution every `generator_steps / stages` steps), at `generator_lr`. The loaded bank is never changed.

Deterministic for a given seed: every image's loss is its own (summed over the batch, so Adam treats each image
as if it were alone and a batch gives the same result as single images, up to float rounding).
`InversionPipeline` is `GLEANPipeline` with this as its step 4: same input rules, LR, paste-back and outputs.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import torch

from .errors import ConfigError
from .imresize import imresize
from .pipeline import GLEANPipeline, resolve_device
from .stylegan2 import StyleGAN2Generator

INITS = ("mean", "random")


@dataclass(frozen=True)
class InversionSettings:
    """How the codes are optimised. Defaults: 200 Adam steps on W+, stored noise, PULSE-like penalty."""

    steps: int = 200  # Adam steps on the codes (and noise)
    lr: float = 0.1  # peak learning rate of the normalised codes u (cosine ramp-down, short warm-up)
    seed: int = 0  # seeds the w statistics, the random init and nothing else
    init: str = "mean"  # "mean": u = 0; "random": u = (mapping(z) - w_mean) / w_std for a seeded z
    latent_weight: float = 1e-3  # weight of mean(u^2): distance to the mean w in units of w_std
    optimize_noise: bool = False  # also optimise the noise maps (StyleGAN2 projector)
    noise_weight: float = 1e3  # weight of the noise autocorrelation penalty
    mean_samples: int = 4096  # z draws for w_mean and w_std
    generator_steps: int = 0  # DGP-style: steps that also fine-tune a copy of the bank, per image (0: off)
    generator_lr: float = 1e-4  # Adam learning rate of the bank's weights in those steps

    def __post_init__(self) -> None:
        def _int(name: str, low: int) -> None:
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < low:
                raise ConfigError(f"{name} must be an integer >= {low}, got {v!r}")

        def _num(name: str, positive: bool) -> None:
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or v < 0 or (positive and v == 0):
                raise ConfigError(f"{name} must be a finite number {'> 0' if positive else '>= 0'}, got {v!r}")

        _int("steps", 1)
        _int("generator_steps", 0)
        _int("mean_samples", 2)
        _int("seed", 0)
        _num("lr", True)
        _num("generator_lr", True)
        _num("latent_weight", False)
        _num("noise_weight", False)
        if self.init not in INITS:
            raise ConfigError(f"init must be one of {INITS}, got {self.init!r}")
        if not isinstance(self.optimize_noise, bool):
            raise ConfigError(f"optimize_noise must be true or false, got {self.optimize_noise!r}")


@dataclass
class InversionResult:
    images: torch.Tensor  # [N, 3, S, S] float32 in about [-1, 1], G(W+) (not clamped, like GLEAN's output)
    latents: torch.Tensor  # [N, L, D] the optimised W+ codes
    noises: list[torch.Tensor]  # per layer [N, 1, r, r] (the stored noise expanded when not optimised)
    lr_mse: list[float] = field(default_factory=list)  # per step: mean over images of the LR consistency MSE


def synthesize(bank: StyleGAN2Generator, latents: torch.Tensor, noises: list[torch.Tensor]) -> torch.Tensor:
    """`bank.synthesis` with explicit noise maps ([N or 1, 1, r, r] per layer)."""
    return bank.synthesis(latents, noises)


@torch.no_grad()
def w_statistics(bank: StyleGAN2Generator, samples: int, seed: int) -> tuple[torch.Tensor, float]:
    """(w_mean [1, D], w_std scalar: root mean squared distance to the mean per dimension), from seeded z."""
    g = torch.Generator(device="cpu").manual_seed(seed)
    z = torch.randn(samples, bank.config.style_channels, generator=g).to(bank.device, torch.float32)
    w = bank.mapping(z)
    mean = w.mean(0, keepdim=True)
    return mean, float(((w - mean) ** 2).mean().sqrt())


def noise_penalty(noise: torch.Tensor) -> torch.Tensor:
    """Per-image autocorrelation of a noise map [N, 1, r, r] at shifts of 1 px, over an octave pyramid
    (the StyleGAN2 projector's `noise_regularize`, kept per image). Returns [N]."""
    loss = noise.new_zeros(noise.shape[0])
    while True:
        loss = loss + (noise * torch.roll(noise, 1, dims=3)).mean((1, 2, 3)) ** 2
        loss = loss + (noise * torch.roll(noise, 1, dims=2)).mean((1, 2, 3)) ** 2
        if noise.shape[-1] <= 8:
            return loss
        noise = torch.nn.functional.avg_pool2d(noise, 2)


def _ramp(step: int, total: int, rampdown: float = 0.25, rampup: float = 0.05) -> float:
    """The projector's learning-rate schedule: linear warm-up, cosine ramp-down over the last quarter."""
    t = step / max(total, 1)
    return min(1.0, (1 - t) / rampdown) if t > 1 - rampdown else min(1.0, t / rampup) if rampup else 1.0


def _check_lr(bank: StyleGAN2Generator, lr: torch.Tensor) -> None:
    s = bank.config.out_size
    if lr.ndim != 4 or lr.shape[1] != 3 or lr.shape[2] != lr.shape[3] or not 1 <= lr.shape[2] < s:
        raise ConfigError(f"lr must be [N, 3, n, n] with n < the bank's output side {s}, got {list(lr.shape)}")


def invert(bank: StyleGAN2Generator, lr: torch.Tensor, settings: InversionSettings | None = None,
           progress: bool = False) -> InversionResult:
    """Super-resolve `lr` (float [N, 3, n, n] in [-1, 1], e.g. `pil_to_tensor` of a MATLAB-bicubic LR) by
    inverting `bank`: returns G(W+) [N, 3, S, S] whose MATLAB-bicubic n x n downscale matches `lr`.
    `bank` is not modified (its parameters get no gradient; DGP fine-tunes a copy)."""
    s = settings or InversionSettings()
    _check_lr(bank, lr)
    lr = lr.to(bank.device, torch.float32)
    n_img, n = lr.shape[0], lr.shape[-1]
    w_mean, w_std = w_statistics(bank, s.mean_samples, s.seed)
    num_styles = bank.config.num_styles
    g = torch.Generator(device="cpu").manual_seed(s.seed + 1)
    if s.init == "random":
        with torch.no_grad():
            z = torch.randn(n_img, bank.config.style_channels, generator=g).to(bank.device)
            u0 = ((bank.mapping(z) - w_mean) / w_std)[:, None].expand(-1, num_styles, -1)
    else:
        u0 = torch.zeros(n_img, num_styles, bank.config.style_channels, device=bank.device)
    u = u0.clone().requires_grad_(True)
    noises = [t.detach().expand(n_img, -1, -1, -1).clone() for t in bank.stored_noise]
    params = [u] + ([t.requires_grad_(True) for t in noises] if s.optimize_noise else [])
    opt = torch.optim.Adam(params, lr=s.lr, betas=(0.9, 0.999))
    lr_mse: list[float] = []

    def loss_of(gen: StyleGAN2Generator) -> tuple[torch.Tensor, torch.Tensor]:
        image = synthesize(gen, w_mean + w_std * u, noises)
        mse = ((imresize(image, size=(n, n)) - lr) ** 2).mean((1, 2, 3))  # [N]: each image's own loss
        total = mse + s.latent_weight * (u**2).mean((1, 2))
        if s.optimize_noise and s.noise_weight:
            total = total + s.noise_weight * sum(noise_penalty(t) for t in noises)
        return total.sum(), mse.detach()

    from tqdm.auto import tqdm

    fused = [m.fused for m in bank.modules() if hasattr(m, "fused")]
    trainable = [p.requires_grad for p in bank.parameters()]
    bank.requires_grad_(False)  # gradients flow to the codes only
    bank.set_fused_modulation(False)  # one shared-weight conv per layer for the batch: same function, faster
    try:
        for step in tqdm(range(s.steps), desc="invert", unit="step", disable=not progress, leave=False):
            for group in opt.param_groups:
                group["lr"] = s.lr * _ramp(step, s.steps)
            loss, mse = loss_of(bank)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if s.optimize_noise:
                with torch.no_grad():  # keep each map zero-mean, unit-variance
                    for t in noises:
                        t.sub_(t.mean((1, 2, 3), keepdim=True)).div_(t.std((1, 2, 3), keepdim=True) + 1e-8)
            lr_mse.append(float(mse.mean()))
        if s.generator_steps:
            images, dgp_mse = _finetune_generator(bank, u, noises, lr, w_mean, w_std, s, progress)
            lr_mse += dgp_mse
        else:
            with torch.no_grad():
                images = synthesize(bank, w_mean + w_std * u, noises)
    finally:
        for m, f in zip((m for m in bank.modules() if hasattr(m, "fused")), fused):
            m.fused = f
        for p, t in zip(bank.parameters(), trainable):
            p.requires_grad_(t)
    return InversionResult(images=images.detach().float(), latents=(w_mean + w_std * u).detach(),
                           noises=[t.detach() for t in noises], lr_mse=lr_mse)


def _stages(bank: StyleGAN2Generator) -> list[list[torch.nn.Module]]:
    """The synthesis layers by resolution, coarse first: [const, conv1, to_rgb1], then per side 8, 16, ...."""
    stages = [[bank.constant_input, bank.conv1, bank.to_rgb1]]
    for t, to_rgb in enumerate(bank.to_rgbs):
        stages.append([bank.convs[2 * t], bank.convs[2 * t + 1], to_rgb])
    return stages


def _finetune_generator(bank, u, noises, lr, w_mean, w_std, s: InversionSettings, progress: bool):
    """DGP-style: per image, a copy of the bank is fine-tuned with its codes, progressively (coarse layers first)."""
    from tqdm.auto import tqdm

    n = lr.shape[-1]
    images, per_step = [], [[] for _ in range(s.generator_steps)]
    for i in range(lr.shape[0]):
        gen = copy.deepcopy(bank).requires_grad_(False)
        stages = _stages(gen)
        ui = u[i : i + 1].detach().clone().requires_grad_(True)
        ni = [t[i : i + 1].detach() for t in noises]
        opt = torch.optim.Adam([{"params": [ui], "lr": s.lr * 0.1}], betas=(0.9, 0.999))
        unlocked = 0
        for step in tqdm(range(s.generator_steps), desc=f"DGP image {i + 1}", disable=not progress, leave=False):
            want = min(len(stages), 1 + step * len(stages) // s.generator_steps)
            while unlocked < want:  # progressive: the next resolution's layers join the optimisation
                layer_params = [p for m in stages[unlocked] for p in m.parameters()]
                for p in layer_params:
                    p.requires_grad_(True)
                opt.add_param_group({"params": layer_params, "lr": s.generator_lr})
                unlocked += 1
            image = synthesize(gen, w_mean + w_std * ui, ni)
            mse = ((imresize(image, size=(n, n)) - lr[i : i + 1]) ** 2).mean()
            loss = mse + s.latent_weight * (ui**2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            per_step[step].append(float(mse.detach()))
        with torch.no_grad():
            images.append(synthesize(gen, w_mean + w_std * ui, ni))
            u[i : i + 1].copy_(ui)
    return torch.cat(images), [sum(v) / len(v) for v in per_step]


class InversionPipeline(GLEANPipeline):
    """`GLEANPipeline` whose step 4 is `invert` on a latent bank instead of a GLEAN forward: the same input
    rules (crop/pad/resize, MATLAB-bicubic LR, degradation guard, face alignment, paste-back) and outputs.

    The bank's output side S and `scale` give the input side n = S / scale (a power of two >= 4); `category`
    (default: the bank's) only labels it and feeds the pipeline's category checks (e.g. align_faces).
    """

    def __init__(self, bank: StyleGAN2Generator, scale: int, settings: InversionSettings | None = None,
                 device: str | torch.device | None = None, category: str | None = None):
        from .config import GLEANConfig

        if not isinstance(bank, StyleGAN2Generator):
            raise ConfigError(f"InversionPipeline needs a StyleGAN2Generator latent bank, got {type(bank).__name__}")
        out = bank.config.out_size
        if not isinstance(scale, int) or isinstance(scale, bool) or scale < 2 or out % scale or (out // scale) & (out // scale - 1) \
                or out // scale < 4:
            raise ConfigError(f"scale={scale!r} does not fit the bank's {out}x{out} output: the input side {out}/scale must be "
                              f"a power of two >= 4 (scales {', '.join(str(out // 2**k) for k in range(2, int(math.log2(out))))})")
        self.device = resolve_device(device)
        self.dtype = torch.float32
        self.bank = bank.to(device=self.device, dtype=torch.float32).eval()
        self.settings = settings or InversionSettings()
        self.config = GLEANConfig(in_size=out // scale, bank=bank.config, category=category or bank.config.category)
        self.model = self.network = None

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *, scale: int | None = None, category: str | None = None,
                        settings: InversionSettings | None = None, device=None, bank: bool = False,
                        **hub_kwargs) -> InversionPipeline:
        """The bank of a GLEAN model (its name, folder or category, as `GLEAN.from_pretrained`; its scale is the
        default), or with `bank=True` a latent bank by name or folder (`StyleGAN2Generator.from_pretrained`;
        `scale` is then required)."""
        dev = resolve_device(device)
        if bank:
            if scale is None:
                raise ConfigError("a latent bank has no scale of its own: give scale= (--scale)")
            return cls(StyleGAN2Generator.from_pretrained(pretrained_model_name_or_path, device=dev, **hub_kwargs),
                       scale, settings, dev)
        from .glean import GLEAN

        model = GLEAN.from_pretrained(pretrained_model_name_or_path, scale=scale, category=category, device=dev, **hub_kwargs)
        return cls(model.generator, scale or model.config.scale, settings, dev, model.config.category)

    def __repr__(self) -> str:
        c, s = self.config, self.settings
        return (f"InversionPipeline({c.category or 'uncategorised'} bank, {c.in_size}->{c.out_size}, steps={s.steps}, "
                f"noise={'optimised' if s.optimize_noise else 'stored'}, generator_steps={s.generator_steps}, seed={s.seed})")

    def forward(self, lr: torch.Tensor, *, batch_size: int = 8, progress: bool = False) -> torch.Tensor:
        """float [N, 3, n, n] in [-1, 1] -> float32 CPU [N, 3, S, S]: `invert`, batch_size images at a time."""
        outs = []
        for i in range(0, lr.shape[0], batch_size):
            outs.append(invert(self.bank, lr[i : i + batch_size], self.settings, progress=progress).images.cpu())
        return torch.cat(outs)
