"""The benchmark harness runs and its output is well-formed (it measures nothing here: tiny models)."""

from __future__ import annotations

import json
import math

import pytest

from conftest import tiny_model
from glean_hub import bench
from glean_hub.bench import REFERENCE, Row, Setting, bench_model, format_table, saturation, settings_for, to_json
from glean_hub.cli import build_parser, main
from glean_hub.config import OFFICIAL_CONFIGS
from glean_hub.errors import ConfigError, GleanError


def test_rows_table_and_json():
    settings = settings_for(["fp32", "bf16"])
    assert settings[0] == REFERENCE and [s.name for s in settings] == ["reference fp32", "fast fp32", "fast bf16"]
    rows = bench_model(tiny_model(), "tiny", settings, [1, 2], "cpu", warmup=0, repeats=1)
    assert [(r.batch_size, r.setting) for r in rows] == [(b, s.name) for b in (1, 2) for s in settings]
    for r in rows:
        assert r.images_per_s > 0 and math.isclose(r.ms_per_image, 1e3 / r.images_per_s)
        assert r.peak_mem_mib > 0 and r.gflop_per_image > 0 and r.tflops > 0 and r.first_call_s > 0
        assert r.note == ""
    ref, fast32, fast16 = rows[:3]
    assert ref.speedup == 1.0 and ref.max_abs_diff == 0 and ref.psnr_db == math.inf
    assert fast32.max_abs_diff < 1e-5 and fast32.psnr_db > 100
    assert 0 < fast16.max_abs_diff < 0.05 and 40 < fast16.psnr_db < 100

    table = format_table(rows, sat=saturation(rows))
    for text in ("img/s", "TFLOP/s", "PSNR dB", "reference fp32", "fast bf16", "within 5%"):
        assert text in table
    data = json.loads(to_json(rows, sat=saturation(rows), env=bench.environment("cpu")))
    assert len(data["rows"]) == 6 and data["rows"][0]["psnr_db"] is None  # inf -> null
    assert set(data["rows"][1]) >= {"images_per_s", "ms_per_image", "peak_mem_mib", "tflops", "speedup", "psnr_db"}
    assert data["environment"]["torch"] and data["environment"]["threads"] >= 1


def test_saturation_is_the_smallest_batch_near_the_best():
    def row(batch, ips):
        return Row("m", "fast bf16", "cuda", "bf16", batch, ips, 1e3 / ips, 1.0, 1.0, ips / 1e3, 1.0, 0.0, 50.0, 0.1, 1)

    sat = saturation([row(1, 10.0), row(4, 30.0), row(8, 39.0), row(16, 40.0)])
    assert sat == [{"model": "m", "setting": "fast bf16", "best_images_per_s": 40.0, "best_batch_size": 16,
                    "saturation_batch_size": 8, "best_tflops": 0.04}]


def test_flops_of_official_configs():
    assert 300e9 < bench.count_flops(OFFICIAL_CONFIGS["glean_cat_16x"]) < 340e9
    assert 690e9 < bench.count_flops(OFFICIAL_CONFIGS["glean_ffhq_16x"]) < 720e9


def test_sources(monkeypatch, tmp_path):
    assert bench.resolve_sources("ffhq_16x") == [("ffhq_16x", OFFICIAL_CONFIGS["glean_ffhq_16x"])]
    assert bench.resolve_sources(str(tmp_path)) == [(tmp_path.name, str(tmp_path))]
    monkeypatch.setattr("glean_hub.registry.available", lambda: [])
    with pytest.raises(GleanError, match="no bundled models"):
        bench.resolve_sources("bundled")
    with pytest.raises(ConfigError, match="fp16"):
        bench.run_benchmark(["cat_8x"], "cpu", ["fp16"], [1])
    with pytest.raises(ConfigError, match="unknown dtype"):
        settings_for(["int8"])


def test_cli_bench_on_a_model_folder(tmp_path, capsys):
    folder = tmp_path / "tiny-model"
    tiny_model().save_pretrained(folder, embed_bank=True)
    assert main(["bench", "--config", str(folder), "--device", "cpu", "--threads", "1", "--batch-size", "1,2",
                 "--warmup", "0", "--repeats", "1", "--json", "-"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [(r["setting"], r["batch_size"]) for r in data["rows"]] == [
        ("reference fp32", 1), ("fast fp32", 1), ("reference fp32", 2), ("fast fp32", 2)]
    assert data["load"][0]["model"] == "tiny-model" and data["load"][0]["first_output_s"] >= data["load"][0]["load_s"] > 0
    assert data["environment"]["threads"] == 1

    json_path = tmp_path / "out.json"
    assert main(["bench", "--config", str(folder), "--device", "cpu", "--warmup", "0", "--repeats", "1", "--profile",
                 "--upsample", "subpixel", "--json", str(json_path)]) == 0
    out = capsys.readouterr().out
    assert "| fast fp32 subpixel" in out and "profile of tiny-model" in out and "aten::" in out
    assert json.loads(json_path.read_text())["profile"][0]["top"]


def test_cli_help_explains_the_columns(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["bench", "--help"])
    text = capsys.readouterr().out
    for column in ("img/s", "ms/img", "peak MiB", "GFLOP/img", "TFLOP/s", "speedup", "max|diff|", "PSNR dB"):
        assert column in text


def test_setting_names():
    assert Setting(True, "bf16", True, compile_mode="max-autotune").name == "fast bf16 +compile:max-autotune"
    assert Setting(True, "fp32", channels_last=False, upsample="subpixel").name == "fast fp32 nchw subpixel"
