"""Round trips through the real huggingface_hub client against the loopback HubServer (tests/hub_server.py)."""

from __future__ import annotations

import io
import json
import os
import re
import socket

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

import huggingface_hub
from huggingface_hub import HfApi, hf_hub_download, snapshot_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from hub_fixtures import DUMMY_TOKEN, NetworkAccessBlocked, NetworkGuard


pytestmark = pytest.mark.usefixtures("no_network")

REPO = "test-user/tiny-model"
HEX40 = re.compile(r"^[0-9a-f]{40}$")


def _write_version(folder, version: int) -> dict[str, bytes]:
    """A small config.json (regular file) and a ~16 KB model.safetensors (LFS); returns their bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"version": version, "scale": 8}))
    rng = np.random.default_rng(version)
    save_file({"weight": rng.standard_normal(4096).astype(np.float32)}, str(folder / "model.safetensors"),
              metadata={"format": "np"})
    return {name: (folder / name).read_bytes() for name in ("config.json", "model.safetensors")}


def _push_two_versions(tmp_path):
    api = HfApi()
    api.create_repo(REPO)
    v1_files = _write_version(tmp_path / "v1", 1)
    v1 = api.upload_folder(repo_id=REPO, folder_path=tmp_path / "v1", commit_message="v1")
    v2_files = _write_version(tmp_path / "v2", 2)
    v2 = api.upload_folder(repo_id=REPO, folder_path=tmp_path / "v2", commit_message="v2")
    return v1, v1_files, v2, v2_files


def _read(path) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def test_create_repo_exist_ok_and_repo_exists(hub_server):
    api = HfApi()
    url = api.create_repo(REPO)
    assert url.repo_id == REPO and url.repo_type == "model"
    assert str(url) == f"{hub_server.endpoint}/{REPO}"
    with pytest.raises(HfHubHTTPError) as excinfo:
        api.create_repo(REPO)
    assert excinfo.value.response.status_code == 409
    assert api.create_repo(REPO, exist_ok=True).repo_id == REPO
    # module-level functions are bound to a HfApi() created at import time: they must reach the server too
    assert huggingface_hub.create_repo("tiny-2", exist_ok=True).repo_id == "test-user/tiny-2"
    assert api.repo_exists(REPO)
    assert not api.repo_exists("test-user/nope")
    # a new repo has the Hub's initial commit with its .gitattributes
    assert api.list_repo_files(REPO) == [".gitattributes"]


def test_upload_versions_and_download_at_revisions(hub_server, tmp_path):
    v1, v1_files, v2, v2_files = _push_two_versions(tmp_path)
    assert HEX40.match(v1.oid) and HEX40.match(v2.oid) and v1.oid != v2.oid
    assert v1.commit_url == f"{hub_server.endpoint}/{REPO}/commit/{v1.oid}"
    assert v1.pr_url is None
    assert hub_server.head(REPO) == v2.oid

    # the safetensors file went through git-LFS (batch -> PUT on the "CDN" -> verify), the JSON inline
    assert hub_server.count("POST", f"/{REPO}.git/info/lfs/objects/batch") == 2
    assert hub_server.count("PUT", prefix="/lfs-upload/") == 2
    assert hub_server.count("POST", f"/{REPO}.git/info/lfs/objects/verify") == 2
    assert hub_server.count("POST", f"/api/models/{REPO}/commit/main") == 2
    assert not any("xet" in path for _, path in hub_server.requests)

    for name in ("config.json", "model.safetensors"):
        assert _read(hf_hub_download(REPO, name, revision=v1.oid)) == v1_files[name]
        assert _read(hf_hub_download(REPO, name, revision="main")) == v2_files[name]
        assert _read(hf_hub_download(REPO, name)) == v2_files[name]
    assert load_file(hf_hub_download(REPO, "model.safetensors", revision=v1.oid))["weight"].shape == (4096,)

    snapshot = snapshot_download(REPO, revision=v1.oid)
    assert sorted(os.listdir(snapshot)) == [".gitattributes", "config.json", "model.safetensors"]
    for name, content in v1_files.items():
        assert _read(os.path.join(snapshot, name)) == content
    assert os.path.basename(snapshot) == v1.oid


def test_model_info_list_files_refs_commits(hub_server, tmp_path):
    v1, v1_files, v2, v2_files = _push_two_versions(tmp_path)
    api = HfApi()

    info = api.model_info(REPO, revision=v1.oid, files_metadata=True)
    assert info.id == REPO and info.sha == v1.oid
    siblings = {s.rfilename: s for s in info.siblings}
    assert set(siblings) == {".gitattributes", "config.json", "model.safetensors"}
    assert siblings["config.json"].lfs is None
    assert siblings["config.json"].size == len(v1_files["config.json"])
    lfs = siblings["model.safetensors"].lfs
    assert lfs is not None and lfs.size == len(v1_files["model.safetensors"])
    assert info.safetensors is not None and info.safetensors.total == 4096
    assert api.model_info(REPO).sha == v2.oid
    assert api.model_info(REPO, revision="main").sha == v2.oid

    assert sorted(api.list_repo_files(REPO)) == [".gitattributes", "config.json", "model.safetensors"]
    assert sorted(huggingface_hub.list_repo_files(REPO, revision=v1.oid)) == sorted(siblings)

    refs = api.list_repo_refs(REPO)
    assert [(b.name, b.target_commit) for b in refs.branches] == [("main", v2.oid)]
    commits = api.list_repo_commits(REPO)
    assert [c.commit_id for c in commits[:2]] == [v2.oid, v1.oid]
    assert [c.title for c in commits] == ["v2", "v1", "initial commit"]


def test_missing_repo_file_and_revision_errors(hub_server, tmp_path):
    _push_two_versions(tmp_path)
    api = HfApi()
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("test-user/does-not-exist", "config.json")
    with pytest.raises(RepositoryNotFoundError):
        api.model_info("test-user/does-not-exist")
    with pytest.raises(RemoteEntryNotFoundError) as excinfo:
        hf_hub_download(REPO, "missing.bin")
    assert isinstance(excinfo.value, EntryNotFoundError)
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download(REPO, "config.json", revision="no-such-branch")
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download(REPO, "config.json", revision="0" * 40)
    with pytest.raises(RevisionNotFoundError):
        api.model_info(REPO, revision="no-such-branch")
    assert api.file_exists(REPO, "config.json")
    assert not api.file_exists(REPO, "missing.bin")
    assert not api.revision_exists(REPO, "no-such-branch")


def test_second_download_does_not_get_content_again(hub_server, tmp_path):
    _, _, _, v2_files = _push_two_versions(tmp_path)
    for name in ("config.json", "model.safetensors"):
        first = hf_hub_download(REPO, name)
        second = hf_hub_download(REPO, name)
        assert first == second and _read(second) == v2_files[name]
        assert hub_server.downloads_of(REPO, name) == 1
        assert hub_server.count("HEAD", f"/{REPO}/resolve/main/{name}") == 2
    # the regular file's bytes came from /resolve, the LFS file's from a 302 to the CDN listener
    assert hub_server.count("GET", f"/{REPO}/resolve/main/config.json") == 1
    assert hub_server.count("GET", f"/{REPO}/resolve/main/model.safetensors") == 0
    assert hub_server.count("GET", prefix="/cdn-lfs/") == 1
    # the CDN is another origin: huggingface_hub does not send it the token
    cdn_get = [r for r in hub_server.request_log if r.listener == "cdn" and r.method == "GET"]
    assert "authorization" not in cdn_get[0].headers
    resolve_get = [r for r in hub_server.request_log if r.method == "GET" and r.path.endswith("config.json")]
    assert resolve_get[0].headers["authorization"] == f"Bearer {DUMMY_TOKEN}"


def test_cached_file_after_server_stop_and_offline(hub_server, tmp_path, go_offline):
    v1, v1_files, v2, v2_files = _push_two_versions(tmp_path)
    paths = {name: hf_hub_download(REPO, name) for name in v2_files}
    pinned = hf_hub_download(REPO, "config.json", revision=v1.oid)
    hub_server.stop()
    served = len(hub_server.requests)

    # server gone (connection refused, pooled keep-alive connections cut): falls back to the cache for "main"
    assert hf_hub_download(REPO, "config.json") == paths["config.json"]
    assert len(hub_server.requests) == served

    go_offline()
    assert huggingface_hub.is_offline_mode()
    for name, content in v2_files.items():
        path = hf_hub_download(REPO, name)
        assert path == paths[name] and _read(path) == content
    assert _read(hf_hub_download(REPO, "config.json", revision=v1.oid)) == v1_files["config.json"] == _read(pinned)
    with pytest.raises(LocalEntryNotFoundError):
        hf_hub_download(REPO, "model.safetensors", revision=v1.oid)  # never downloaded
    assert snapshot_download(REPO, revision=v1.oid, allow_patterns=["config.json"]).endswith(v1.oid)


def test_offline_fixture_blocks_requests(hub_server, offline):
    with pytest.raises(LocalEntryNotFoundError):
        hf_hub_download(REPO, "config.json")
    assert hub_server.requests == []


def test_range_requests_and_resume(hub_server):
    data = bytes(range(256)) * 100  # 25.6 KB, binary => LFS
    hub_server.seed(REPO, {"blob.bin": data, "notes.txt": "hello world\n" * 10})
    from huggingface_hub.file_download import hf_hub_url, http_get
    from huggingface_hub.utils import get_session

    for name, content in (("blob.bin", data), ("notes.txt", b"hello world\n" * 10)):
        url = hf_hub_url(REPO, name)
        r = get_session().get(url, headers={"Range": "bytes=10-19"})
        assert r.status_code == 206 and r.content == content[10:20]
        assert r.headers["Content-Range"] == f"bytes 10-19/{len(content)}"
        buf = io.BytesIO(content[:7])
        buf.seek(7)
        http_get(url, buf, resume_size=7, expected_size=len(content))
        assert buf.getvalue() == content
    assert hub_server.file_bytes(REPO, "blob.bin") == data


def test_pull_request_delete_and_tree(hub_server, tmp_path):
    api = HfApi()
    v1, v1_files, v2, v2_files = _push_two_versions(tmp_path)
    (tmp_path / "pr" / "sub").mkdir(parents=True)
    (tmp_path / "pr" / "sub" / "extra.txt").write_text("extra")
    (tmp_path / "pr" / "README.md").write_text("---\nlicense: mit\nlibrary_name: glean-hub\n---\n# Tiny\n")
    pr = api.upload_folder(repo_id=REPO, folder_path=tmp_path / "pr", commit_message="pr", create_pr=True)
    assert pr.pr_revision == "refs/pr/1" and pr.pr_num == 1
    assert hub_server.head(REPO) == v2.oid  # main unchanged
    assert _read(hf_hub_download(REPO, "sub/extra.txt", revision=pr.pr_revision)) == b"extra"
    assert api.model_info(REPO, revision=pr.pr_revision).card_data["license"] == "mit"
    assert hub_server.count("POST", "/api/validate-yaml") >= 1  # upload_folder and create_commit both validate

    tree = {e.path: e for e in api.list_repo_tree(REPO, revision=pr.oid)}
    assert set(tree) == {".gitattributes", "README.md", "config.json", "model.safetensors", "sub"}
    assert type(tree["sub"]).__name__ == "RepoFolder"
    assert [e.path for e in api.list_repo_tree(REPO, "sub", revision=pr.oid)] == ["sub/extra.txt"]
    expanded = {e.path: e for e in api.list_repo_tree(REPO, revision=pr.oid, expand=True)}
    assert expanded["config.json"].last_commit.oid == v2.oid
    assert expanded["sub"].last_commit.oid == pr.oid
    infos = api.get_paths_info(REPO, ["config.json", "sub", "nope"], revision=pr.oid)
    assert sorted(i.path for i in infos) == ["config.json", "sub"]

    deleted = api.delete_file("config.json", repo_id=REPO)
    assert "config.json" not in api.list_repo_files(REPO)
    with pytest.raises(RemoteEntryNotFoundError):
        hf_hub_download(REPO, "config.json", revision=deleted.oid)
    assert _read(hf_hub_download(REPO, "config.json", revision=v1.oid)) == v1_files["config.json"]

    api.create_branch(REPO, branch="dev", revision=v1.oid)
    api.create_tag(REPO, tag="v1.0", revision=v1.oid)
    assert _read(hf_hub_download(REPO, "model.safetensors", revision="v1.0")) == v1_files["model.safetensors"]
    assert api.model_info(REPO, revision="dev").sha == v1.oid


def test_unchanged_upload_is_skipped_and_lfs_not_reuploaded(hub_server, tmp_path):
    api = HfApi()
    api.create_repo(REPO)
    _write_version(tmp_path / "v", 1)
    first = api.upload_folder(repo_id=REPO, folder_path=tmp_path / "v")
    second = api.upload_folder(repo_id=REPO, folder_path=tmp_path / "v")  # nothing changed: no new commit
    assert first.oid == second.oid
    assert hub_server.count("POST", f"/api/models/{REPO}/commit/main") == 1
    assert hub_server.count("PUT", prefix="/lfs-upload/") == 1


def test_no_network_guard_refuses_non_loopback(no_network):
    with pytest.raises(NetworkAccessBlocked):
        socket.create_connection(("example.com", 443), timeout=1)
    with pytest.raises(NetworkAccessBlocked):
        socket.getaddrinfo("huggingface.co", 443)
    assert len(no_network.attempts) == 2
    no_network.attempts.clear()  # expected attempts: do not fail this test at teardown
    assert NetworkGuard.is_loopback("127.0.0.1") and NetworkGuard.is_loopback("::1")
    assert NetworkGuard.is_loopback("localhost") and not NetworkGuard.is_loopback("10.0.0.1")
