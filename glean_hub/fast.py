"""Fast inference path for GLEAN: reduced precision, channels-last, precomputed bank constants, torch.compile.

    fast = optimize(model, dtype=torch.bfloat16, compile=True)  # a new module; `model` is not changed
    sr = fast(lr)                                                # same contract as GLEAN.forward

`optimize` returns a `FastGLEAN`, an inference-only snapshot of the model's weights. It computes the
same function as `GLEAN.forward` (the reference, which stays exact and is never modified), with:

* the bank's modulated convs in the input-modulated form (styles scale the input channels, one
  shared-weight conv for the whole batch, demodulation scales the output channels) instead of one
  grouped conv with a weight per sample; everything that does not depend on the input is computed
  once here: equalised weights, their squared sums for demodulation ([O, I]), the style affines,
  the noise buffers times their strengths, the constant input, the flipped blur kernels;
* the 2x upsampling conv as a shared-weight `conv_transpose2d` + depthwise blur (`upsample=
  "transpose"`, the fewest FLOPs) or, `upsample="subpixel"`, transposed conv and blur folded into
  one 6x6 stride-2 kernel evaluated as a 3x3 conv to 4*O channels + pixel shuffle (no blur pass,
  no odd-sized intermediate, 4x the MACs of that layer);
* few pointwise ops per bank layer: the input modulation is computed in float32 and rounded once,
  the activation gain sqrt 2 is folded into demodulation, noise and bias (leaky ReLU is positively
  homogeneous), and demodulation + noise is one `addcmul` (fewer kernels in eager mode, fewer
  roundings in low precision: +3 dB PSNR in bfloat16 on ffhq_16x);
* weights and activations in `dtype` (float32, bfloat16, float16). Style affines and
  demodulation coefficients are always computed in float32. float16 follows StyleGAN2-ADA: styles
  and weights are rescaled by their max-norm before the conv (exact: demodulation cancels it) and
  the bank's activations are clamped to +-`conv_clamp` (256); bfloat16 has float32's range and
  needs neither;
* `channels_last` memory format (the layout tensor cores and oneDNN prefer);
* optionally `torch.compile` (which fuses the pointwise ops: bias, noise, demodulation, leaky
  ReLU), falling back to eager with a warning when compilation fails.

Checked against the reference in `tests/test_fast.py`: float32 < 1e-5 on tiny models, bfloat16 and
float16 by PSNR. The snapshot is taken when `optimize` runs: optimize again after changing weights,
and do not `.to()` a FastGLEAN to another dtype (its float32 style tensors would be cast too).
Banks shared by several models (see hub.py) get one shared fast bank per (dtype, device, layout).

Memory: the fast module holds its own copy of the weights in `dtype` (the bank copy is shared).
Drop the reference model when only the fast one is needed.
"""

from __future__ import annotations

import copy
import math
import threading
import warnings
import weakref

import torch
import torch.nn.functional as F
from torch import nn

from .errors import ConfigError
from .glean import GLEAN
from .ops import SQRT2
from .stylegan2 import ModulatedConv2d, ModulatedStyleConv, StyleGAN2Generator

UPSAMPLE_MODES = ("transpose", "subpixel")
DTYPES = (torch.float32, torch.bfloat16, torch.float16)
FP16_CONV_CLAMP = 256.0  # StyleGAN2-ADA's conv_clamp for float16 layers


# ---------------------------------------------------------------------------------------------
# Equivalent formulations of the upsampling conv (pure functions; tested against the reference)
# ---------------------------------------------------------------------------------------------


def subpixel_weight(
    weight: torch.Tensor,  # [O, I, 3, 3], the conv_transpose2d weight in conv2d layout
    blur: torch.Tensor,  # [4, 4], the blur kernel as stored by Blur (gain 4), a true-convolution kernel
) -> torch.Tensor:  # [4 * O, I, 3, 3]
    """conv_transpose2d(stride 2, padding 0) followed by upfirdn2d(blur, pad (1, 1)) as one 3x3 conv.

    The composite is a stride-2 transposed conv with the 6x6 kernel G = W (*) blur (full 2-D
    convolution) and padding 2; output pixel (2a + by, 2b + bx) is a 3x3 correlation of the input
    around (a, b) with taps G[4 - 2j + by, 4 - 2i + bx]. Output channel o * 4 + by * 2 + bx, so
    `F.pixel_shuffle(conv2d(x, result, padding=1), 2)` equals the reference (up to rounding).
    """
    o, i, k, _ = weight.shape
    if k != 3 or tuple(blur.shape) != (4, 4):
        raise ConfigError(f"subpixel upsampling needs a 3x3 conv and a 4-tap blur, got a {k}x{k} conv and a {list(blur.shape)} blur")
    w = weight.reshape(o * i, 1, k, k).double()
    g = F.conv2d(F.pad(w, (3, 3, 3, 3)), torch.flip(blur.double(), (0, 1))[None, None])  # full convolution: [O*I, 1, 6, 6]
    g = g.reshape(o, i, 6, 6)
    taps = [[4, 2, 0], [5, 3, 1]]  # taps[phase][j]
    phases = [g[:, :, taps[by]][:, :, :, taps[bx]] for by in (0, 1) for bx in (0, 1)]  # 4 x [O, I, 3, 3]
    return torch.stack(phases, dim=1).reshape(4 * o, i, 3, 3).to(weight.dtype)


