"""Model cards (README.md with Hub YAML metadata) for GLEAN models and latent banks.

Built from the config plus optional facts about data, training and measured numbers, so that a
card never states something the folder does not back up.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from huggingface_hub import EvalResult, ModelCardData

from .config import BankConfig, GLEANConfig

PAPER = "https://arxiv.org/abs/2012.00739"


@dataclass
class CardFacts:
    """What a card says beyond the config. Empty fields are left out of the card."""

    license: str = "other"
    license_name: str | None = None  # required by the Hub when license is "other"
    license_link: str | None = None
    datasets: list[str] = field(default_factory=list)
    data: str = ""  # training data, crop policy, licence terms
    training: str = ""  # steps, hardware, time, exact command
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)  # method -> {metric: value}
    limitations: str = ""
    samples: list[str] = field(default_factory=list)  # image paths relative to the folder


LICENSE_SECTION_LINK = "README.md#licence"  # license: other needs a link; by default the card's own Licence section
OWN_ROW = "GLEAN"  # the row of CardFacts.metrics measured on this model (the others are baselines)


def eval_results(facts: CardFacts, task_name: str) -> list[EvalResult] | None:
    """The model's own measured numbers (`metrics["GLEAN"]`) as huggingface_hub EvalResults (model-index)."""
    row = facts.metrics.get(OWN_ROW)
    if not row:
        return None
    dataset = facts.datasets[0] if facts.datasets else "validation"
    return [
        EvalResult(task_type="image-to-image", task_name=task_name, dataset_type=dataset,
                   dataset_name=f"{dataset} (validation split)", dataset_split="validation",
                   metric_type=name.lower(), metric_name=name, metric_value=float(value))
        for name, value in row.items()
    ]


def _yaml(facts: CardFacts, tags: list[str], base_model: str | None = None, pipeline_tag: str = "image-to-image",
          model_name: str | None = None, results: list[EvalResult] | None = None) -> str:
    other = facts.license == "other"
    data = ModelCardData(
        library_name="glean-hub",
        pipeline_tag=pipeline_tag,
        license=facts.license,
        license_name=facts.license_name or ("see-model-card" if other else None),
        license_link=facts.license_link or (LICENSE_SECTION_LINK if other else None),
        tags=tags,
        datasets=facts.datasets or None,
        base_model=base_model,
        model_name=model_name if results else None,
        eval_results=results,
    )
    return f"---\n{data.to_yaml()}\n---\n"


def _licence(facts: CardFacts) -> str:
    if facts.license != "other" or facts.license_link:
        return ""
    data = f" It was trained on {', '.join(facts.datasets)}; the terms of that data apply." if facts.datasets else ""
    terms = (f"`{facts.license_name}`, as this card describes (not an OSI licence)." if facts.license_name else
             "no licence was stated for these weights; ask their author before reusing them.")
    return f"## Licence\n\nWeights: {terms}{data} The glean-hub code is Apache-2.0.\n"


