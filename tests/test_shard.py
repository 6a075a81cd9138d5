"""Sharded upscaling (glean_hub/shard.py): every file in exactly one shard, resume by skipping finished outputs,
and a real two-process run under `accelerate launch` on the CPU (tiny model folder) with one summary."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import tiny_model
from PIL import Image

from glean_hub.batch import Job, upscale_files
from glean_hub.errors import ConfigError, InputImageError, write_line
from glean_hub.shard import ProcessGroup, summary

ROOT = Path(__file__).resolve().parents[1]


def jobs(tmp_path: Path, n: int, save_lr: bool = False) -> list[Job]:
    return [Job(tmp_path / f"in{i}.png", tmp_path / f"in{i}_glean4x.png", tmp_path / f"in{i}_lr.png" if save_lr else None)
            for i in range(n)]


@pytest.mark.parametrize("size", [1, 2, 3, 5])
@pytest.mark.parametrize("n", [0, 1, 7, 10])
def test_shards_are_disjoint_and_cover_every_job(tmp_path, size, n):
    all_jobs = jobs(tmp_path, n)
    shards = [ProcessGroup(rank, size).take(all_jobs, overwrite=False, skip_existing=False)[0] for rank in range(size)]
    taken = [j.source for s in shards for j in s]
    assert sorted(taken) == sorted(j.source for j in all_jobs) and len(taken) == len(set(taken)) == n
    assert max(map(len, shards)) - min(map(len, shards)) <= 1  # balanced


def test_existing_outputs_skip_resume_or_error(tmp_path):
    all_jobs = jobs(tmp_path, 4, save_lr=True)
    all_jobs[0].output.write_bytes(b"x")
    all_jobs[0].lr_output.write_bytes(b"x")  # finished
    all_jobs[1].output.write_bytes(b"x")  # interrupted between the output and its LR
    group = ProcessGroup()
    todo, skipped, problems = group.take(all_jobs, overwrite=False, skip_existing=True)
    assert [j.source.name for j in todo] == ["in1.png", "in2.png", "in3.png"] and skipped == 1 and problems == []
    todo, skipped, problems = group.take(all_jobs, overwrite=False, skip_existing=False)
    assert len(todo) == 2 and skipped == 0 and len(problems) == 2
    assert "--overwrite" in problems[0][1] and "--skip-existing" in problems[0][1]
    assert group.take(all_jobs, overwrite=True, skip_existing=False) == (all_jobs, 0, [])


def test_launcher_variables(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    assert ProcessGroup.from_env() == ProcessGroup(0, 1, 0, 1) and not ProcessGroup.from_env().distributed
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    g = ProcessGroup.from_env()
    assert (g.rank, g.size, g.local_rank, g.local_size, g.distributed, g.main) == (3, 4, 1, 2, True, False)
    assert g.device("cpu") == "cpu"
    monkeypatch.setenv("RANK", "4")
    with pytest.raises(ConfigError, match="rank 4, world size 4"):
        ProcessGroup.from_env()
    monkeypatch.setenv("RANK", "x")
    with pytest.raises(ConfigError, match="RANK"):
        ProcessGroup.from_env()


def test_single_process_summary_is_the_usual_line(tmp_path):
    line = summary({"done": 3, "failed": [("a", "bad")], "skipped": 0, "seconds": 1.5, "processes": 1}, tmp_path)
    assert line == f"upscaled 3 of 4 images into {tmp_path}/ in 1.5 s, 0.50 s/image (1 failed)"
    line = summary({"done": 4, "failed": [], "skipped": 6, "seconds": 2.0, "processes": 2}, tmp_path)
    assert line == f"upscaled 4 of 4 images into {tmp_path}/ by 2 processes in 2.0 s, 2.00 images/s in all; skipped 6 already done"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    accelerate = shutil.which("accelerate", path=str(Path(sys.executable).parent)) or shutil.which("accelerate")
    if accelerate is None:
        pytest.skip("accelerate is not installed (train extra)")
    # --multi_gpu starts the processes through torch.distributed.run, which also works without GPUs
    cmd = [accelerate, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
           "--dynamo_backend", "no", "--main_process_port", str(_free_port()), "-m", "glean_hub.cli", "upscale", *args]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CUDA_VISIBLE_DEVICES": "", "HF_HUB_OFFLINE": "1"}
    return subprocess.run(cmd, check=False, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_two_processes_under_accelerate_launch(tmp_path):
    tiny_model(category="faces").save_pretrained(tmp_path / "model")  # 8 -> 32
    images = tmp_path / "in"
    images.mkdir()
    rng = np.random.default_rng(0)
    names = [f"img{i}.png" for i in range(7)]
    for name in names:
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(images / name)
    out = tmp_path / "out"
    args = [str(images), "-o", str(out), "--model", str(tmp_path / "model"), "--dtype", "fp32", "--batch-size", "2"]

    run = _launch(args, tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    lines = [line for line in run.stdout.splitlines() if line.startswith("upscaled ")]
    assert len(lines) == 1 and lines[0].startswith(f"upscaled 7 of 7 images into {out}/ by 2 processes"), run.stdout
    assert sorted(p.name for p in out.iterdir()) == sorted(n.replace(".png", "_glean4x.png") for n in names)

    # an interrupted run: three outputs are missing; --skip-existing does exactly those, once each
    for name in names[:3]:
        (out / name.replace(".png", "_glean4x.png")).unlink()
    run = _launch([*args, "--skip-existing"], tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    lines = [line for line in run.stdout.splitlines() if line.startswith("upscaled ")]
    assert len(lines) == 1 and lines[0].startswith("upscaled 3 of 3 images") and "skipped 4 already done" in lines[0], run.stdout
    assert len(list(out.iterdir())) == 7

    # without --skip-existing every finished file is one error line, reported by the process that owns it
    run = _launch(args, tmp_path)
    assert run.returncode == 1
    errors = [line for line in run.stderr.splitlines() if re.search(r"img\d\.png: error: .*already exists", line)]
    assert sorted(e.split(":")[0] for e in errors) == sorted(str(images / n) for n in names), run.stderr


class _Writes:
    """A text stream that records each write call."""

    def __init__(self):
        self.writes: list[str] = []

    def write(self, s: str) -> int:
        self.writes.append(s)
        return len(s)

    def flush(self) -> None:
        pass


@pytest.mark.parametrize("progress", [False, True])
def test_each_message_line_is_one_write(tmp_path, progress):
    # processes under a launcher share one stderr: a line written in two calls (text, then newline, as print() and
    # tqdm.write() do when Python runs unbuffered) can be split by another process's line
    class Unreadable:
        def preprocess(self, source, **kwargs):
            raise InputImageError(f"{source}: cannot read this image")

    stream = _Writes()
    jobs = [Job(tmp_path / f"img{i}.png", tmp_path / f"img{i}_out.png", None) for i in range(2)]
    report = upscale_files(Unreadable(), jobs, progress=progress, stream=stream)
    assert len(report.failed) == 2
    lines = [w for w in stream.writes if "error" in w]
    assert lines == [f"{tmp_path / f'img{i}.png'}: error: cannot read this image\n" for i in range(2)], stream.writes
    write_line("glean-hub upscale: error: x", stream)
    assert stream.writes[-1] == "glean-hub upscale: error: x\n"