# ---------------------------------------------------------------------------------------------
# Bank layers
# ---------------------------------------------------------------------------------------------


class FastStyleConv(nn.Module):
    """`ModulatedStyleConv` (modulated conv -> noise -> bias + leaky ReLU * sqrt 2) with constants precomputed.

    `forward(x [N, I, H, W] in dtype, style [N, S] float32) -> [N, O, H', W']` with H' = 2H when
    upsampling. Holds only buffers: a snapshot of the source layer and its noise buffer.
    """

    def __init__(
        self,
        layer: ModulatedStyleConv,  # the reference layer
        noise: torch.Tensor,  # [1, 1, H', W'], the bank's stored noise for this layer
        dtype: torch.dtype,  # compute dtype of convs and activations
        memory_format: torch.memory_format,
        upsample_mode: str,  # "transpose" or "subpixel"
        conv_clamp: float | None,  # clamp activations to +-conv_clamp (float16), or None
        rescale: bool | None = None,  # max-norm rescaling of styles and weights (None: for float16 only)
    ):
        super().__init__()
        conv: ModulatedConv2d = layer.conv
        if not conv.demodulate:
            raise ConfigError("FastStyleConv expects a demodulated conv (as every StyleGAN2 style conv is)")
        self.upsample = conv.upsample
        self.upsample_mode = upsample_mode
        self.padding = conv.padding
        self.eps = conv.eps
        self.conv_clamp = conv_clamp
        affine = conv.style_modulation
        self.register_buffer("affine_weight", affine.linear.weight.detach().float().clone())  # [I, S]
        self.register_buffer("affine_bias", (affine.bias * affine.lr_mul).detach().float().clone())  # [I]
        weight = conv.weight[0].detach().float()  # [O, I, k, k], equalised as the reference does it
        self.normalize = dtype == torch.float16 if rescale is None else rescale
        if self.normalize:  # StyleGAN2-ADA: keep the fp16 conv in range; demodulation (from the same weight) cancels it
            weight = weight / weight.abs().amax(dim=[1, 2, 3], keepdim=True) / math.sqrt(weight[0].numel())
        self.register_buffer("weight_sq", weight.square().sum([2, 3]))  # [O, I], for demodulation
        if not self.upsample:
            conv_weight = weight
        elif upsample_mode == "subpixel":
            conv_weight = subpixel_weight(weight, conv.blur.kernel.float())
        else:
            conv_weight = weight.transpose(0, 1)  # [I, O, k, k], conv_transpose2d layout
            blur = torch.flip(conv.blur.kernel.float(), (0, 1))  # upfirdn2d is a true convolution
            self.register_buffer("blur_weight", blur[None, None].expand(weight.shape[0], 1, *blur.shape).to(dtype).contiguous(memory_format=memory_format))
            self.blur_pad = conv.blur.pad
        self.register_buffer("weight", conv_weight.to(dtype).contiguous(memory_format=memory_format))
        # leaky_relu(a) * sqrt 2 = leaky_relu(a * sqrt 2): the gain goes into demodulation, noise and bias
        noise = layer.noise_injector.weight.detach().float() * noise.detach().float() * SQRT2
        self.register_buffer("noise", noise.to(dtype))  # [1, 1, H', W'], strength * noise * sqrt 2
        self.register_buffer("bias", (layer.activate.bias.detach().float() * SQRT2).to(dtype).view(1, -1, 1, 1))  # [1, O, 1, 1]

    def modulation(self, style: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """style [N, S] -> input scales [N, I] and demodulation coefficients [N, O], both float32."""
        s = torch.addmm(self.affine_bias, style.float(), self.affine_weight.t())
        if self.normalize:
            s = s / s.abs().amax(dim=1, keepdim=True)
        demod = torch.rsqrt(s.square() @ self.weight_sq.t() + self.eps)
        return s, demod

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        n, c = x.shape[:2]
        s, demod = self.modulation(style)
        x = (x * s.view(n, c, 1, 1)).to(self.weight.dtype)  # computed in float32, rounded once
        if not self.upsample:
            out = F.conv2d(x, self.weight, padding=self.padding)
        elif self.upsample_mode == "subpixel":
            out = F.pixel_shuffle(F.conv2d(x, self.weight, padding=1), 2)
        else:
            out = F.conv_transpose2d(x, self.weight, stride=2)
            p0, p1 = self.blur_pad
            if p0 == p1:
                out = F.conv2d(out, self.blur_weight, padding=p0, groups=out.shape[1])
            else:
                out = F.conv2d(F.pad(out, (p0, p1, p0, p1)), self.blur_weight, groups=out.shape[1])
        # few ops, few roundings in low precision: out * demod * sqrt 2 + noise, then + bias and leaky ReLU
        out = torch.addcmul(self.noise, out, (demod * SQRT2).to(out.dtype).view(n, -1, 1, 1))
        out = F.leaky_relu(out + self.bias, 0.2)
        if self.conv_clamp is not None:
            out = out.clamp(-self.conv_clamp, self.conv_clamp)
        return out


class FastBank(nn.Module):
    """The synthesis layers GLEAN uses (constant input, conv1, convs), as `FastStyleConv`s.

    The RGB skip path (to_rgb*) never reaches GLEAN's output and is left out.
    """

    def __init__(self, bank: StyleGAN2Generator, dtype: torch.dtype, memory_format: torch.memory_format,
                 upsample_mode: str, conv_clamp: float | None):
        super().__init__()
        noise = bank.stored_noise
        self.register_buffer("constant", bank.constant_input.input.detach().to(dtype).contiguous(memory_format=memory_format))  # [1, C, 4, 4]
        args = (dtype, memory_format, upsample_mode, conv_clamp)
        self.conv1 = FastStyleConv(bank.conv1, noise[0], *args)
        self.convs = nn.ModuleList([FastStyleConv(layer, noise[i + 1], *args) for i, layer in enumerate(bank.convs)])


_FAST_BANKS: "weakref.WeakKeyDictionary[StyleGAN2Generator, dict]" = weakref.WeakKeyDictionary()
_FAST_BANKS_LOCK = threading.Lock()


def fast_bank(bank: StyleGAN2Generator, dtype: torch.dtype, memory_format: torch.memory_format, upsample_mode: str,
              conv_clamp: float | None) -> FastBank:
    """One FastBank per (bank module, dtype, device, layout, upsampling, clamp): models sharing a bank share it."""
    key = (dtype, str(bank.constant_input.input.device), memory_format, upsample_mode, conv_clamp)
    with _FAST_BANKS_LOCK:
        cache = _FAST_BANKS.setdefault(bank, {})
        if key not in cache:
            cache[key] = FastBank(bank, dtype, memory_format, upsample_mode, conv_clamp)
        return cache[key]


# ---------------------------------------------------------------------------------------------
# GLEAN
# ---------------------------------------------------------------------------------------------


class FastGLEAN(nn.Module):
    """Inference-only GLEAN built by `optimize`. `forward(lr [N, 3, in, in]) -> [N, 3, out, out]` in `dtype`.

    The input may be any float dtype (it is cast to `dtype`); the output is contiguous (NCHW) and
    in `dtype`. Encoder, fusion and decoder are copies of the reference modules cast to `dtype`;
    the bank is a (shared) `FastBank`.
    """

    def __init__(self, model: GLEAN, *, dtype: torch.dtype = torch.float32, channels_last: bool = True,
                 upsample: str = "transpose", conv_clamp: float | None = None):
        super().__init__()
        if dtype not in DTYPES:
            raise ConfigError(f"dtype must be one of {DTYPES}, got {dtype}")
        if upsample not in UPSAMPLE_MODES:
            raise ConfigError(f"upsample must be one of {UPSAMPLE_MODES}, got {upsample!r}")
        self.config = model.config
        self.dtype = dtype
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.upsample = upsample
        self.conv_clamp = conv_clamp
        self.encoder = _frozen_copy(model.encoder, dtype, self.memory_format)
        self.decoder = _frozen_copy(model.decoder, dtype, self.memory_format)
        self.fusion_out = _frozen_copy(model.fusion_out, dtype, self.memory_format)
        self.bank = fast_bank(model.generator, dtype, self.memory_format, upsample, conv_clamp) if self.config.use_bank else None
        self.compiled = None  # set by `optimize(compile=True)`: the compiled `run`
        self.cudagraphs = False  # the compiled function reuses its output buffers (CUDA graphs)

    @property
    def device(self) -> torch.device:
        return self.bank.constant.device if self.bank is not None else next(self.parameters()).device

    check_input = GLEAN.check_input
    encode = GLEAN.encode
    decode = GLEAN.decode
    add_skip = GLEAN.add_skip

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        """[N, 3, in_size, in_size] in [-1, 1] -> [N, 3, out_size, out_size] in `dtype`."""
        self.check_input(lr)
        x = lr.to(device=self.device, dtype=self.dtype).contiguous(memory_format=self.memory_format)
        if self.compiled is None:
            return self.run(x).contiguous()
        try:
            if self.cudagraphs:
                torch.compiler.cudagraph_mark_step_begin()
            out = self.compiled(x)
        except torch.cuda.OutOfMemoryError:
            raise
        except Exception as e:  # compilation failed: warn once, then stay eager
            warnings.warn(f"torch.compile failed ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
                          "running the eager fast path instead", RuntimeWarning, stacklevel=2)
            self.compiled, self.cudagraphs = None, False
            return self.run(x).contiguous()
        return out.clone(memory_format=torch.contiguous_format) if self.cudagraphs else out.contiguous()

    def run(self, x: torch.Tensor) -> torch.Tensor:
        """The network on a prepared input (dtype, layout, device); what torch.compile compiles."""
        latents, enc_features = self.encode(x)
        if self.bank is None:
            return self.add_skip(x, self.decode(enc_features[-1], None))
        latents = latents.float()
        bank = self.bank
        out = bank.constant.expand(x.shape[0], -1, -1, -1)
        out = bank.conv1(out, latents[:, 0])
        bank_features = []
        for t in range(len(bank.convs) // 2):
            i = 1 + 2 * t
            if out.shape[2] <= self.config.in_size:
                out = self.fusion_out[t](torch.cat([out, enc_features[t]], dim=1))
            out = bank.convs[2 * t](out, latents[:, i])
            out = bank.convs[2 * t + 1](out, latents[:, i + 1])
            if out.shape[2] > self.config.in_size:
                bank_features.append(out)
        return self.add_skip(x, self.decode(enc_features[-1], bank_features))


def _frozen_copy(module: nn.Module, dtype: torch.dtype, memory_format: torch.memory_format) -> nn.Module:
    module = copy.deepcopy(module).requires_grad_(False).eval()
    return module.to(dtype=dtype, memory_format=memory_format) if memory_format == torch.channels_last else module.to(dtype=dtype)


def optimize(
    model: GLEAN,
    *,
    dtype: torch.dtype | str | None = None,  # None: the model's dtype; "fp32"/"bf16"/"fp16" or a torch dtype
    channels_last: bool = True,  # NHWC activations and weights (faster on tensor cores and oneDNN)
    compile: bool = False,  # torch.compile the network (falls back to eager with a warning)
    compile_mode: str | None = None,  # torch.compile mode; None: "reduce-overhead" on CUDA, "default" elsewhere
    upsample: str = "transpose",  # "transpose" (fewest FLOPs) or "subpixel" (see subpixel_weight)
    conv_clamp: float | None | str = "auto",  # "auto": 256 for float16, none otherwise
) -> FastGLEAN:
    """A fast, inference-only copy of `model` (see the module docstring); `model` itself is not changed.

    float32 computes the reference function up to float rounding (< 1e-5 on the tests' models).
    """
    if not isinstance(model, GLEAN):
        raise TypeError(f"optimize expects a GLEAN model, got {type(model).__name__}")
    dtype = _resolve_dtype(dtype, next(model.parameters()).dtype)
    if conv_clamp == "auto":
        conv_clamp = FP16_CONV_CLAMP if dtype == torch.float16 else None
    fast = FastGLEAN(model, dtype=dtype, channels_last=channels_last, upsample=upsample, conv_clamp=conv_clamp).eval()
    if compile:
        if compile_mode is None:
            compile_mode = "reduce-overhead" if fast.device.type == "cuda" else "default"
        try:
            fast.compiled = torch.compile(fast.run, mode=compile_mode, dynamic=False)
            fast.cudagraphs = fast.device.type == "cuda" and compile_mode == "reduce-overhead"
        except Exception as e:  # torch.compile unavailable (old torch, unsupported platform)
            warnings.warn(f"torch.compile is unavailable ({type(e).__name__}: {e}); using the eager fast path",
                          RuntimeWarning, stacklevel=2)
    return fast


def _resolve_dtype(dtype, default: torch.dtype) -> torch.dtype:
    names = {"fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
             "fp16": torch.float16, "float16": torch.float16}
    if dtype is None:
        return default
    if isinstance(dtype, str):
        if dtype not in names:
            raise ConfigError(f"dtype={dtype!r} is not supported; use 'fp32', 'bf16' or 'fp16' (or a torch dtype)")
        return names[dtype]
    if dtype not in DTYPES:
        raise ConfigError(f"dtype={dtype} is not supported; use torch.float32, torch.bfloat16 or torch.float16")
    return dtype
