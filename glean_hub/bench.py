"""Inference benchmark: the reference GLEAN against the fast path (fast.py), per setting and batch size.

    rows = bench_model(model, "ffhq_16x", settings_for(["bf16"], compile=True), [1, 8], "cuda")
    print(format_table(rows))

Every setting runs on the same input as the reference (eager float32 `GLEAN.forward`, always
measured first in the same run) and reports: images/s and ms/image (median over `repeats` timed
calls after `warmup` calls, with `torch.cuda.synchronize` around each call on CUDA; also the fastest
and slowest call, their spread, outlier calls > 1.5x the fastest and the speedup by fastest call, with
a "noisy" / "speedup unstable" note where the timing cannot be trusted), peak memory,
model GFLOP/image (reference architecture, counted once with `torch.utils.flop_counter` on the meta
device), achieved TFLOP/s (model FLOPs / time), speedup over the reference at the same batch size,
and max |difference| and PSNR of the output against the reference output (PSNR over the model's
[-1, 1] range, i.e. peak-to-peak 2).

Peak memory: CUDA: `torch.cuda.max_memory_allocated` during the timed calls minus the memory
allocated before them, plus the bytes of the setting's own weights. CPU: the process RSS
high-water mark (VmHWM, reset per setting through /proc/self/clear_refs) minus the RSS before the
calls, plus the weight bytes; where VmHWM cannot be reset, the lifetime `ru_maxrss` (marked).
Benchmarks are not tests: tests/test_bench.py only checks that this runs and is well-formed.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import os
import platform
import resource
import statistics
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from .config import OFFICIAL_CONFIGS, GLEANConfig
from .errors import ConfigError, GleanError
from .fast import optimize
from .glean import GLEAN

# Short names of the official architectures, benchmarked with random weights (no download).
CONFIG_ALIASES = {
    "cat_8x": "glean_cat_8x",
    "cat_16x": "glean_cat_16x",
    "ffhq_16x": "glean_ffhq_16x",
    "ffhq_8x_realworld": "glean_in128out1024_4x2_300k_ffhq_celebahq",
}
DTYPE_NAMES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}

COLUMNS_HELP = """\
columns:
  model        official config (random weights), bundled model or folder/repo
  setting      reference = eager fp32 GLEAN.forward (exact); fast = fast.optimize (dtype, channels-last,
               precomputed bank constants, input-modulated convs); +compile = torch.compile
  batch        images per forward call
  img/s        images per second (batch / median call time)
  ms/img       median call time / batch
  min ms       fastest timed call / batch (the least disturbed measurement)
  spread       (slowest - fastest) / median timed call; the note says "noisy" above 25 % or when a call
               took > 1.5x the fastest (an outlier), and "speedup unstable" when the speedup by median and
               by fastest call differ by > 20 %: rerun with more --repeats on an idle machine
  peak MiB     weights of this setting + peak extra memory of its forward (CUDA: max_memory_allocated;
               CPU: process RSS high-water mark, VmHWM)
  GFLOP/img    model FLOPs per image (torch.utils.flop_counter, reference architecture; 1 MAC = 2 FLOPs)
  TFLOP/s      achieved: GFLOP/img * img/s / 1000
  speedup      img/s over the reference at the same batch size, measured in the same run
  max|diff|    max absolute difference of the output against the reference output (outputs in [-1, 1])
  PSNR dB      PSNR of the output against the reference output, peak-to-peak 2 (inf = identical)
