"""Released OpenMMLab checkpoints by name and .pth URLs: download, sha256 check, strict conversion, cache, reload
offline. A loopback HTTP server stands in for download.openmmlab.com (GLEAN_HUB_OPENMMLAB_ENDPOINT) and serves
tiny official-layout checkpoints at the published URL paths; the registry entries' sha256 prefixes are patched
to the tiny files' (the real files' prefixes are in their names)."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch
from conftest import tiny_model
from hub_fixtures import set_offline
from official import save_official_checkpoint

from glean_hub import GLEAN, StyleGAN2Generator, registry
from glean_hub.cli import main
from glean_hub.convert import convert_glean
from glean_hub.discriminator import StyleGAN2Discriminator
from glean_hub.errors import CheckpointError, GleanError, ModelNotFoundError
from glean_hub.hub import DISCRIMINATOR_NAME, HubOptions, fetch, load_bank
from glean_hub.released import ENDPOINT_ENV, cache_root

REPO = Path(__file__).resolve().parents[1]
CATS_8X = "openmmlab/glean-cats-8x"
CHURCH = "openmmlab/stylegan2-church-256"


class FakeHost(ThreadingHTTPServer):
    """Serves `files` {path: bytes}; `modes` {path: "404" | "drop" (half the body, then close)}; `gate`
    (an Event) holds every body until set. `log` lists the GET paths."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files: dict[str, bytes] = {}
        self.modes: dict[str, str] = {}
        self.gate: threading.Event | None = None
        self.log: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        host: FakeHost = self.server
        host.log.append(self.path)
        body, mode = host.files.get(self.path), host.modes.get(self.path)
        if body is None or mode == "404":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if host.gate is not None:
            host.gate.wait(timeout=30)
        if mode == "drop":
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


def _bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def tiny_glean_pth(model: GLEAN) -> bytes:
    state = {"generator." + k: v for k, v in model.state_dict().items()}
    state["discriminator.final.weight"] = torch.zeros(2)
    buf = io.BytesIO()
    save_official_checkpoint(state, buf)
    return buf.getvalue()


def tiny_bank_pth() -> tuple[bytes, StyleGAN2Generator]:
    bank = tiny_model(seed=1, in_size=4, out_size=32).generator
    state = {"generator_ema." + k: v for k, v in bank.state_dict().items()}
    state |= {"generator." + k: torch.zeros_like(v) for k, v in bank.state_dict().items()}
    state |= {"discriminator." + k: v for k, v in StyleGAN2Discriminator(bank.config).state_dict().items()}
    return _bytes({"meta": {}, "state_dict": state}), bank


def _publish(monkeypatch, host: FakeHost, name: str, data: bytes, sha256: str | None = None) -> registry.ReleasedEntry:
    """Serve `data` at the entry's published path and make the registry expect its sha256 prefix."""
    entry = registry.released_entry(name)
    patched = dataclasses.replace(entry, sha256=sha256 or hashlib.sha256(data).hexdigest()[:8])
    monkeypatch.setattr(registry, "RELEASED", tuple(patched if r.name == name else r for r in registry.RELEASED))
    host.files[entry.path] = data
    return patched


