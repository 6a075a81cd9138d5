"""Connections dropped mid-transfer (issue 14), against the loopback Hub's fault injection
(`HubServer.drop_connection`, tests/hub_server.py): an interrupted push leaves the previous revision as it
was and loadable, an interrupted download leaves nothing half-cached, and the next try works."""

from __future__ import annotations

import time
import types
from pathlib import Path

import pytest
import torch
from conftest import tiny_model
from huggingface_hub import constants, try_to_load_from_cache

from glean_hub import GLEAN
from glean_hub.errors import GleanError, ModelNotFoundError

pytestmark = pytest.mark.usefixtures("no_network")
LR = torch.linspace(-1, 1, 2 * 3 * 8 * 8).reshape(2, 3, 8, 8)  # as in test_hub.py
REPO = "glean-hub/cut-faces"


def out(model: GLEAN) -> torch.Tensor:
    with torch.no_grad():
        return model(LR)


@pytest.fixture
def no_backoff(monkeypatch):
    """huggingface_hub waits 1 s before resuming a download and backs off 1-8 s between upload retries; the
    retries still happen (that is what is tested), only the waiting is skipped."""
    from huggingface_hub import file_download
    from huggingface_hub.utils import _http

    fast_time = types.SimpleNamespace(**{n: getattr(time, n) for n in dir(time) if not n.startswith("_")})
    fast_time.sleep = lambda seconds: None
    monkeypatch.setattr(_http, "time", fast_time)
    monkeypatch.setattr(file_download, "time", fast_time)


def one_line(error: BaseException) -> str:
    message = str(error)
    assert "\n" not in message and "Traceback" not in message, message
    return message


def cache_files() -> list[Path]:
    return sorted(p for p in Path(constants.HF_HUB_CACHE).rglob("*") if p.is_file() or p.is_symlink())


# --- uploads -------------------------------------------------------------------------------------------


def test_a_push_cut_mid_upload_leaves_the_previous_revision_loadable(hub_server, no_backoff):
    v1, v2 = tiny_model(seed=1, category="faces"), tiny_model(seed=2, category="faces")
    first = v1.push_to_hub(REPO)
    # Every upload of the weights loses its connection after 1000 bytes (of ~0.8 MB), retries included.
    fault = hub_server.drop_connection("PUT", "/lfs-upload/", during="request", after_bytes=1000, times=None)
    with pytest.raises(GleanError) as failed:
        v2.push_to_hub(REPO)
    assert REPO in one_line(failed.value)
    assert fault.hits > 1  # huggingface_hub retried before giving up
    assert hub_server.head(REPO) == first.oid  # no commit was made
    assert torch.equal(out(GLEAN.from_pretrained(REPO)), out(v1))

    hub_server.clear_faults()  # the network is back: the same push goes through
    second = v2.push_to_hub(REPO)
    assert hub_server.head(REPO) == second.oid != first.oid
    assert torch.equal(out(GLEAN.from_pretrained(REPO)), out(v2))
    assert torch.equal(out(GLEAN.from_pretrained(REPO, revision=first.oid)), out(v1))


def test_a_push_cut_once_is_retried_and_complete(hub_server, no_backoff):
    v1, v2 = tiny_model(seed=1, category="faces"), tiny_model(seed=2, category="faces")
    v1.push_to_hub(REPO)
    fault = hub_server.drop_connection("PUT", "/lfs-upload/", during="request", after_bytes=1000, times=1)
    second = v2.push_to_hub(REPO)
    assert fault.hits == 1 and hub_server.head(REPO) == second.oid
    assert torch.equal(out(GLEAN.from_pretrained(REPO)), out(v2))


def test_a_push_cut_while_sending_the_commit_changes_nothing(hub_server, no_backoff):
    v1, v2 = tiny_model(seed=1, category="faces"), tiny_model(seed=2, category="faces")
    first = v1.push_to_hub(REPO)
    fault = hub_server.drop_connection("POST", f"/api/models/{REPO}/commit/", during="request", after_bytes=50,
                                       times=None)
    with pytest.raises(GleanError) as failed:
        v2.push_to_hub(REPO)
    one_line(failed.value)
    assert fault.hits >= 1
    assert hub_server.head(REPO) == first.oid
    assert torch.equal(out(GLEAN.from_pretrained(REPO)), out(v1))


# --- downloads -----------------------------------------------------------------------------------------


def test_a_download_cut_mid_transfer_caches_nothing(hub_server, no_backoff, go_offline):
    model = tiny_model(seed=3, category="faces")
    model.push_to_hub(REPO)
    # Every download of the weights (from the CDN listener) stops after 4096 bytes, resumes included.
    fault = hub_server.drop_connection("GET", "/cdn-lfs/", after_bytes=4096, times=None)
    with pytest.raises(GleanError) as failed:
        GLEAN.from_pretrained(REPO)
    assert REPO in one_line(failed.value) and "model.safetensors" in str(failed.value)
    assert fault.hits > 1  # huggingface_hub tried to resume before giving up

    assert not isinstance(try_to_load_from_cache(REPO, "model.safetensors"), str)  # not cached
    leftovers = [p.name for p in cache_files() if p.name.endswith(".incomplete")]
    assert leftovers == []
    go_offline()  # offline, the model is simply not in the cache (not a broken file)
    with pytest.raises(ModelNotFoundError, match="not in the local Hugging Face cache"):
        GLEAN.from_pretrained(REPO)

    go_offline(False)
    hub_server.clear_faults()
    assert torch.equal(out(GLEAN.from_pretrained(REPO)), out(model))
    go_offline()
    assert torch.equal(out(GLEAN.from_pretrained(REPO)), out(model))


def test_a_download_cut_once_resumes_and_is_complete(hub_server, no_backoff):
    model = tiny_model(seed=4, category="faces")
    model.push_to_hub(REPO)
    fault = hub_server.drop_connection("GET", "/cdn-lfs/", after_bytes=4096, times=1)
    assert torch.equal(out(GLEAN.from_pretrained(REPO)), out(model))
    assert fault.hits == 1
    # a second request fetched the rest (huggingface_hub resumes from the last chunk it wrote; its chunks are
    # 10 MB, so with this small file the resume asks for everything again)
    assert hub_server.count("GET", prefix="/cdn-lfs/") == 2


def test_the_fault_hook_validates_its_arguments(hub_server):
    with pytest.raises(ValueError, match="during"):
        hub_server.drop_connection("GET", "/", during="sometime")