"""


@dataclass(frozen=True)
class Setting:
    """One way of running the model."""

    fast: bool  # False: the reference GLEAN.forward (eager, float32)
    dtype: str = "fp32"  # fp32, bf16, fp16
    compile: bool = False
    channels_last: bool = True
    upsample: str = "transpose"
    compile_mode: str | None = None  # None: fast.optimize's default for the device

    @property
    def name(self) -> str:
        if not self.fast:
            return "reference fp32"
        extras = [] if self.channels_last else ["nchw"]
        extras += [] if self.upsample == "transpose" else [self.upsample]
        extras += [f"+compile{'' if self.compile_mode is None else ':' + self.compile_mode}"] if self.compile else []
        return " ".join(["fast", self.dtype, *extras])


REFERENCE = Setting(fast=False)


def settings_for(dtypes: list[str], *, compile: bool = False, channels_last: bool = True, upsample: str = "transpose",
                 compile_mode: str | None = None) -> list[Setting]:
    """The reference, then the fast path in each dtype (eager, and compiled when `compile`)."""
    for d in dtypes:
        if d not in DTYPE_NAMES:
            raise ConfigError(f"unknown dtype {d!r}; use fp32, bf16 or fp16")
    out = [REFERENCE]
    for d in dtypes:
        out.append(Setting(True, d, False, channels_last, upsample))
        if compile:
            out.append(Setting(True, d, True, channels_last, upsample, compile_mode))
    return out


@dataclass
class Row:
    model: str
    setting: str
    device: str
    dtype: str
    batch_size: int
    images_per_s: float | None  # None when the setting failed (see note)
    ms_per_image: float | None
    peak_mem_mib: float | None
    gflop_per_image: float
    tflops: float | None
    speedup: float | None  # over the reference at this batch size
    max_abs_diff: float | None  # against the reference output
    psnr_db: float | None  # against the reference output, peak-to-peak 2
    first_call_s: float | None  # the first call alone (includes compilation when compiled)
    repeats: int
    note: str = ""  # "compile failed: ...", "out of memory", "noisy: ...", ...
    ms_per_image_min: float | None = None  # fastest timed call / batch
    ms_per_image_max: float | None = None  # slowest timed call / batch
    spread_pct: float | None = None  # (slowest - fastest) / median of the timed calls, in %
    outliers: int = 0  # timed calls more than OUTLIER_FACTOR x the fastest one
    speedup_min: float | None = None  # over the reference, fastest call against fastest call


# ---------------------------------------------------------------------------------------------
# Measurements
# ---------------------------------------------------------------------------------------------


def count_flops(config: GLEANConfig) -> float:
    """Model FLOPs of one forward of one image, counted on the meta device (no compute, no memory)."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        model = GLEAN(config).eval()
        x = torch.zeros(1, config.bank.img_channels, config.in_size, config.in_size)
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            model(x)
    return float(counter.get_total_flops())


def psnr(a: torch.Tensor, b: torch.Tensor, peak_to_peak: float = 2.0) -> float:
    mse = (a.double() - b.double()).square().mean().item()
    return math.inf if mse == 0 else 10 * math.log10(peak_to_peak**2 / mse)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def weight_bytes(module: torch.nn.Module) -> int:
    """Bytes of the module's parameters and buffers, each storage counted once."""
    seen, total = set(), 0
    for t in [*module.parameters(), *module.buffers()]:
        key = (t.untyped_storage().data_ptr(), t.device)
        if key not in seen:
            seen.add(key)
            total += t.untyped_storage().nbytes()
    return total


class PeakMemory:
    """Peak extra memory of a block of code: CUDA allocator, or process RSS high-water mark on CPU."""

    def __init__(self, device: torch.device):
        self.device = device
        self.kind = "cuda max_memory_allocated" if device.type == "cuda" else "cpu VmHWM"

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.before = torch.cuda.memory_allocated(self.device)
        else:
            if not _reset_hwm():
                self.kind = "cpu ru_maxrss (lifetime peak)"
            self.before = _rss_bytes()
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak = torch.cuda.max_memory_allocated(self.device) - self.before
        else:
            hwm = _status_bytes("VmHWM") if self.kind == "cpu VmHWM" else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            self.peak = max(0, (hwm or 0) - self.before)
        return False


