"""`glean-hub upscale` into folders the user may not write (issue 14), run as a real non-root user.

Root may write anywhere (a chmod'ed folder stops nobody), so when the tests run as root the CLI runs in a
subprocess as the unprivileged user `nobody` (uid 65534) against folders owned by root; run as another user,
it runs as that user against folders chmod'ed read-only. Either way: one line on stderr, exit code 2, no
traceback, nothing written.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from conftest import tiny_model
from PIL import Image

NOBODY = 65534
AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
pytestmark = pytest.mark.skipif(not hasattr(os, "geteuid"), reason="POSIX users and permissions")


@pytest.fixture(scope="module")
def world():
    """A folder every user can read (pytest's tmp_path is private to root), with a model and an image in it."""
    root = Path(tempfile.mkdtemp(prefix="glean-unwritable-"))
    try:
        root.chmod(0o755)
        tiny_model(category="faces").save_pretrained(root / "faces-4x")
        Image.fromarray(np.full((8, 8, 3), 128, np.uint8)).save(root / "in.png")
        home = root / "home"
        home.mkdir()
        home.chmod(0o777)  # HOME and caches of the unprivileged run
        locked = root / "locked"
        locked.mkdir()
        if not AS_ROOT:
            locked.chmod(0o555)  # owned by root otherwise, mode 755: not writable by nobody
        for path in [root, *root.rglob("*")]:
            if path.is_file():
                path.chmod(0o644)
        yield root
    finally:
        if (root / "locked").exists():
            (root / "locked").chmod(0o755)
        shutil.rmtree(root, ignore_errors=True)


def as_user() -> dict:
    return {"user": NOBODY, "group": NOBODY, "extra_groups": []} if AS_ROOT else {}


def base_env(world: Path, python_path: str) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(world / "home"),
        "HF_HOME": str(world / "home" / "hf"),
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
    }
    if python_path:
        env["PYTHONPATH"] = python_path
    return env


@pytest.fixture(scope="module")
def python(world):
    """(interpreter, PYTHONPATH) with which the unprivileged user can import glean_hub, or skip.

    This interpreter first; if the unprivileged user cannot reach it (e.g. a pyenv Python under /root), the
    system Python of the same version with this environment's site-packages and checkout on PYTHONPATH.
    """
    import glean_hub

    checkout = str(Path(glean_hub.__file__).resolve().parents[1])
    site = [p for p in sys.path if p.endswith("site-packages")]
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    candidates = [(sys.executable, ""), (f"/usr/bin/python{version}", os.pathsep.join([checkout, *site]))]
    reasons = []
    for interpreter, python_path in candidates:
        probe = [interpreter, "-c", "import torch, glean_hub.cli"]
        try:
            done = subprocess.run(probe, check=False, cwd=world / "home", env=base_env(world, python_path), capture_output=True,
                                  text=True, timeout=180, **as_user())
        except (OSError, subprocess.SubprocessError) as e:
            reasons.append(f"{interpreter}: {e}")
            continue
        if done.returncode == 0:
            return interpreter, python_path
        reasons.append(f"{interpreter}: {(done.stderr.strip().splitlines() or ['?'])[-1]}")
    pytest.skip(f"uid {NOBODY if AS_ROOT else os.geteuid()} cannot run glean_hub: " + "; ".join(reasons))


def upscale_as_unprivileged(world: Path, python, output: Path) -> subprocess.CompletedProcess:
    interpreter, python_path = python
    command = [interpreter, "-m", "glean_hub.cli", "upscale", str(world / "in.png"), "-o", str(output),
               "--model", str(world / "faces-4x")]
    return subprocess.run(command, check=False, env=base_env(world, python_path), cwd=world / "home", capture_output=True,
                          text=True, timeout=300, **as_user())


@pytest.mark.parametrize("where", ["existing folder", "new folder inside it"])
def test_an_unwritable_output_folder_is_one_line(world, python, where):
    output = world / "locked" if where == "existing folder" else world / "locked" / "new"
    done = upscale_as_unprivileged(world, python, output)
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert str(output) in lines[0] and ("permission" in lines[0].lower()), lines[0]
    assert list((world / "locked").iterdir()) == []
    assert stat.S_IMODE((world / "locked").stat().st_mode) in (0o755, 0o555)


def test_the_same_user_can_write_where_it_may(world, python):
    """The control: the unprivileged run works into a folder it owns (so the failures above are permissions)."""
    output = world / "home" / "out"
    done = upscale_as_unprivileged(world, python, output)
    assert done.returncode == 0, done.stderr
    assert [p.suffix for p in output.iterdir()] == [".png"]
