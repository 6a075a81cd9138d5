"""GLEAN: encoder -> frozen StyleGAN2 latent bank with feature fusion -> pixel-shuffle decoder.

Matches MMEditing's `GLEANStyleGANv2` (the code of the released checkpoints) key for key and in
numerics; `tests/test_golden.py` checks this against outputs of the official implementation.

    lr [N,3,s,s] --RRDB (, GlobalDense)--> f_s --stride-2 convs--> f_s/2 ... f_4 --conv, linear--> latents [N,L,512]
    bank: const 4x4 -> at each side r <= s: out = fusion_out(cat[out, f_r]) -> StyleGAN2 stage
          features at sides 2s ... out_size are kept
    decoder: f_s -> pixel-shuffle x2 -> cat with bank feature -> ... -> conv -> [N,3,S,S]
    (+ MATLAB-bicubic upscale of lr when config.bicubic_skip; pixel-shuffle widths config.decoder_width
    when set; a low-rank fully connected residual on f_s when config.dense_rank; LeakyReLU after each
    pixel shuffle when config.decoder_activation: options of the small CPU-trained models, off in the
    official ones)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import GLEANConfig
from .imresize import imresize
from .rrdb import RRDBFeatureExtractor
from .stylegan2 import StyleGAN2Generator


class PixelShufflePack(nn.Module):
    """3x3 conv to 4x the output channels, then pixel shuffle x2; LeakyReLU(0.2) after it if `activate`
    (the official decoder has none: it is linear up to its last conv but for the bank's features)."""

    def __init__(self, in_channels: int, out_channels: int, scale: int = 2, activate: bool = False):
        super().__init__()
        self.scale, self.activate = scale, activate
        self.upsample_conv = nn.Conv2d(in_channels, out_channels * scale * scale, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, I, H, W] -> [N, O, 2H, 2W]
        out = F.pixel_shuffle(self.upsample_conv(x), self.scale)
        return F.leaky_relu(out, 0.2) if self.activate else out


class GlobalDense(nn.Module):
    """x + up(lrelu(down(flatten(x)))): a low-rank fully connected residual over the whole feature map.

    [N, C, s, s] -> [N, C, s, s]. Every output position sees every input position through its own weights, so
    the layer is global and knows where it is (convolutions are neither at an 8x8 input). `up` starts at zero:
    the block starts as the identity.
    """

    def __init__(self, channels: int, size: int, rank: int):
        super().__init__()
        self.down = nn.Linear(channels * size * size, rank)
        self.up = nn.Linear(rank, channels * size * size)
        nn.init.zeros_(self.up.weight), nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.up(F.leaky_relu(self.down(x.flatten(1)), 0.2)).view_as(x)


def _lrelu() -> nn.LeakyReLU:
    return nn.LeakyReLU(negative_slope=0.2)


class GLEAN(nn.Module):
    """GLEAN super-resolution network.

    `forward(lr)`: lr [N, 3, in_size, in_size], RGB in [-1, 1] -> [N, 3, out_size, out_size] in about
    [-1, 1] (no clamp, as the official model). Deterministic: the bank uses its stored noise.

    The bank (`self.generator`) is frozen. Its RGB skip path (`to_rgb1`, `to_rgbs`) and the encoder's
    `fusion_skip` convs exist for strict loading of official checkpoints, but never reach the
    output (also not in the official code), so `forward` skips them and `fusion_skip` is frozen.
    """

    bank_dropout = 0.0  # training only: the share of samples whose bank features the decoder gets as zeros

    def __init__(self, config: GLEANConfig):
        super().__init__()
        self.config = config
        c = config
        ch = c.bank.channels
        self.generator = StyleGAN2Generator(c.bank)
        self.generator.requires_grad_(False)

        # encoder: RRDB trunk, then one block per side from in_size down to 4
        encoder_res = [2**i for i in range(int(math.log2(c.in_size)), 1, -1)]
        self.encoder = nn.ModuleList(
            [
                nn.Sequential(
                    RRDBFeatureExtractor(c.bank.img_channels, c.rrdb_channels, c.num_rrdbs, c.rrdb_growth),
                    nn.Conv2d(c.rrdb_channels, ch(c.in_size), 3, 1, 1),
                    _lrelu(),
                    *([GlobalDense(ch(c.in_size), c.in_size, c.dense_rank)] if c.dense_rank else []),
                )
            ]
        )
        for res in encoder_res:
            if res > 4:
                block = nn.Sequential(
                    nn.Conv2d(ch(res), ch(res // 2), 3, 2, 1), _lrelu(), nn.Conv2d(ch(res // 2), ch(res // 2), 3, 1, 1), _lrelu()
                )
            else:
                block = nn.Sequential(
                    nn.Conv2d(ch(4), ch(4), 3, 1, 1),
                    _lrelu(),
                    nn.Flatten(),
                    nn.Linear(16 * ch(4), c.num_styles * c.bank.style_channels),
                )
            self.encoder.append(block)

        # fusion of encoder features into the bank, at sides 4, 8, ..., in_size
        self.fusion_out = nn.ModuleList([nn.Conv2d(2 * ch(r), ch(r), 3, 1, 1) for r in encoder_res[::-1]])
        self.fusion_skip = nn.ModuleList([nn.Conv2d(ch(r) + c.bank.img_channels, c.bank.img_channels, 3, 1, 1) for r in encoder_res[::-1]])
        self.fusion_skip.requires_grad_(False)
        if not c.use_bank:  # the ablation uses only the in_size feature: nothing else gets a gradient
            self.encoder[1:].requires_grad_(False)
            self.fusion_out.requires_grad_(False)

        # decoder: sides in_size, 2*in_size, ..., out_size
        self.decoder = nn.ModuleList()
        for log_res in range(int(math.log2(c.in_size)), c.bank.log_size + 1):
            res = 2**log_res
            in_channels = ch(res) if res == c.in_size else self.decoder_width(res) + ch(res)
            if res < c.out_size:
                self.decoder.append(PixelShufflePack(in_channels, self.decoder_width(2 * res), activate=c.decoder_activation))
            else:
                self.decoder.append(
                    nn.Sequential(
                        nn.Conv2d(in_channels, c.decoder_channels, 3, 1, 1),
                        _lrelu(),
                        nn.Conv2d(c.decoder_channels, c.bank.img_channels, 3, 1, 1),
                    )
                )

    def decoder_width(self, res: int) -> int:
        """Channels of the decoder's own feature at side `res` (> in_size): the bank's width, or `decoder_width`."""
        return self.config.bank.channels(res) if self.config.decoder_width is None else self.config.decoder_width

    def check_input(self, lr: torch.Tensor) -> None:
        """Raise ValueError unless lr is a float tensor [N, 3, in_size, in_size]."""
        c = self.config
        expected = f"[N, {c.bank.img_channels}, {c.in_size}, {c.in_size}]"
        if not isinstance(lr, torch.Tensor):
            raise ValueError(f"GLEAN expects a tensor {expected}, got {type(lr).__name__}")
        if lr.ndim != 4 or tuple(lr.shape[1:]) != (c.bank.img_channels, c.in_size, c.in_size):
            raise ValueError(
                f"GLEAN {c.in_size}->{c.out_size} expects input of shape {expected} (RGB in [-1, 1]), "
                f"got {list(lr.shape)}. Use GLEANPipeline to resize, crop or pad images of other sizes."
            )
        if not lr.is_floating_point():
            raise ValueError(f"GLEAN expects a floating-point tensor in [-1, 1], got dtype {lr.dtype}")

    def encode(self, lr: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """lr -> (latents [N, num_styles, style_channels], features at sides 4, 8, ..., in_size)."""
        features = []
        feat = lr
        for block in self.encoder:
            feat = block(feat)
            features.append(feat)
        latents = features[-1].view(lr.shape[0], -1, self.config.bank.style_channels)
        return latents, features[-2::-1]

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        """[N, 3, in_size, in_size] in [-1, 1] -> [N, 3, out_size, out_size]."""
        self.check_input(lr)
        latents, enc_features = self.encode(lr)
        if not self.config.use_bank:
            return self.add_skip(lr, self.decode(enc_features[-1], None))
        bank = self.generator
        noise = bank.stored_noise

        # bank: 4x4 stage, then one stage per doubling; fuse encoder features up to in_size
        out = bank.conv1(bank.constant_input(lr.shape[0]), latents[:, 0], noise[0])
        bank_features = []
        for t in range(len(bank.to_rgbs)):
            i = 1 + 2 * t
            if out.shape[2] <= self.config.in_size:
                out = self.fusion_out[t](torch.cat([out, enc_features[t]], dim=1))
            out = bank.convs[2 * t](out, latents[:, i], noise[i])
            out = bank.convs[2 * t + 1](out, latents[:, i + 1], noise[i + 1])
            if out.shape[2] > self.config.in_size:
                bank_features.append(out)
        if self.training and self.bank_dropout > 0:  # those samples train as the bank-less baseline does
            keep = (torch.rand(lr.shape[0], 1, 1, 1, device=lr.device) >= self.bank_dropout).to(out.dtype)
            bank_features = [f * keep for f in bank_features]

        return self.add_skip(lr, self.decode(enc_features[-1], bank_features))

    def add_skip(self, lr: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """out [N,3,S,S] + MATLAB-bicubic upscale of lr [N,3,s,s] when `config.bicubic_skip`, else out."""
        if not self.config.bicubic_skip:
            return out
        up = imresize(lr.float(), size=(self.config.out_size, self.config.out_size), antialias=False)
        return out + up.to(out.dtype)

    def decode(self, feat: torch.Tensor, bank_features: list[torch.Tensor] | None) -> torch.Tensor:
        """Decoder: from the encoder feature at in_size, fuse bank features (zeros if None) on the way up."""
        hr = feat
        for j, block in enumerate(self.decoder):
            if j > 0:
                if bank_features is not None:
                    bank = bank_features[j - 1]
                else:
                    bank = hr.new_zeros(hr.shape[0], self.config.bank.channels(hr.shape[-1]), *hr.shape[2:])
                hr = torch.cat([hr, bank], dim=1)
            hr = block(hr)
        return hr

    def trainable_parameters(self) -> list[nn.Parameter]:
        """Encoder, fusion_out and decoder parameters (the bank and fusion_skip stay frozen)."""
        return [p for p in self.parameters() if p.requires_grad]

    # --- Hub API (implemented in hub.py, which is given the class: it imports no model module) ----

    @property
    def device(self) -> torch.device:
        """Device of the model's parameters (diffusers' `ModelMixin.device`)."""
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        """dtype of the model's floating-point parameters (diffusers' `ModelMixin.dtype`)."""
        return next(p.dtype for p in self.parameters() if p.is_floating_point())

    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: str,  # or a path-like
        *,
        scale: int | None = None,
        category: str | None = None,
        revision: str | None = None,
        cache_dir: str | None = None,
        force_download: bool = False,
        local_files_only: bool = False,
        token: str | bool | None = None,
        torch_dtype: torch.dtype | str | None = None,
        dtype: torch.dtype | str | None = None,
        device: str | torch.device | None = None,
        resolution: int | None = None,
    ) -> "GLEAN":
        """Load a model by category (`"faces", scale=16`), local folder, or Hub repo id.

        An existing model folder (one with config.json) wins over a category of the same name; the repo
        ids of the bundled models (`glean-hub/glean-faces-8x-64`, ...) load their installed copies,
        offline, unless `force_download=True` or another `revision` is asked for. Weights are read from
        safetensors only, strictly (every tensor present, named and shaped as the config says); a
        referenced latent bank must match its sha256. `scale`/`category`, when given with a folder or
        repo, must agree with its config. `torch_dtype` (or its diffusers >= 0.32 spelling `dtype`):
        None -> float32, "auto" -> as stored, a name ("fp16", "bfloat16", ...) or a torch dtype.
        `device`: "cpu", "cuda", "cuda:1", ... (a clean error when it is not available). Returns the model
        in eval mode.

        The paper's released weights load by name (`"openmmlab/glean-cats-8x"`) or, for a category, by output
        size: `GLEAN.from_pretrained("cats", scale=8, resolution=256)`; the `.pth` (or any `.pth` URL) is
        downloaded, checked and converted once, then cached under HF_HOME (see `glean_hub/released.py`).
        """
        from .hub import load_glean, one_dtype

        return load_glean(
            pretrained_model_name_or_path, cls=cls, scale=scale, category=category, revision=revision,
            cache_dir=cache_dir, force_download=force_download, local_files_only=local_files_only, token=token,
            torch_dtype=one_dtype(torch_dtype, dtype), device=device, resolution=resolution,
        )

    def save_pretrained(self, save_directory, *, embed_bank: bool | None = None, card: str | None = None,
                        dtype: torch.dtype | None = None, safe_serialization: bool = True, push_to_hub: bool = False,
                        repo_id: str | None = None, **push_to_hub_kwargs):
        """Write config.json, model.safetensors, README.md (weights in `dtype` if given). See `hub.save_glean`.

        `safe_serialization` must stay True (safetensors is the only format written). `push_to_hub=True`
        then uploads the folder to `repo_id` (default: the folder's name), with `push_to_hub_kwargs`
        (token, private, branch, commit_message, create_pr, delete_patterns), and returns the CommitInfo.
        """
        from .hub import save_glean

        return save_glean(self, save_directory, embed_bank=embed_bank, card=card, dtype=dtype,
                          safe_serialization=safe_serialization, push_to_hub=push_to_hub, repo_id=repo_id,
                          **push_to_hub_kwargs)

    def push_to_hub(self, repo_id: str, *, embed_bank: bool | None = None, token=None, private: bool | None = None,
                    revision: str | None = None, branch: str | None = None, commit_message: str | None = None,
                    create_pr: bool = False, delete_patterns: list[str] | str | None = None):
        """Save to a temporary folder and upload it as one commit. Returns huggingface_hub's CommitInfo.

        `branch` is `PyTorchModelHubMixin`'s name for `revision` (an existing branch); `delete_patterns`
        removes matching files already in the repo in the same commit (e.g. "*.bin").
        """
        from .hub import push_glean

        return push_glean(self, repo_id, embed_bank=embed_bank, token=token, private=private, revision=revision,
                          branch=branch, commit_message=commit_message, create_pr=create_pr,
                          delete_patterns=delete_patterns)