def _status_bytes(field_name: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _rss_bytes() -> int:
    return _status_bytes("VmRSS") or 0


def _reset_hwm() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return _status_bytes("VmHWM") is not None
    except OSError:
        return False


# A timed call slower than OUTLIER_FACTOR x the fastest call of the same setting is an outlier (another process
# took the cores, a page fault storm, a GC pause); a spread above NOISY_SPREAD_PCT % marks the row as noisy.
OUTLIER_FACTOR = 1.5
NOISY_SPREAD_PCT = 25.0


@dataclass(frozen=True)
class TimingStats:
    """Summary of the timed calls of one setting (seconds per call)."""

    min: float
    median: float
    max: float
    spread_pct: float  # (max - min) / median * 100
    outliers: int  # calls > OUTLIER_FACTOR * min

    @classmethod
    def of(cls, times: list[float]) -> TimingStats:
        if not times:
            raise ValueError("no timed calls")
        lo, med, hi = min(times), statistics.median(times), max(times)
        return cls(lo, med, hi, 100 * (hi - lo) / med if med > 0 else 0.0, sum(t > OUTLIER_FACTOR * lo for t in times))

    def flag(self) -> str:
        """'' when the timing is trustworthy, else a short note saying why not."""
        parts = []
        if self.outliers:
            parts.append(f"{self.outliers} outlier call{'s' if self.outliers > 1 else ''} > {OUTLIER_FACTOR}x the fastest")
        if self.spread_pct > NOISY_SPREAD_PCT:
            parts.append(f"spread {self.spread_pct:.0f}%")
        return "noisy: " + ", ".join(parts) if parts else ""


def time_calls(fn, x: torch.Tensor, device: torch.device, warmup: int, repeats: int) -> tuple[float, list[float], torch.Tensor]:
    """(first call seconds, seconds of each timed call, output of the first call)."""
    _sync(device)
    t0 = time.perf_counter()
    out = fn(x)
    _sync(device)
    first = time.perf_counter() - t0
    out = out.float().clone()  # detach from buffers the next call may reuse (CUDA graphs)
    for _ in range(max(0, warmup - 1)):
        fn(x)
    times = []
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        fn(x)
        _sync(device)
        times.append(time.perf_counter() - t0)
    return first, times, out


def build(model: GLEAN, setting: Setting):
    """The callable for a setting (the reference model itself, or a FastGLEAN) and a note on what happened."""
    if not setting.fast:
        return model, ""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fast = optimize(model, dtype=DTYPE_NAMES[setting.dtype], channels_last=setting.channels_last, compile=setting.compile,
                        compile_mode=setting.compile_mode, upsample=setting.upsample)
    return fast, "; ".join(str(w.message) for w in caught)


def bench_model(
    model: GLEAN,
    name: str,
    settings: list[Setting],
    batch_sizes: list[int],
    device: str | torch.device,
    *,
    warmup: int = 1,
    repeats: int = 3,
    seed: int = 0,
    log=None,  # callable(str) for progress lines, or None
) -> list[Row]:
    """Benchmark `model` (moved to `device`, float32) under each setting at each batch size.

    The reference setting is always measured first at each batch size (added if missing).
    """
    device = torch.device(device)
    model = model.to(device=device, dtype=torch.float32).eval()
    if REFERENCE not in settings:
        settings = [REFERENCE, *settings]
    settings = [REFERENCE] + [s for s in settings if s != REFERENCE]
    gflop = count_flops(model.config) / 1e9
    built = {}
    rows = []
    c = model.config
    for batch in batch_sizes:
        gen = torch.Generator().manual_seed(seed)
        x = (torch.rand(batch, c.bank.img_channels, c.in_size, c.in_size, generator=gen) * 2 - 1).to(device)
        ref_out, ref_ips, ref_min = None, None, None
        for setting in settings:
            if log:
                log(f"{name}: {setting.name}, batch {batch} ...")
            row = Row(name, setting.name, str(device), setting.dtype, batch, None, None, None, gflop, None, None, None, None,
                      None, repeats)
            try:
                if setting not in built:
                    built[setting] = build(model, setting)
                fn, note = built[setting]
                with torch.no_grad(), PeakMemory(device) as mem:
                    first, times, out = time_calls(fn, x, device, warmup, repeats)
                if getattr(fn, "compiled", "n/a") is None and setting.compile and "compile" not in note:
                    note = "torch.compile failed: ran eager"
                row.note = note
            except torch.cuda.OutOfMemoryError:
                row.note = "out of memory"
                torch.cuda.empty_cache()
                rows.append(row)
                continue
            stats = TimingStats.of(times or [first])
            row.first_call_s = first
            row.ms_per_image = stats.median / batch * 1e3
            row.ms_per_image_min, row.ms_per_image_max = stats.min / batch * 1e3, stats.max / batch * 1e3
            row.spread_pct, row.outliers = stats.spread_pct, stats.outliers
            row.note = "; ".join(n for n in (row.note, stats.flag()) if n)
            row.images_per_s = batch / stats.median
            row.tflops = gflop * row.images_per_s / 1e3
            row.peak_mem_mib = (weight_bytes(fn) + mem.peak) / 2**20
            if setting == REFERENCE:
                ref_out, ref_ips, ref_min = out, row.images_per_s, stats.min
            if ref_out is not None:  # None when the reference itself ran out of memory
                row.speedup = row.images_per_s / ref_ips
                row.speedup_min = ref_min / stats.min
                if row.speedup_min and abs(math.log(row.speedup / row.speedup_min)) > math.log(1.2):
                    unstable = f"speedup unstable: {row.speedup:.2f}x by median, {row.speedup_min:.2f}x by fastest call"
                    row.note = "; ".join(n for n in (row.note, unstable) if n)
                row.max_abs_diff = (out - ref_out).abs().max().item()
                row.psnr_db = psnr(out, ref_out)
            if not torch.isfinite(out).all():
                row.note = (row.note + "; " if row.note else "") + "non-finite output"
            rows.append(row)
            del out
    return rows


def saturation(rows: list[Row], tolerance: float = 0.05) -> list[dict]:
    """Per (model, setting): the best img/s and the smallest batch within `tolerance` of it."""
    out = []
    keys = dict.fromkeys((r.model, r.setting) for r in rows)
    for model, setting in keys:
        ok = [r for r in rows if (r.model, r.setting) == (model, setting) and r.images_per_s]
        if len(ok) < 2:
            continue
        best = max(ok, key=lambda r: r.images_per_s)
        sat = min((r for r in ok if r.images_per_s >= (1 - tolerance) * best.images_per_s), key=lambda r: r.batch_size)
        out.append({"model": model, "setting": setting, "best_images_per_s": best.images_per_s,
                    "best_batch_size": best.batch_size, "saturation_batch_size": sat.batch_size,
                    "best_tflops": best.tflops})
    return out


# ---------------------------------------------------------------------------------------------
# Model load time and profile
# ---------------------------------------------------------------------------------------------


def bench_load(sources: list[tuple[str, str]], device: str | torch.device) -> tuple[list[dict], list[GLEAN]]:
    """Seconds from `GLEAN.from_pretrained` to the model loaded, and to its first output (batch 1).

    Models are loaded in order and kept, so later models of the same category show the shared
    bank (`bank_shared_with`). The import of glean_hub.hub (safetensors) happens before the clock
    starts. The OS file cache is not dropped: repeated runs measure warm loads.
    """
    from . import hub  # noqa: F401  (imports outside the timed region)

    device = torch.device(device)
    rows, models = [], []
    for name, source in sources:
        _sync(device)
        t0 = time.perf_counter()
        model = GLEAN.from_pretrained(source, device=device)
        _sync(device)
        t_load = time.perf_counter() - t0
        c = model.config
        x = torch.zeros(1, c.bank.img_channels, c.in_size, c.in_size, device=device)
        with torch.no_grad():
            model(x)
        _sync(device)
        t_first = time.perf_counter() - t0
        shared = [n for (n, _), m in zip(sources, models) if m.generator is model.generator]
        rows.append({"model": name, "source": str(source), "load_s": t_load, "first_output_s": t_first,
                     "bank_shared_with": shared, "params_m": sum(p.numel() for p in model.parameters()) / 1e6})
        models.append(model)
    return rows, models


def profile_top(fn, x: torch.Tensor, device: str | torch.device, top: int = 12) -> list[dict]:
    """torch.profiler over one call (after one warm-up call): the ops/kernels with the most self time."""
    from torch.profiler import ProfilerActivity, profile

    device = torch.device(device)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with torch.no_grad():
        fn(x)
        _sync(device)
        with profile(activities=activities) as prof:
            fn(x)
            _sync(device)
    events = prof.key_averages()
    attr = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    total = sum(getattr(e, attr) for e in events) or 1.0
    ranked = sorted(events, key=lambda e: -getattr(e, attr))[:top]
    return [{"name": e.key, "self_ms": getattr(e, attr) / 1e3, "percent": 100 * getattr(e, attr) / total, "calls": e.count}
            for e in ranked]


# ---------------------------------------------------------------------------------------------
# Models to benchmark, environment, output
# ---------------------------------------------------------------------------------------------


def random_model(config: GLEANConfig, device: str | torch.device, seed: int = 0) -> GLEAN:
    """GLEAN with PyTorch's default initialisation, plus N(0, 0.1) noise strengths and bank biases
    (zero at initialisation) so that every path of the network contributes to the output."""
    torch.manual_seed(seed)
    with torch.device(device):
        model = GLEAN(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("noise_injector.weight") or name.endswith("activate.bias"):
                p.normal_(0, 0.1)
    return model


def resolve_sources(spec: str) -> list[tuple[str, str | GLEANConfig]]:
    """A --config value -> [(name, GLEANConfig for random weights | folder / repo id to load)]."""
    if spec in CONFIG_ALIASES:
        return [(spec, OFFICIAL_CONFIGS[CONFIG_ALIASES[spec]])]
    if spec in OFFICIAL_CONFIGS:
        return [(spec, OFFICIAL_CONFIGS[spec])]
    if spec == "bundled":
        from .registry import available

        models = [m for m in available() if m.local_dir is not None]
        if not models:
            raise GleanError("no bundled models are installed in this copy of glean-hub (glean_hub/weights has none); "
                             f"benchmark an official architecture instead (--config {', '.join(CONFIG_ALIASES)}) or a model folder")
        return [(f"{m.category}_{m.scale}x", str(m.local_dir)) for m in models]
    return [(Path(spec).name or spec, spec)]


def environment(device: str | torch.device) -> dict:
    device = torch.device(device)
    env = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": str(device),
        "threads": torch.get_num_threads(),
        "cpu": _cpu_name(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_count": os.cpu_count(),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1), cuda=torch.version.cuda,
                   cudnn=torch.backends.cudnn.version(), cudnn_benchmark=torch.backends.cudnn.benchmark,
                   cudnn_allow_tf32=torch.backends.cudnn.allow_tf32)
    return env


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _fmt(value, spec: str, missing: str = "-") -> str:
    if value is None:
        return missing
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    return format(value, spec)


def format_table(rows: list[Row], load: list[dict] | None = None, sat: list[dict] | None = None,
                 profile: list[dict] | None = None, env: dict | None = None) -> str:
    """The rows as a fixed-width text table (also valid Markdown), plus load, saturation and profile notes."""
    header = ["model", "setting", "batch", "img/s", "ms/img", "min ms", "spread", "peak MiB", "GFLOP/img", "TFLOP/s",
              "speedup", "max|diff|", "PSNR dB", "note"]
    body = [[r.model, r.setting, str(r.batch_size), _fmt(r.images_per_s, ".3g"), _fmt(r.ms_per_image, ".4g"),
             _fmt(r.ms_per_image_min, ".4g"), _fmt(r.spread_pct, ".0f") + ("%" if r.spread_pct is not None else ""),
             _fmt(r.peak_mem_mib, ".0f"), _fmt(r.gflop_per_image, ".1f"), _fmt(r.tflops, ".3g"),
             _fmt(r.speedup, ".2f") + ("x" if r.speedup is not None else ""), _fmt(r.max_abs_diff, ".2e"),
             _fmt(r.psnr_db, ".1f"), r.note] for r in rows]
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(header)]
    right = set(range(2, 13))

    def line(cells):
        return "| " + " | ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))) + " |"

    out = []
    if env:
        where = env.get("gpu") or env.get("cpu")
        out.append(f"{env['date']}  torch {env['torch']}  device {env['device']} ({where})  threads {env['threads']}")
        out.append("")
    out += [line(header), "|" + "|".join(("-" * (w + 1) + ":") if i in right else ("-" * (w + 2)) for i, w in enumerate(widths)) + "|"]
    out += [line(b) for b in body]
    if sat:
        out.append("")
    for s in sat or []:
        out.append(f"{s['model']} / {s['setting']}: best {s['best_images_per_s']:.3g} img/s at batch {s['best_batch_size']}; "
                   f"throughput within 5% of it from batch {s['saturation_batch_size']}")
    if load:
        out.append("\nload (from_pretrained call -> model ready -> first output at batch 1):")
        for r in load:
            shared = f", bank shared with {', '.join(r['bank_shared_with'])}" if r["bank_shared_with"] else ""
            out.append(f"  {r['model']}: loaded in {r['load_s']:.2f} s, first output after {r['first_output_s']:.2f} s{shared}")
    for prof in profile or []:
        out.append(f"\nprofile of {prof['model']} / {prof['setting']}, batch {prof['batch_size']} (one call, top self time):")
        for p in prof["top"]:
            out.append(f"  {p['percent']:5.1f}%  {p['self_ms']:9.2f} ms  {p['calls']:5d}x  {p['name']}")
    return "\n".join(out)


def to_json(rows: list[Row], *, load=None, sat=None, profile=None, env=None) -> str:
    def clean(v):
        return None if isinstance(v, float) and (math.isnan(v) or math.isinf(v)) else v

    data = {
        "environment": env or {},
        "rows": [{k: clean(v) for k, v in dataclasses.asdict(r).items()} for r in rows],
        "saturation": sat or [],
        "load": load or [],
        "profile": profile or [],
        "notes": {"psnr": "null means identical outputs (infinite PSNR)"},
    }
    return json.dumps(data, indent=2)


def run_benchmark(
    configs: list[str],  # --config values: official aliases, "bundled", folders or repo ids
    device: str | torch.device,
    dtypes: list[str],
    batch_sizes: list[int],
    *,
    compile: bool = False,
    compile_mode: str | None = None,
    channels_last: bool = True,
    upsample: str = "transpose",
    warmup: int = 1,
    repeats: int = 3,
    seed: int = 0,
    profile: bool = False,
    log=None,
) -> dict:
    """Everything `glean-hub bench` measures: {"environment", "rows", "saturation", "load", "profile"}.

    On CUDA this turns on `torch.backends.cudnn.benchmark` (for every setting, the reference included).
    """
    device = torch.device(device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    if device.type == "cpu" and "fp16" in dtypes:
        raise ConfigError("fp16 is not benchmarked on the CPU (no fast fp16 kernels there); use --dtype fp32 or bf16, or --device cuda")
    settings = settings_for(dtypes, compile=compile, channels_last=channels_last, upsample=upsample, compile_mode=compile_mode)
    sources = [s for spec in configs for s in resolve_sources(spec)]
    rows, load, prof = [], [], []
    for name, source in sources:
        if isinstance(source, GLEANConfig):
            model = random_model(source, device, seed)
        else:
            load_rows, (model,) = bench_load([(name, source)], device)
            load += load_rows
        rows += bench_model(model, name, settings, batch_sizes, device, warmup=warmup, repeats=repeats, seed=seed, log=log)
        if profile:
            fn, _ = build(model, settings[-1])
            c = model.config
            x = torch.rand(max(batch_sizes), c.bank.img_channels, c.in_size, c.in_size, device=device) * 2 - 1
            prof.append({"model": name, "setting": settings[-1].name, "batch_size": max(batch_sizes),
                         "top": profile_top(fn, x, device)})
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return {"environment": environment(device), "rows": rows, "saturation": saturation(rows), "load": load, "profile": prof}