@pytest.fixture
def host(monkeypatch, tmp_path):
    from huggingface_hub import constants

    server = FakeHost()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv(ENDPOINT_ENV, server.url)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr(constants, "HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    set_offline(monkeypatch, False)
    yield server
    if server.gate is not None:
        server.gate.set()
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def cats():
    model = tiny_model(seed=3, in_size=4, out_size=32)  # 8x, like the released cats 8x (32 -> 256)
    return model, tiny_glean_pth(model)


def _cache_leftovers() -> list[str]:
    root = cache_root()
    return sorted(p.name for p in root.iterdir() if not p.name.endswith(".lock")) if root.exists() else []


def test_a_released_name_downloads_converts_once_and_reloads_offline(host, cats, monkeypatch, tmp_path):
    model, data = cats
    entry = _publish(monkeypatch, host, CATS_8X, data)
    loaded = GLEAN.from_pretrained(CATS_8X)
    assert host.log == [entry.path]
    folder = cache_root() / _cache_leftovers()[0]
    assert _cache_leftovers() == [folder.name] and folder.parent == tmp_path / "hf" / "glean-hub" / "converted"
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors", "source.json"]
    card = (folder / "README.md").read_text()
    assert "23.98" in card and entry.path in card and hashlib.sha256(data).hexdigest() in card
    assert loaded.config.category == "cats" and loaded.config.scale == 8

    by_hand = tmp_path / "by-hand.pth"
    by_hand.write_bytes(data)
    convert_glean(by_hand, tmp_path / "by-hand", category="cats")
    reference = GLEAN.from_pretrained(str(tmp_path / "by-hand"))
    lr = torch.rand(2, 3, 4, 4) * 2 - 1
    with torch.no_grad():
        assert torch.equal(loaded(lr), reference(lr)) and torch.equal(loaded(lr), model(lr))

    host.files.clear()  # the host is gone and downloads are off: the cache answers
    set_offline(monkeypatch, True)
    again = GLEAN.from_pretrained(CATS_8X)
    with torch.no_grad():
        assert torch.equal(again(lr), reference(lr))
    assert host.log == [entry.path]
    assert registry.lookup("cats", 8, 256).local_dir == folder


def test_resolution_picks_the_released_model_of_a_category():
    assert registry.lookup("cats", 8, 256).name == CATS_8X
    assert registry.lookup("cats", 16, 256).name == "openmmlab/glean-cats-16x"
    assert registry.lookup("faces", 8, 1024).name == "openmmlab/glean-faces-8x-realworld"
    assert registry.lookup("faces", 16, 1024).name == "openmmlab/glean-faces-16x"
    assert registry.lookup("cats", 8, 64).repo_id == "glean-hub/glean-cats-8x-64"  # the bundled one
    with pytest.raises(ModelNotFoundError, match="resolution=256 scale=8"):
        registry.lookup("cats", 4, 256)


def test_offline_without_cache_names_the_url_and_the_manual_route(host, monkeypatch):
    set_offline(monkeypatch, True)
    with pytest.raises(ModelNotFoundError) as e:
        GLEAN.from_pretrained(CATS_8X)
    msg = str(e.value)
    assert host.url + registry.released_entry(CATS_8X).path in msg and "glean-hub convert FILE DIR" in msg
    assert "\n" not in msg and host.log == []


def test_a_wrong_hash_names_both_prefixes_and_caches_nothing(host, cats, monkeypatch):
    _publish(monkeypatch, host, CATS_8X, cats[1], sha256="00000000")
    actual = hashlib.sha256(cats[1]).hexdigest()[:8]
    with pytest.raises(CheckpointError, match=f"sha256 starts with {actual}, expected 00000000"):
        GLEAN.from_pretrained(CATS_8X)
    assert _cache_leftovers() == []


def test_a_truncated_file_fails_the_hash_check(host, cats, monkeypatch):
    entry = _publish(monkeypatch, host, CATS_8X, cats[1])
    host.files[entry.path] = cats[1][: len(cats[1]) // 2]  # complete response, half a file
    with pytest.raises(CheckpointError, match=f"expected {entry.sha256}"):
        GLEAN.from_pretrained(CATS_8X)
    assert _cache_leftovers() == []


def test_an_interrupted_transfer_caches_nothing_and_the_next_call_starts_clean(host, cats, monkeypatch):
    entry = _publish(monkeypatch, host, CATS_8X, cats[1])
    host.modes[entry.path] = "drop"
    with pytest.raises(GleanError, match="interrupted after .* of .* bytes") as e:
        GLEAN.from_pretrained(CATS_8X)
    assert "\n" not in str(e.value) and _cache_leftovers() == []
    del host.modes[entry.path]
    GLEAN.from_pretrained(CATS_8X)
    assert len(host.log) == 2 and len(_cache_leftovers()) == 1


def test_404_is_one_clear_line(host, monkeypatch, cats):
    entry = _publish(monkeypatch, host, CATS_8X, cats[1])
    host.modes[entry.path] = "404"
    with pytest.raises(ModelNotFoundError, match="HTTP 404"):
        GLEAN.from_pretrained(CATS_8X)
    assert _cache_leftovers() == []


def test_a_checkpoint_that_does_not_convert_caches_nothing(host, monkeypatch):
    _publish(monkeypatch, host, CATS_8X, _bytes({"meta": {}, "state_dict": {"generator.nonsense": torch.zeros(1)}}))
    with pytest.raises(CheckpointError):
        GLEAN.from_pretrained(CATS_8X)
    assert _cache_leftovers() == []


def test_any_pth_url_loads_and_its_name_suffix_is_checked(host, cats, tmp_path):
    model, data = cats
    sha = hashlib.sha256(data).hexdigest()[:8]
    host.files[f"/mirror/my_glean_x8-{sha}.pth"] = data
    host.files["/mirror/bad-0badc0de.pth"] = data
    loaded = GLEAN.from_pretrained(f"{host.url}/mirror/my_glean_x8-{sha}.pth")
    lr = torch.rand(1, 3, 4, 4) * 2 - 1
    with torch.no_grad():
        assert (loaded(lr) - model(lr)).abs().max() < 1e-5, (loaded(lr) - model(lr)).abs().max()
    with pytest.raises(CheckpointError, match=f"sha256 starts with {sha}, expected 0badc0de"):
        GLEAN.from_pretrained(f"{host.url}/mirror/bad-0badc0de.pth")
    # the CLI converts a URL by hand (downloaded into a temporary file, not cached)
    assert main(["convert", f"{host.url}/mirror/my_glean_x8-{sha}.pth", str(tmp_path / "out"), "--category", "cats"]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["README.md", "config.json", "model.safetensors"]


def test_banks_by_name_for_loading_and_training(host, monkeypatch):
    data, bank = tiny_bank_pth()
    _publish(monkeypatch, host, CHURCH, data)
    loaded = StyleGAN2Generator.from_pretrained(CHURCH)
    w = torch.randn(2, bank.config.num_styles, bank.config.style_channels)
    with torch.no_grad():
        assert torch.equal(loaded.synthesis(w), bank.synthesis(w))
    # what `glean-hub train --bank openmmlab/stylegan2-church-256` does: the bank, its sha256, its discriminator
    again = load_bank(CHURCH, expected_sha256=loaded.sha256, share=False)
    assert again.config.category == "towers"
    disc = fetch(CHURCH, DISCRIMINATOR_NAME, HubOptions(), required=False)
    assert disc is not None and disc.name == DISCRIMINATOR_NAME
    assert len(host.log) == 1


def test_the_car_bank_is_refused_with_a_reason_and_no_download(host):
    with pytest.raises(ModelNotFoundError, match="not square.*glean-hub convert-bank"):
        StyleGAN2Generator.from_pretrained("openmmlab/stylegan2-car-512")
    with pytest.raises(ModelNotFoundError, match="released names: openmmlab/glean-cats-8x"):
        GLEAN.from_pretrained("openmmlab/glean-dogs-8x")
    assert host.log == []


def test_models_lists_released_names_with_their_cache_state(host, cats, monkeypatch, capsys):
    _publish(monkeypatch, host, CATS_8X, cats[1])
    GLEAN.from_pretrained(CATS_8X)
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if CATS_8X + " " in x)
    assert "cached (" in line and "23.98" in line
    assert "download ~357 MB" in next(x for x in out.splitlines() if CHURCH in x)


SECOND = """
import sys, time
sys.path.insert(0, {tests!r})
from glean_hub import GLEAN, registry
import dataclasses
registry.RELEASED = tuple(dataclasses.replace(r, sha256={sha!r}) if r.name == {name!r} else r for r in registry.RELEASED)
GLEAN.from_pretrained({name!r})
print("loaded")
"""


def test_a_second_process_waits_for_the_first_instead_of_converting_again(host, cats, monkeypatch):
    entry = _publish(monkeypatch, host, CATS_8X, cats[1])
    host.gate = threading.Event()  # the first download stalls until the second process is waiting
    first: dict = {}
    thread = threading.Thread(target=lambda: first.setdefault("model", GLEAN.from_pretrained(CATS_8X)))
    thread.start()
    deadline = time.monotonic() + 10
    while not host.log and time.monotonic() < deadline:
        time.sleep(0.02)
    assert host.log == [entry.path]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    code = SECOND.format(tests=str(REPO / "tests"), sha=entry.sha256, name=CATS_8X)
    second = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen: list[str] = []
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline and second.poll() is None and not _waiting(second, seen):
        time.sleep(0.1)
    host.gate.set()
    thread.join(30)
    out, err = second.communicate(timeout=60)
    assert second.returncode == 0, err
    assert "loaded" in out and "waiting for another process" in "".join(seen) + err
    assert host.log == [entry.path] and "model" in first  # one download, one conversion


def _waiting(proc: subprocess.Popen, seen: list[str]) -> bool:
    """Whether the child has reached the lock (it prints a line to stderr when it starts waiting)."""
    import select

    if select.select([proc.stderr], [], [], 0)[0]:
        seen.append(proc.stderr.readline())
    return any("waiting" in line for line in seen)


def test_a_category_and_a_resolution_load_the_released_model(host, cats, monkeypatch):
    model, data = cats
    entry = _publish(monkeypatch, host, CATS_8X, data)
    loaded = GLEAN.from_pretrained("cats", scale=8, resolution=256)
    assert host.log == [entry.path] and loaded.config.category == "cats"
    lr = torch.rand(2, 3, 4, 4) * 2 - 1
    with torch.no_grad():
        assert torch.equal(loaded(lr), model(lr))


def test_a_full_disk_during_conversion_caches_nothing(host, cats, monkeypatch):
    import errno

    import glean_hub.convert

    _publish(monkeypatch, host, CATS_8X, cats[1])

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(glean_hub.convert, "write_glean_folder", full)
    with pytest.raises(GleanError, match="No space left on device.*nothing was cached"):
        GLEAN.from_pretrained(CATS_8X)
    assert _cache_leftovers() == []


def test_a_model_trained_on_a_released_bank_finds_it_by_name(host, monkeypatch, tmp_path):
    """What `glean-hub train --bank openmmlab/stylegan2-church-256` writes: bank_id = the name, bank_sha256."""
    data, _ = tiny_bank_pth()
    _publish(monkeypatch, host, CHURCH, data)
    released_bank = StyleGAN2Generator.from_pretrained(CHURCH)
    model = tiny_model(seed=4, in_size=4, out_size=32)
    model.generator.load_state_dict(released_bank.state_dict())
    model.config = model.config.replace(bank_id=CHURCH, bank_sha256=released_bank.sha256, bank=released_bank.config)
    model.save_pretrained(tmp_path / "trained")
    set_offline(monkeypatch, True)
    loaded = GLEAN.from_pretrained(str(tmp_path / "trained"))
    lr = torch.rand(2, 3, 4, 4) * 2 - 1
    with torch.no_grad():
        assert torch.equal(loaded(lr), model(lr))
    assert len(host.log) == 1