def _metrics_table(metrics: dict[str, dict[str, float]]) -> str:
    names = sorted({m for row in metrics.values() for m in row})
    lines = ["| method | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for method, row in metrics.items():
        lines.append(f"| {method} | " + " | ".join(f"{row[n]:.2f}" if n in row else "" for n in names) + " |")
    return "\n".join(lines)


def _sections(facts: CardFacts) -> str:
    parts = []
    if facts.data:
        parts.append(f"## Training data\n\n{facts.data}\n")
    if facts.training:
        parts.append(f"## Training\n\n{facts.training}\n")
    if facts.metrics:
        parts.append(f"## Evaluation\n\n{_metrics_table(facts.metrics)}\n")
    if facts.samples:
        parts.append("## Samples\n\n" + "\n".join(f"![sample]({s})" for s in facts.samples) + "\n")
    if facts.limitations:
        parts.append(f"## Limitations\n\n{facts.limitations}\n")
    if _licence(facts):
        parts.append(_licence(facts))
    return "\n".join(parts)


def _variant(c: GLEANConfig) -> str:
    """What differs from the official architecture (the recipe options of config.py), as one sentence; '' if nothing."""
    parts = []
    if c.decoder_width is not None:
        parts.append(f"its pixel-shuffle stages are {c.decoder_width} channels wide")
    if c.bicubic_skip:
        parts.append("the output is added to the MATLAB-bicubic upscale of the input (the network predicts the residual)")
    if c.dense_rank:
        parts.append(f"the encoder's {c.in_size}x{c.in_size} feature gets a fully connected residual through {c.dense_rank} units")
    if c.decoder_activation:
        parts.append("each pixel-shuffle stage is followed by a LeakyReLU")
    return ("\nUnlike the official models, " + "; ".join(parts) + ".") if parts else ""


def glean_card(config: GLEANConfig, facts: CardFacts | None = None, repo_id: str | None = None) -> str:
    facts = facts or CardFacts()
    c = config
    bank = (
        f"referenced: `{c.bank_id}`" + (f" @ `{c.bank_revision}`" if c.bank_revision else "") + f", sha256 `{c.bank_sha256}`"
        if c.bank_id
        else "embedded in `model.safetensors` (`generator.*`)"
    )
    category = c.category or "generic"
    name = repo_id or "path/to/this/folder"
    tags = ["super-resolution", "glean", "stylegan2", "image-to-image", f"{c.scale}x"] + ([c.category] if c.category else [])
    body = f"""
# GLEAN {category} {c.scale}x ({c.in_size} -> {c.out_size})

[GLEAN]({PAPER}) (Chan et al., CVPR 2021) super-resolution: a {c.num_rrdbs}x{c.rrdb_channels} RRDB encoder feeds a
frozen StyleGAN2 latent bank ({c.bank.out_size}x{c.bank.out_size}, {c.bank.style_channels}-d styles) whose features a
pixel-shuffle decoder fuses into the {c.out_size}x{c.out_size} output.{_variant(c)}

| | |
|---|---|
| input | RGB `[N, 3, {c.in_size}, {c.in_size}]` in [-1, 1] |
| output | RGB `[N, 3, {c.out_size}, {c.out_size}]` in about [-1, 1] |
| degradation seen in training | `{c.degradation}`{" (MATLAB bicubic `imresize`)" if c.degradation == "bicubic" else " (blur, noise, JPEG)"} |
| crop policy | `{c.crop_policy}` |
| latent bank | {bank} |

## Usage

```python
from glean_hub import GLEAN, GLEANPipeline

model = GLEAN.from_pretrained("{name}")
pipe = GLEANPipeline(model)
sr = pipe("photo.png").images[0]  # the input is cropped and downscaled to {c.in_size}x{c.in_size} first
```

GLEAN takes exactly {c.in_size}x{c.in_size} inputs. Other sizes are centre-cropped, padded or squashed and then
downscaled with MATLAB-exact bicubic resizing by the pipeline; inputs whose degradation differs from the
training degradation (`{c.degradation}`) give worse results.

{_sections(facts)}"""
    hub_bank = c.bank_id if c.bank_id and c.bank_id.count("/") == 1 and not c.bank_id.startswith((".", "/")) else None
    model_name = repo_id or f"glean-{category}-{c.scale}x-{c.out_size}"
    results = eval_results(facts, f"{c.scale}x super-resolution ({c.in_size} -> {c.out_size})")
    return _yaml(facts, tags, base_model=hub_bank, model_name=model_name, results=results) + body


def bank_card(config: BankConfig, sha256: str, facts: CardFacts | None = None, repo_id: str | None = None) -> str:
    facts = facts or CardFacts()
    c = config
    tags = ["stylegan2", "glean", "latent-bank"] + ([c.category] if c.category else [])
    gray = "\nTrained on grayscale images replicated to three channels: it generates grayscale images.\n" if c.grayscale else ""
    body = f"""
# StyleGAN2 latent bank: {c.category or "generic"} {c.out_size}x{c.out_size}

A StyleGAN2 generator (config-f semantics, {c.style_channels}-d styles, widths capped at {c.channel_max}, multiplier
{c.channel_multiplier}) used as the frozen latent bank of GLEAN models. GLEAN repos reference it by repo id and by the
sha256 of `model.safetensors`: `{sha256}`.{gray}

```python
from glean_hub import StyleGAN2Generator
import torch

bank = StyleGAN2Generator.from_pretrained("{repo_id or 'path/to/this/folder'}")
images = bank(torch.randn(4, {c.style_channels}))  # [4, {c.img_channels}, {c.out_size}, {c.out_size}] in about [-1, 1]
```

{_sections(facts)}"""
    return _yaml(facts, tags, pipeline_tag="unconditional-image-generation") + body
