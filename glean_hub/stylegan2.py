"""StyleGAN2 generator (config-f semantics), the latent bank of GLEAN. Pure PyTorch.

Attribute names are the state-dict keys of the official GLEAN checkpoints (MMEditing's
`StyleGANv2Generator`, itself following rosinality/stylegan2-pytorch): `style_mapping.*`,
`constant_input.input`, `conv1`, `to_rgb1`, `convs.*`, `to_rgbs.*`, `injected_noise_*`.
Numerics follow the official code operation by operation (equalised learning rate computed at run
time from `weight_orig`, grouped modulated convs, transposed-conv upsampling + blur), which is what
makes the golden tests in `tests/test_golden.py` match to < 1e-4.

Read bottom-up: equalised layers, modulated conv, styled conv / ToRGB, generator.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import BankConfig
from .ops import bias_leaky_relu, make_kernel, pixel_norm, upfirdn2d


def randn_init(*shape: int, std: float = 1.0) -> torch.Tensor:
    """N(0, std^2) initial values; left empty when building on the meta device (loading fills them from a
    file, and ops on meta tensors under a device context import torch._dynamo: seconds of start-up)."""
    t = torch.empty(*shape)
    return t if t.is_meta else t.normal_(0.0, std)


def equalized_lr_scale(fan_in: int) -> float:
    """sqrt(1 / fan_in) rounded as the official code does it: in float32, on a tensor."""
    return float(torch.sqrt(torch.tensor(1.0 / fan_in, dtype=torch.float32, device="cpu")))


class EqualLinear(nn.Module):
    """Linear without bias whose weight is `weight_orig * sqrt(1/in_features) * lr_mul` at run time."""

    def __init__(self, in_features: int, out_features: int, lr_mul: float = 1.0):
        super().__init__()
        self.weight_orig = nn.Parameter(randn_init(out_features, in_features, std=1 / lr_mul))  # [O, I]
        self.scale = equalized_lr_scale(in_features)
        self.lr_mul = lr_mul

    @property
    def weight(self) -> torch.Tensor:
        weight = self.weight_orig * self.scale
        return weight * self.lr_mul if self.lr_mul != 1.0 else weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, I] -> [N, O]
        return F.linear(x, self.weight)


class EqualLinearAct(nn.Module):
    """EqualLinear + bias (times lr_mul), optionally followed by the fused bias + leaky ReLU."""

    def __init__(self, in_features: int, out_features: int, lr_mul: float = 1.0, bias_init: float = 0.0, activate: bool = False):
        super().__init__()
        self.linear = EqualLinear(in_features, out_features, lr_mul)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init)))
        self.lr_mul = lr_mul
        self.activate = activate

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, I] -> [N, O]
        x = self.linear(x)
        bias = self.bias * self.lr_mul if self.lr_mul != 1.0 else self.bias
        return bias_leaky_relu(x, bias) if self.activate else x + bias


class PixelNorm(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return pixel_norm(x)


class Blur(nn.Module):
    """FIR low-pass filter (upfirdn2d with up = down = 1). Kernel stored as the buffer `kernel`."""

    def __init__(self, taps: tuple[int, ...], pad: tuple[int, int], upsample_factor: int = 1):
        super().__init__()
        self.register_buffer("kernel", make_kernel(taps, gain=upsample_factor**2))
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, pad=self.pad)


class UpsampleUpFIRDn(nn.Module):
    """2x upsampling of the ToRGB skip: upfirdn2d(up=2) with the blur kernel times 4."""

    def __init__(self, taps: tuple[int, ...], factor: int = 2):
        super().__init__()
        self.register_buffer("kernel", make_kernel(taps, gain=factor**2))
        p = len(taps) - factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, C, H, W] -> [N, C, 2H, 2W]
        return upfirdn2d(x, self.kernel, up=self.factor, pad=self.pad)


class ModulatedConv2d(nn.Module):
    """Style-modulated conv with optional demodulation and optional 2x upsampling.

    Weight `weight_orig`: [1, out_channels, in_channels, k, k]. Upsampling is the official
    transposed conv (stride 2, padding 0, H -> 2H+1) followed by a 4x4 blur with pad (1, 1).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        style_channels: int,  # width of the latent code that drives the modulation
        demodulate: bool = True,
        upsample: bool = False,
        blur_kernel: tuple[int, ...] = (1, 3, 3, 1),
        eps: float = 1e-8,
    ):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.demodulate = demodulate
        self.upsample = upsample
        self.eps = eps
        self.weight_orig = nn.Parameter(randn_init(1, out_channels, in_channels, kernel_size, kernel_size))
        self.scale = equalized_lr_scale(in_channels * kernel_size * kernel_size)
        self.style_modulation = EqualLinearAct(style_channels, in_channels, bias_init=1.0)
        if upsample:
            factor = 2
            p = (len(blur_kernel) - factor) - (kernel_size - 1)
            self.blur = Blur(blur_kernel, ((p + 1) // 2 + factor - 1, p // 2 + 1), upsample_factor=factor)
        self.padding = kernel_size // 2
        self.fused = True  # grouped conv with per-sample weights, as the official code (exact reference)

    @property
    def weight(self) -> torch.Tensor:  # [1, O, I, k, k], equalised
        return self.weight_orig * self.scale

    def modulated_weight(self, style: torch.Tensor) -> torch.Tensor:
        """Per-sample weight [N, O, I, k, k] for codes `style` [N, style_channels]."""
        n = style.shape[0]
        s = self.style_modulation(style).view(n, 1, self.in_channels, 1, 1)
        weight = self.weight * s
        if self.demodulate:
            demod = torch.rsqrt(weight.pow(2).sum([2, 3, 4]) + self.eps)  # [N, O]
            weight = weight * demod.view(n, self.out_channels, 1, 1, 1)
        return weight

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """[N, I, H, W], [N, style_channels] -> [N, O, H, W] (or [N, O, 2H, 2W] when upsampling)."""
        if not self.fused:
            return self.forward_modulating_input(x, style)
        n, c, h, w = x.shape
        k = self.kernel_size
        weight = self.modulated_weight(style)
        if self.upsample:
            # Official layout: [N, O, I, k, k] -> [N*I, O, k, k] used directly by conv_transpose2d.
            weight = weight.transpose(1, 2).reshape(n * c, self.out_channels, k, k)
            out = F.conv_transpose2d(x.reshape(1, n * c, h, w), weight, padding=0, stride=2, groups=n)
            out = out.reshape(n, self.out_channels, *out.shape[-2:])
            return self.blur(out)
        weight = weight.reshape(n * self.out_channels, c, k, k)
        out = F.conv2d(x.reshape(1, n * c, h, w), weight, padding=self.padding, groups=n)
        return out.reshape(n, self.out_channels, h, w)


    def forward_modulating_input(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """The same function with the styles applied to the input and the demodulation to the output:
        one shared-weight conv for the whole batch instead of a grouped conv with a weight per
        sample. Faster for batches (training); equal to `forward` up to float rounding."""
        n, c = x.shape[:2]
        s = self.style_modulation(style)  # [N, I]
        weight = self.weight[0]  # [O, I, k, k]
        x = x * s.view(n, c, 1, 1)
        if self.upsample:
            out = F.conv_transpose2d(x, weight.transpose(0, 1), padding=0, stride=2)
        else:
            out = F.conv2d(x, weight, padding=self.padding)
        if self.demodulate:
            demod = torch.rsqrt(s.square() @ weight.square().sum([2, 3]).t() + self.eps)  # [N, O]
            out = out * demod.view(n, self.out_channels, 1, 1)
        return self.blur(out) if self.upsample else out


class NoiseInjection(nn.Module):
    """x + weight * noise, with a learned scalar `weight` [1]."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return x + self.weight * noise


class FusedBiasLeakyReLU(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return bias_leaky_relu(x, self.bias)


class ModulatedStyleConv(nn.Module):
    """Modulated 3x3 conv -> noise injection -> bias + leaky ReLU * sqrt(2)."""

    def __init__(self, in_channels: int, out_channels: int, style_channels: int, upsample: bool = False, blur_kernel=(1, 3, 3, 1)):
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, 3, style_channels, upsample=upsample, blur_kernel=blur_kernel)
        self.noise_injector = NoiseInjection()
        self.activate = FusedBiasLeakyReLU(out_channels)

    def forward(self, x: torch.Tensor, style: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return self.activate(self.noise_injector(self.conv(x, style), noise))


class ModulatedToRGB(nn.Module):
    """1x1 modulated conv to RGB (no demodulation) + bias, plus the upsampled previous skip."""

    def __init__(self, in_channels: int, style_channels: int, out_channels: int = 3, upsample: bool = True, blur_kernel=(1, 3, 3, 1)):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, out_channels, 1, 1))
        if upsample:
            self.upsample = UpsampleUpFIRDn(blur_kernel, 2)
        self.conv = ModulatedConv2d(in_channels, out_channels, 1, style_channels, demodulate=False)

    def forward(self, x: torch.Tensor, style: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        out = self.conv(x, style) + self.bias
        if skip is not None:
            out = out + self.upsample(skip)
        return out


class ConstantInput(nn.Module):
    def __init__(self, channels: int, size: int = 4):
        super().__init__()
        self.input = nn.Parameter(randn_init(1, channels, size, size))

    def forward(self, batch_size: int) -> torch.Tensor:  # -> [N, C, 4, 4]
        return self.input.repeat(batch_size, 1, 1, 1)


class StyleGAN2Generator(nn.Module):
    """StyleGAN2 generator: mapping MLP z -> w, synthesis network w+ -> image.

    `synthesis(latents)` takes per-layer codes [N, num_styles, style_channels] and returns the
    image [N, img_channels, out_size, out_size] (about [-1, 1]). Noise is the stored buffers
    `injected_noise_i` ([1, 1, 2^((i+5)//2), same]) unless `noise="random"` (training).
    """

    def __init__(self, config: BankConfig):
        super().__init__()
        self.config = config
        c = config
        ch = c.channels
        for i in range(c.num_injected_noises):
            side = 2 ** ((i + 5) // 2)
            self.register_buffer(f"injected_noise_{i}", randn_init(1, 1, side, side))
        self.style_mapping = nn.Sequential(
            PixelNorm(),
            *[EqualLinearAct(c.style_channels, c.style_channels, lr_mul=c.lr_mlp, activate=True) for _ in range(c.num_mlps)],
        )
        self.constant_input = ConstantInput(ch(4))
        self.conv1 = ModulatedStyleConv(ch(4), ch(4), c.style_channels, blur_kernel=c.blur_kernel)
        self.to_rgb1 = ModulatedToRGB(ch(4), c.style_channels, c.img_channels, upsample=False, blur_kernel=c.blur_kernel)
        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        for log_res in range(3, c.log_size + 1):
            res = 2**log_res
            cin, cout = ch(res // 2), ch(res)
            self.convs.append(ModulatedStyleConv(cin, cout, c.style_channels, upsample=True, blur_kernel=c.blur_kernel))
            self.convs.append(ModulatedStyleConv(cout, cout, c.style_channels, blur_kernel=c.blur_kernel))
            self.to_rgbs.append(ModulatedToRGB(cout, c.style_channels, c.img_channels, upsample=True, blur_kernel=c.blur_kernel))

    def set_fused_modulation(self, fused: bool) -> "StyleGAN2Generator":
        """Choose per-sample grouped convs (True, the official form) or input modulation (False, faster for batches)."""
        for m in self.modules():
            if isinstance(m, ModulatedConv2d):
                m.fused = fused
        return self

    @property
    def stored_noise(self) -> list[torch.Tensor]:
        return [getattr(self, f"injected_noise_{i}") for i in range(self.config.num_injected_noises)]

    def make_noise(self, batch_size: int, mode: str) -> list[torch.Tensor]:
        """Noise per layer: the stored buffers ("stored") or fresh Gaussian noise ("random")."""
        if mode == "stored":
            return self.stored_noise
        if mode == "random":
            return [torch.randn(batch_size, 1, *n.shape[-2:], device=n.device, dtype=n.dtype) for n in self.stored_noise]
        raise ValueError(f"noise must be 'stored' or 'random', got {mode!r}")

    def mapping(self, z: torch.Tensor) -> torch.Tensor:
        """Mapping MLP: z [N, style_channels] -> w [N, style_channels]."""
        return self.style_mapping(z)

    def mean_latent(self, num_samples: int = 4096) -> torch.Tensor:
        """Average w over random z, for the truncation trick. Returns [1, style_channels]."""
        z = torch.randn(num_samples, self.config.style_channels, device=self.constant_input.input.device)
        return self.mapping(z).mean(0, keepdim=True)

    def synthesis(self, latents: torch.Tensor, noise: "str | list[torch.Tensor]" = "stored") -> torch.Tensor:
        """[N, num_styles, style_channels] -> [N, img_channels, out_size, out_size].

        `noise`: "stored", "random", or explicit maps (one [N or 1, 1, r, r] per layer, e.g. optimised ones)."""
        n, s, d = latents.shape
        if (s, d) != (self.config.num_styles, self.config.style_channels):
            raise ValueError(
                f"latents must have shape [N, {self.config.num_styles}, {self.config.style_channels}], got {list(latents.shape)}"
            )
        noises = list(noise) if isinstance(noise, (list, tuple)) else self.make_noise(n, noise)
        out = self.constant_input(n)
        out = self.conv1(out, latents[:, 0], noises[0])
        skip = self.to_rgb1(out, latents[:, 1])
        for t, to_rgb in enumerate(self.to_rgbs):
            i = 1 + 2 * t
            out = self.convs[2 * t](out, latents[:, i], noises[i])
            out = self.convs[2 * t + 1](out, latents[:, i + 1], noises[i + 1])
            skip = to_rgb(out, latents[:, i + 2], skip)
        return skip

    def forward(
        self,
        z: torch.Tensor,  # [N, style_channels] or [N, 2, style_channels] (style mixing)
        truncation: float = 1.0,
        truncation_latent: torch.Tensor | None = None,  # [1, style_channels]
        mix_index: int | None = None,  # layers >= mix_index take the second code
        noise: str = "stored",
    ) -> torch.Tensor:
        """Random image from z: mapping, optional truncation and style mixing, synthesis."""
        zs = z if z.ndim == 3 else z[:, None]
        w = self.mapping(zs.flatten(0, 1)).view(*zs.shape)
        if truncation < 1.0:
            if truncation_latent is None:
                raise ValueError("truncation < 1 needs truncation_latent (see mean_latent())")
            w = truncation_latent + truncation * (w - truncation_latent)
        latents = w[:, :1].expand(-1, self.config.num_styles, -1)
        if zs.shape[1] == 2 and mix_index is not None:
            second = w[:, 1:2].expand(-1, self.config.num_styles - mix_index, -1)
            latents = torch.cat([latents[:, :mix_index], second], dim=1)
        return self.synthesis(latents.contiguous(), noise=noise)



    # --- Hub API (implemented in hub.py) -------------------------------------------------------

    @property
    def device(self) -> torch.device:
        return self.constant_input.input.device

    @property
    def dtype(self) -> torch.dtype:
        return self.constant_input.input.dtype

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str, *, revision: str | None = None,
                        cache_dir: str | None = None, force_download: bool = False, local_files_only: bool = False,
                        token=None, torch_dtype=None, dtype=None, device=None) -> "StyleGAN2Generator":
        """Load a latent bank folder or Hub repo (config.json + model.safetensors), frozen, in eval mode.

        The repo ids of the bundled banks (`glean-hub/bank-faces-64`, ...) load their installed copies,
        offline, unless `force_download=True` or another `revision` is asked for.
        """
        from .hub import HubOptions, bundled_bank, load_bank, one_dtype

        location = pretrained_model_name_or_path
        if not force_download:
            location = bundled_bank(location, revision) or location
        return load_bank(location, torch_dtype=one_dtype(torch_dtype, dtype), device=device, share=False,
                         options=HubOptions(revision, cache_dir, local_files_only, token, force_download), cls=cls)

    def save_pretrained(self, save_directory, *, card: str | None = None, discriminator: dict | None = None,
                        dtype: torch.dtype | None = None, safe_serialization: bool = True) -> str:
        """Write config.json, model.safetensors (+ discriminator.safetensors), README.md; returns the sha256."""
        from .hub import check_safe_serialization, save_bank

        check_safe_serialization(safe_serialization)
        return save_bank(self, save_directory, card=card, discriminator=discriminator, dtype=dtype)

    def push_to_hub(self, repo_id: str, **kwargs):
        """Upload as one commit (token, private, revision/branch, commit_message, create_pr, delete_patterns)."""
        from .hub import push_bank

        return push_bank(self, repo_id, **kwargs)


def num_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
