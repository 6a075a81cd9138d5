"""A loopback fake of the Hugging Face Hub HTTP API, for tests that must not leave 127.0.0.1.

`HubServer` implements the part of the Hub API that `huggingface_hub` (checked against 2.4.0, `httpx2`
client) really calls for repo creation, uploads (preupload -> git-LFS batch -> PUT -> verify -> NDJSON
commit), downloads (`HEAD`/`GET .../resolve/...`, `snapshot_download`'s `/tree` listing), repo info,
refs, commits, branches, tags and pull-request commits. Everything is kept in memory; it is pure stdlib
(`http.server.ThreadingHTTPServer` on background threads). PyYAML, when importable, is only used to
fill `cardData`/`tags` from a README's front matter, like the real Hub.

Two listeners are started, both on 127.0.0.1 with free ports:

* ``server.endpoint``  the "Hub" (API, ``/resolve``, git-LFS batch). Point ``HF_ENDPOINT`` at it.
* ``server.cdn_endpoint``  a stand-in for the CDN / S3 that LFS content is redirected to and uploaded to.
  It is a different origin (another port) on purpose: huggingface_hub only follows ``/resolve``
  redirects that stay on a Hub origin, and otherwise reads the file metadata from the 302 itself and
  drops the ``authorization`` header for the download, exactly as it does with the real CDN.

Every request is recorded in ``server.requests`` as a ``(method, path)`` tuple (path percent-decoded,
without the query string; CDN requests too, their paths start with ``/cdn-lfs/`` or ``/lfs-upload/``),
and with more detail in ``server.request_log``. ``server.content_downloads`` lists ``(repo_id, filename)``
for each response that actually carried a file's bytes (``GET`` on ``/resolve`` for a regular file or on
the CDN for an LFS file), which is the easiest way to assert "downloaded only once".

Requests the fake does not implement get a 501 with an explanatory JSON body and are recorded in
``server.unhandled``; exceptions inside the server are answered with 501 too (not 500, which
huggingface_hub retries with exponential back-off, making a broken test slow) and recorded in
``server.errors``. ``server.check()`` raises if either list is non-empty.

Fault injection: ``server.drop_connection(method, path_prefix, during=..., after_bytes=N, times=K)`` makes the
next K matching requests lose their connection partway: ``during="request"`` reads only N bytes of the request
body, then closes the socket without answering and without handling the request (an upload cut mid-transfer);
``during="response"`` handles the request, sends the status and headers (with the full ``Content-Length``) and
only N bytes of the body, then closes (a download cut mid-transfer). It returns the `Fault`, whose ``hits``
counts the connections it dropped; ``server.clear_faults()`` removes them all.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import http.server
import json
import re
import socket
import struct
import threading
import traceback
from datetime import datetime, timezone
from typing import Any, Iterable
from urllib.parse import parse_qs, quote, unquote, urlsplit

__all__ = ["HubServer", "DEFAULT_GITATTRIBUTES", "Fault", "RequestRecord", "git_blob_oid", "lfs_pointer"]

# The .gitattributes the Hub puts in the initial commit of every new model repo.
DEFAULT_GITATTRIBUTES = """\
*.7z filter=lfs diff=lfs merge=lfs -text
*.arrow filter=lfs diff=lfs merge=lfs -text
*.bin filter=lfs diff=lfs merge=lfs -text
*.bz2 filter=lfs diff=lfs merge=lfs -text
*.ckpt filter=lfs diff=lfs merge=lfs -text
*.ftz filter=lfs diff=lfs merge=lfs -text
*.gz filter=lfs diff=lfs merge=lfs -text
*.h5 filter=lfs diff=lfs merge=lfs -text
*.joblib filter=lfs diff=lfs merge=lfs -text
*.lfs.* filter=lfs diff=lfs merge=lfs -text
*.mlmodel filter=lfs diff=lfs merge=lfs -text
*.model filter=lfs diff=lfs merge=lfs -text
*.msgpack filter=lfs diff=lfs merge=lfs -text
*.npy filter=lfs diff=lfs merge=lfs -text
*.npz filter=lfs diff=lfs merge=lfs -text
*.onnx filter=lfs diff=lfs merge=lfs -text
*.ot filter=lfs diff=lfs merge=lfs -text
*.parquet filter=lfs diff=lfs merge=lfs -text
*.pb filter=lfs diff=lfs merge=lfs -text
*.pickle filter=lfs diff=lfs merge=lfs -text
*.pkl filter=lfs diff=lfs merge=lfs -text
*.pt filter=lfs diff=lfs merge=lfs -text
*.pth filter=lfs diff=lfs merge=lfs -text
*.rar filter=lfs diff=lfs merge=lfs -text
*.safetensors filter=lfs diff=lfs merge=lfs -text
saved_model/**/* filter=lfs diff=lfs merge=lfs -text
*.tar.* filter=lfs diff=lfs merge=lfs -text
*.tar filter=lfs diff=lfs merge=lfs -text
*.tflite filter=lfs diff=lfs merge=lfs -text
*.tgz filter=lfs diff=lfs merge=lfs -text
*.wasm filter=lfs diff=lfs merge=lfs -text
*.xz filter=lfs diff=lfs merge=lfs -text
*.zip filter=lfs diff=lfs merge=lfs -text
*.zst filter=lfs diff=lfs merge=lfs -text
*tfevents* filter=lfs diff=lfs merge=lfs -text
"""

REPO_TYPES = ("model", "dataset", "space", "kernel")
_URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/", "kernel": "kernels/"}
_PLURAL_TO_TYPE = {"models": "model", "datasets": "dataset", "spaces": "space", "kernels": "kernel"}
_HEX40 = re.compile(r"^[0-9a-f]{40}$")
_HEX_PREFIX = re.compile(r"^[0-9a-f]{7,39}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_PR_REF = re.compile(r"^refs/pr/(\d+)$")
_TREE_PAGE_SIZE = 1000
_TREE_PAGE_SIZE_EXPAND = 50
_SAFETENSORS_DTYPES = {"F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL", "F8_E4M3", "F8_E5M2"}


# ---------------------------------------------------------------------------------------------------------------
# Git-ish helpers
# ---------------------------------------------------------------------------------------------------------------


def git_blob_oid(data: bytes) -> str:
    """The git object id of a blob (what huggingface_hub calls `blob_id` / the regular-file ETag)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    """The git-LFS pointer file the Hub stores in git for an LFS file."""
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def _now() -> str:
    now = datetime.now(timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def _glob_regex(pattern: str) -> re.Pattern:
    """Translate a gitattributes/gitignore glob (with `**`) into a regex matching a full path."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("/**", i) and i + 3 == len(pattern):
            out += "/.*"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        elif pattern[i] == "[":
            j = pattern.find("]", i + 1)
            if j == -1:
                out += re.escape(pattern[i])
                i += 1
            else:
                body = pattern[i + 1 : j]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out += "[" + body.replace("\\", "\\\\") + "]"
                i = j + 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out + r"\Z")


def _glob_match(pattern: str, path: str) -> bool:
    """git's rule: a pattern without a slash matches the basename at any depth, otherwise the full path."""
    pattern = pattern.strip()
    if not pattern:
        return False
    if "/" not in pattern.rstrip("/"):
        return bool(_glob_regex(pattern.rstrip("/")).match(path.rsplit("/", 1)[-1]))
    return bool(_glob_regex(pattern.lstrip("/").rstrip("/")).match(path))


def _lfs_patterns(gitattributes: str) -> list[str]:
    patterns = []
    for line in gitattributes.splitlines():
        parts = line.split()
        if parts and not parts[0].startswith("#") and "filter=lfs" in parts[1:]:
            patterns.append(parts[0])
    return patterns


def _gitignored(gitignore: str, path: str) -> bool:
    """Minimal .gitignore semantics: last matching rule wins, `!` negates, rules also match parent dirs."""
    parents = path.split("/")
    candidates = ["/".join(parents[: k + 1]) for k in range(len(parents))]
    ignored = False
    for raw in gitignore.splitlines():
        rule = raw.strip()
        if not rule or rule.startswith("#"):
            continue
        negate = rule.startswith("!")
        if negate:
            rule = rule[1:]
        dir_only = rule.endswith("/")
        for k, candidate in enumerate(candidates):
            if dir_only and k == len(candidates) - 1:
                continue  # a "dir/" rule does not match the file itself
            if _glob_match(rule, candidate):
                ignored = not negate
                break
    return ignored


def _safetensors_parameters(data: bytes) -> dict[str, int] | None:
    try:
        (n,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8 : 8 + n])
    except Exception:
        return None
    counts: dict[str, int] = {}
    for name, info in header.items():
        if name == "__metadata__" or not isinstance(info, dict) or info.get("dtype") not in _SAFETENSORS_DTYPES:
            continue
        numel = 1
        for dim in info.get("shape", []):
            numel *= int(dim)
        counts[info["dtype"]] = counts.get(info["dtype"], 0) + numel
    return counts


def _front_matter(readme: bytes) -> dict | None:
    """The YAML front matter of a README, if PyYAML is available and the card has one."""
    text = readme.decode("utf-8", errors="replace")
    match = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", text, re.S)
    if match is None:
        return None
    try:
        import yaml
    except ImportError:  # pragma: no cover - huggingface_hub depends on PyYAML
        return None
    try:
        data = yaml.safe_load(match.group(1))
    except Exception:
        return None
    return data if isinstance(data, dict) else None


# ---------------------------------------------------------------------------------------------------------------
# Data model
# ---------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class FileEntry:
    path: str
    size: int  # size of the real content (for LFS files too, like the Hub's tree listing)
    oid: str  # git blob oid: of the content for regular files, of the pointer for LFS files
    lfs_sha256: str | None = None
    pointer_size: int | None = None


@dataclasses.dataclass
class Commit:
    oid: str
    parents: list[str]
    files: dict[str, FileEntry]  # full snapshot: path -> entry
    title: str
    message: str
    date: str
    author: str


@dataclasses.dataclass
class Repo:
    repo_type: str
    repo_id: str
    private: bool
    created_at: str
    commits: dict[str, Commit] = dataclasses.field(default_factory=dict)
    branches: dict[str, str] = dataclasses.field(default_factory=dict)
    tags: dict[str, str] = dataclasses.field(default_factory=dict)
    pull_requests: dict[int, str] = dataclasses.field(default_factory=dict)  # num -> head commit of refs/pr/num
    lfs_oids: set[str] = dataclasses.field(default_factory=set)
    next_discussion: int = 1
    object_id: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.repo_type, self.repo_id)


@dataclasses.dataclass(frozen=True)
class RequestRecord:
    method: str
    path: str  # percent-decoded, no query string
    query: str
    headers: dict[str, str]
    listener: str  # "hub" or "cdn"
    status: int | None = None


@dataclasses.dataclass
class Fault:
    """A dropped connection, injected with `HubServer.drop_connection` (see the module docstring)."""

    method: str
    path_prefix: str  # matched against the percent-decoded path, without the query string
    during: str  # "request" (cut the upload) or "response" (cut the download)
    after_bytes: int  # how much of the body gets through before the connection is closed
    times: int | None  # how many connections to drop; None: every matching one
    hits: int = 0

    def matches(self, method: str, path: str, during: str) -> bool:
        return (self.method == method and path.startswith(self.path_prefix) and self.during == during
                and (self.times is None or self.hits < self.times))


class HubHTTPError(Exception):
    """Raised inside handlers: becomes an HTTP error response shaped like the Hub's."""

    def __init__(self, status: int, message: str, code: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = headers or {}


def _repo_not_found(repo_type: str, repo_id: str) -> HubHTTPError:
    return HubHTTPError(404, f"Repository not found: {repo_type} {repo_id}", "RepoNotFound")


def _revision_not_found(revision: str) -> HubHTTPError:
    return HubHTTPError(404, f"Invalid rev id: {revision}", "RevisionNotFound")


# ---------------------------------------------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------------------------------------------


class HubServer:
    """In-memory fake Hub on 127.0.0.1. Use as a context manager or call `start()` / `stop()`.

    Args:
        user: namespace used for repos created without an organization, and returned by `whoami`.
        lfs_threshold: files strictly larger than this many bytes are uploaded as LFS (the real Hub uses
            10 MB; 10 KB here so that small test files exercise both paths). Files matching a `filter=lfs`
            pattern of the repo's `.gitattributes` (e.g. `*.safetensors`) are LFS whatever their size.
        lfs_binary: also treat files whose 512-byte sample contains a NUL byte as LFS (the Hub does).
        lfs_redirect: answer `/resolve` of LFS files with a 302 to the CDN listener (like the Hub) rather
            than serving the bytes directly (then still with `X-Linked-Etag` / `X-Linked-Size`).
        lfs_verify: include a `verify` action in git-LFS batch answers (huggingface_hub then POSTs to it).
        strict: whether `check()` (called by the `hub_server` fixture at teardown) fails on unhandled
            routes and server-side exceptions.
    """

    def __init__(
        self,
        *,
        user: str = "test-user",
        lfs_threshold: int = 10 * 1024,
        lfs_binary: bool = True,
        lfs_redirect: bool = True,
        lfs_verify: bool = True,
        strict: bool = True,
        host: str = "127.0.0.1",
    ):
        self.user = user
        self.lfs_threshold = lfs_threshold
        self.lfs_binary = lfs_binary
        self.lfs_redirect = lfs_redirect
        self.lfs_verify = lfs_verify
        self.strict = strict
        self.host = host

        self._lock = threading.RLock()
        self.repos: dict[tuple[str, str], Repo] = {}
        self._blobs: dict[str, bytes] = {}  # git blob oid -> content (regular files)
        self._lfs: dict[str, bytes] = {}  # sha256 -> content (LFS objects, uploaded through the CDN listener)
        self._commit_counter = 0

        self.requests: list[tuple[str, str]] = []
        self.request_log: list[RequestRecord] = []
        self.content_downloads: list[tuple[str, str]] = []
        self.unhandled: list[str] = []
        self.errors: list[str] = []
        self.faults: list[Fault] = []

        self._hub: _Listener | None = None
        self._cdn: _Listener | None = None
        self._ports: tuple[int, int] = (0, 0)

    # -- lifecycle --------------------------------------------------------------------------------------------

    def start(self) -> "HubServer":
        if self._hub is not None:
            raise RuntimeError("HubServer already started")
        hub_port, cdn_port = self._ports  # 0 the first time; the same ports again after stop()
        self._hub = _Listener((self.host, hub_port), self, "hub")
        self._cdn = _Listener((self.host, cdn_port), self, "cdn")
        self._ports = (self._hub.server_address[1], self._cdn.server_address[1])
        for listener in (self._hub, self._cdn):
            listener.thread.start()
        return self

    def stop(self) -> None:
        """Stop both listeners and cut open keep-alive connections (later requests: connection refused).

        The in-memory repos are kept: `start()` again serves them on the same ports.
        """
        for listener in (self._hub, self._cdn):
            if listener is not None:
                listener.stop()
        self._hub = self._cdn = None

    @property
    def running(self) -> bool:
        return self._hub is not None

    def __enter__(self) -> "HubServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self._ports[0]}"

    @property
    def cdn_endpoint(self) -> str:
        return f"http://{self.host}:{self._ports[1]}"

    # -- introspection helpers for tests ------------------------------------------------------------------------

    def count(self, method: str | None = None, path: str | None = None, *, prefix: str | None = None) -> int:
        """Number of recorded requests matching `method` and exactly `path` (or starting with `prefix`)."""
        with self._lock:
            return sum(
                1
                for m, p in self.requests
                if (method is None or m == method)
                and (path is None or p == path)
                and (prefix is None or p.startswith(prefix))
            )

    def downloads_of(self, repo_id: str, filename: str) -> int:
        """How many responses carried the bytes of `filename` from `repo_id` (any revision)."""
        with self._lock:
            return self.content_downloads.count((repo_id, filename))

    # -- fault injection ------------------------------------------------------------------------------------------

    def drop_connection(self, method: str, path_prefix: str, *, during: str = "response", after_bytes: int = 0,
                        times: int | None = 1) -> Fault:
        """Cut the connection of the next `times` requests `method path_prefix...` (None: all of them).

        `during="request"`: only `after_bytes` of the request body are read, the request is not handled and gets
        no answer. `during="response"`: the request is handled, then only `after_bytes` of the response body are
        sent after the headers. Both listeners are covered (CDN paths start with /cdn-lfs/ or /lfs-upload/).
        """
        if during not in ("request", "response"):
            raise ValueError(f"during must be 'request' or 'response', got {during!r}")
        fault = Fault(method.upper(), path_prefix, during, int(after_bytes), times)
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def _take_fault(self, method: str, path: str, during: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.matches(method, path, during):
                    fault.hits += 1
                    return fault
        return None

    def clear_log(self) -> None:
        with self._lock:
            self.requests.clear()
            self.request_log.clear()
            self.content_downloads.clear()

    def check(self) -> None:
        """Raise AssertionError if a request hit an unimplemented route or the server raised."""
        problems = [f"unhandled request: {u}" for u in self.unhandled] + [f"server error: {e}" for e in self.errors]
        if problems:
            raise AssertionError("HubServer problems:\n" + "\n".join(problems))

    def head(self, repo_id: str, revision: str = "main", repo_type: str = "model") -> str:
        """Commit sha that `revision` resolves to."""
        with self._lock:
            repo = self._get_repo(repo_type, repo_id)
            return self._resolve_or_raise(repo, revision)

    def file_bytes(self, repo_id: str, filename: str, revision: str = "main", repo_type: str = "model") -> bytes:
        with self._lock:
            repo = self._get_repo(repo_type, repo_id)
            entry = repo.commits[self._resolve_or_raise(repo, revision)].files[filename]
            return self._content(entry)

    # -- server-side seeding (no client round trip) ---------------------------------------------------------------

    def create_repo(self, repo_id: str, *, repo_type: str = "model", private: bool = False, exist_ok: bool = False) -> Repo:
        if repo_type not in REPO_TYPES:
            raise ValueError(f"unknown repo type {repo_type!r}")
        if repo_id.count("/") != 1 or not all(repo_id.split("/")):
            raise ValueError(f"repo id must be 'namespace/name', got {repo_id!r}")
        with self._lock:
            if (repo_type, repo_id) in self.repos:
                if exist_ok:
                    return self.repos[(repo_type, repo_id)]
                raise HubHTTPError(409, f"You already created this {repo_type} repo")
            repo = Repo(repo_type=repo_type, repo_id=repo_id, private=private, created_at=_now())
            repo.object_id = hashlib.sha1(f"{repo_type}/{repo_id}".encode()).hexdigest()[:24]
            self.repos[repo.key] = repo
            initial = self._store_regular(".gitattributes", DEFAULT_GITATTRIBUTES.encode())
            self._new_commit(repo, None, {".gitattributes": initial}, "initial commit", "")
            repo.branches["main"] = next(iter(repo.commits))
            return repo

    def seed(
        self,
        repo_id: str,
        files: dict[str, bytes | str],
        *,
        repo_type: str = "model",
        revision: str = "main",
        message: str = "seed",
        delete: Iterable[str] = (),
    ) -> str:
        """Commit `files` (path -> content) directly on the server; creates the repo/branch if needed.

        LFS vs regular follows the same rules as preupload. Returns the new commit sha.
        """
        with self._lock:
            repo = self.create_repo(repo_id, repo_type=repo_type, exist_ok=True)
            if revision not in repo.branches:
                repo.branches[revision] = repo.branches["main"]
            parent = repo.branches[revision]
            snapshot = dict(repo.commits[parent].files)
            for path, content in files.items():
                data = content.encode() if isinstance(content, str) else bytes(content)
                if self._is_lfs(repo, parent, path, len(data), data[:512]):
                    snapshot[path] = self._store_lfs(repo, path, data)
                else:
                    snapshot[path] = self._store_regular(path, data)
            for path in delete:
                snapshot.pop(path, None)
            oid = self._new_commit(repo, parent, snapshot, message, "")
            repo.branches[revision] = oid
            return oid

    # -- storage internals (call with the lock held) -------------------------------------------------------------

    def _store_regular(self, path: str, data: bytes) -> FileEntry:
        oid = git_blob_oid(data)
        self._blobs[oid] = data
        return FileEntry(path=path, size=len(data), oid=oid)

    def _store_lfs(self, repo: Repo, path: str, data: bytes) -> FileEntry:
        sha = hashlib.sha256(data).hexdigest()
        self._lfs[sha] = data
        repo.lfs_oids.add(sha)
        return self._lfs_entry(path, sha, len(data))

    @staticmethod
    def _lfs_entry(path: str, sha: str, size: int) -> FileEntry:
        pointer = lfs_pointer(sha, size)
        return FileEntry(path=path, size=size, oid=git_blob_oid(pointer), lfs_sha256=sha, pointer_size=len(pointer))

    def _content(self, entry: FileEntry) -> bytes:
        return self._lfs[entry.lfs_sha256] if entry.lfs_sha256 else self._blobs[entry.oid]

    def _new_commit(self, repo: Repo, parent: str | None, files: dict[str, FileEntry], title: str, message: str) -> str:
        self._commit_counter += 1
        tree = hashlib.sha1(
            json.dumps(sorted((p, e.oid) for p, e in files.items())).encode()
        ).hexdigest()
        oid = hashlib.sha1(
            f"{repo.repo_type}/{repo.repo_id}\n{parent}\n{tree}\n{title}\n{message}\n{self._commit_counter}".encode()
        ).hexdigest()
        repo.commits[oid] = Commit(
            oid=oid,
            parents=[parent] if parent else [],
            files=dict(files),
            title=title,
            message=message,
            date=_now(),
            author=self.user,
        )
        return oid

    def _get_repo(self, repo_type: str, repo_id: str) -> Repo:
        repo = self.repos.get((repo_type, repo_id))
        if repo is None:
            raise _repo_not_found(repo_type, repo_id)
        return repo

    def _resolve(self, repo: Repo, revision: str) -> str | None:
        if revision in repo.branches:
            return repo.branches[revision]
        if revision in repo.tags:
            return repo.tags[revision]
        if revision.startswith("refs/heads/") and revision[len("refs/heads/") :] in repo.branches:
            return repo.branches[revision[len("refs/heads/") :]]
        if revision.startswith("refs/tags/") and revision[len("refs/tags/") :] in repo.tags:
            return repo.tags[revision[len("refs/tags/") :]]
        pr = _PR_REF.match(revision)
        if pr and int(pr.group(1)) in repo.pull_requests:
            return repo.pull_requests[int(pr.group(1))]
        if _HEX40.match(revision):
            return revision if revision in repo.commits else None
        if _HEX_PREFIX.match(revision):
            matches = [oid for oid in repo.commits if oid.startswith(revision)]
            if len(matches) == 1:
                return matches[0]
        return None

    def _resolve_or_raise(self, repo: Repo, revision: str) -> str:
        oid = self._resolve(repo, revision)
        if oid is None:
            raise _revision_not_found(revision)
        return oid

    def _is_lfs(self, repo: Repo, commit_oid: str | None, path: str, size: int, sample: bytes) -> bool:
        if size == 0:
            return False
        gitattributes = DEFAULT_GITATTRIBUTES
        if commit_oid is not None:
            entry = repo.commits[commit_oid].files.get(".gitattributes")
            if entry is not None:
                gitattributes = self._content(entry).decode("utf-8", errors="replace")
        if any(_glob_match(p, path) for p in _lfs_patterns(gitattributes)):
            return True
        if size > self.lfs_threshold:
            return True
        return self.lfs_binary and b"\0" in sample

    def _url_prefix(self, repo: Repo) -> str:
        return f"{self.endpoint}/{_URL_PREFIX[repo.repo_type]}{repo.repo_id}"

    def _last_commits(self, repo: Repo, head: str, paths: Iterable[str]) -> dict[str, Commit]:
        """For each path (file or folder), the newest commit (first-parent walk) that changed it."""
        wanted = set(paths)
        found: dict[str, Commit] = {}
        commit = repo.commits[head]
        while wanted:
            parent = repo.commits[commit.parents[0]] if commit.parents else None
            for path in list(wanted):
                if self._subtree_sig(commit, path) != (self._subtree_sig(parent, path) if parent else None):
                    found[path] = commit
                    wanted.discard(path)
            if parent is None:
                break
            commit = parent
        return found

    @staticmethod
    def _subtree_sig(commit: Commit, path: str):
        if path in commit.files:
            return commit.files[path].oid
        prefix = path + "/"
        sig = tuple(sorted((p, e.oid) for p, e in commit.files.items() if p.startswith(prefix)))
        return sig or None

    @staticmethod
    def _tree_oid(commit: Commit, folder: str) -> str:
        prefix = folder + "/" if folder else ""
        items = sorted((p, e.oid) for p, e in commit.files.items() if p.startswith(prefix))
        return hashlib.sha1(json.dumps(items).encode()).hexdigest()

    # -- JSON shapes ---------------------------------------------------------------------------------------------

    def _file_json(self, entry: FileEntry) -> dict:
        data: dict[str, Any] = {"type": "file", "oid": entry.oid, "size": entry.size, "path": entry.path}
        if entry.lfs_sha256:
            data["lfs"] = {"oid": entry.lfs_sha256, "size": entry.size, "pointerSize": entry.pointer_size}
        return data

    def _expand(self, data: dict, commit: Commit | None) -> dict:
        if commit is not None:
            data["lastCommit"] = {"id": commit.oid, "title": commit.title, "date": commit.date}
        if data["type"] == "file":
            data["securityFileStatus"] = {
                "status": "safe",
                "avScan": {"virusFound": False, "virusNames": None},
                "pickleImportScan": None,
            }
        return data

    def _repo_info_json(self, repo: Repo, commit: Commit, blobs: bool) -> dict:
        siblings = []
        for path in sorted(commit.files):
            entry = commit.files[path]
            sibling: dict[str, Any] = {"rfilename": path}
            if blobs:
                sibling["size"] = entry.size
                sibling["blobId"] = entry.oid
                if entry.lfs_sha256:
                    sibling["lfs"] = {"size": entry.size, "sha256": entry.lfs_sha256, "pointerSize": entry.pointer_size}
            siblings.append(sibling)
        namespace = repo.repo_id.split("/")[0]
        info: dict[str, Any] = {
            "_id": repo.object_id,
            "id": repo.repo_id,
            "author": namespace,
            "sha": commit.oid,
            "lastModified": commit.date,
            "createdAt": repo.created_at,
            "private": repo.private,
            "gated": False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "siblings": siblings,
            "usedStorage": sum(e.size for e in commit.files.values()),
        }
        readme = commit.files.get("README.md")
        card = _front_matter(self._content(readme)) if readme is not None else None
        if card is not None:
            info["cardData"] = card
            tags = [str(t) for t in card.get("tags") or [] if isinstance(t, (str, int, float))]
            if card.get("library_name"):
                tags.insert(0, str(card["library_name"]))
            if card.get("license"):
                tags.append(f"license:{card['license']}")
            info["tags"] = tags
        if repo.repo_type == "model":
            info["modelId"] = repo.repo_id
            info["spaces"] = []
            info["library_name"] = card.get("library_name") if card else None
            info["pipeline_tag"] = card.get("pipeline_tag") if card else None
            params: dict[str, int] = {}
            for path, entry in commit.files.items():
                if "/" not in path and path.endswith(".safetensors"):
                    for dtype, n in (_safetensors_parameters(self._content(entry)) or {}).items():
                        params[dtype] = params.get(dtype, 0) + n
            if params:
                info["safetensors"] = {"parameters": params, "total": sum(params.values())}
        elif repo.repo_type == "space":
            info["sdk"] = (card or {}).get("sdk")
            info["runtime"] = None
        return info

    # -- route handlers (called by _Handler with the lock held) --------------------------------------------------

    def handle(self, req: "_Request") -> "_Response":
        if req.listener == "cdn":
            return self._handle_cdn(req)
        segs = req.segments
        m = req.method
        if segs[:1] == ["api"]:
            rest = segs[1:]
            if rest == ["whoami-v2"] and m == "GET":
                return _json({"type": "user", "name": self.user, "fullname": self.user, "orgs": [],
                              "auth": {"type": "access_token", "accessToken": {"displayName": "hub-server", "role": "write"}}})
            if rest == ["agent-harnesses"] and m == "GET":
                return _json({"standardEnvVars": [], "harnesses": {}})
            if rest[:1] == ["telemetry"]:
                return _json({})
            if rest == ["validate-yaml"] and m == "POST":
                return self._validate_yaml(req)
            if rest == ["repos", "create"] and m == "POST":
                return self._create_repo(req)
            if rest == ["repos", "delete"] and m == "DELETE":
                return self._delete_repo(req)
            if len(rest) >= 3 and rest[0] in _PLURAL_TO_TYPE:
                return self._handle_repo_api(req, _PLURAL_TO_TYPE[rest[0]], f"{rest[1]}/{rest[2]}", rest[3:])
            return _unhandled(req)
        # Non-API routes: [datasets/|spaces/|kernels/]ns/name(/resolve/...|.git/info/lfs/...)
        repo_type = "model"
        if segs and segs[0] in ("datasets", "spaces", "kernels"):
            repo_type, segs = _PLURAL_TO_TYPE[segs[0]], segs[1:]
        if len(segs) >= 4 and segs[2] == "resolve" and m in ("GET", "HEAD"):
            return self._resolve_file(req, repo_type, f"{segs[0]}/{segs[1]}", segs[3], "/".join(segs[4:]))
        if len(segs) == 6 and segs[1].endswith(".git") and segs[2:5] == ["info", "lfs", "objects"] and m == "POST":
            repo_id = f"{segs[0]}/{segs[1][: -len('.git')]}"
            if segs[5] == "batch":
                return self._lfs_batch(req, repo_type, repo_id)
            if segs[5] == "verify":
                return self._lfs_verify(req, repo_type, repo_id)
        return _unhandled(req)

    def _handle_repo_api(self, req: "_Request", repo_type: str, repo_id: str, action: list[str]) -> "_Response":
        m = req.method
        repo = self._get_repo(repo_type, repo_id)
        if not action and m == "GET":
            head = self._resolve_or_raise(repo, "main")
            return _json(self._repo_info_json(repo, repo.commits[head], _truthy(req.param("blobs"))))
        verb, args = action[0], action[1:]
        if verb == "revision" and len(args) == 1 and m == "GET":
            commit = repo.commits[self._resolve_or_raise(repo, args[0])]
            return _json(self._repo_info_json(repo, commit, _truthy(req.param("blobs"))))
        if verb == "tree" and args and m == "GET":
            return self._tree(req, repo, args[0], "/".join(args[1:]).strip("/"))
        if verb == "paths-info" and len(args) == 1 and m == "POST":
            return self._paths_info(req, repo, args[0])
        if verb == "refs" and not args and m == "GET":
            return self._refs(req, repo)
        if verb == "commits" and len(args) == 1 and m == "GET":
            return self._list_commits(req, repo, args[0])
        if verb == "preupload" and len(args) == 1 and m == "POST":
            return self._preupload(req, repo, args[0])
        if verb == "commit" and len(args) == 1 and m == "POST":
            return self._commit(req, repo, args[0])
        if verb == "branch" and len(args) == 1 and m in ("POST", "DELETE"):
            return self._branch(req, repo, args[0])
        if verb == "tag" and len(args) == 1 and m in ("POST", "DELETE"):
            return self._tag(req, repo, args[0])
        if verb == "settings" and not args and m == "PUT":
            body = req.json() or {}
            if "private" in body:
                repo.private = bool(body["private"])
            if body.get("visibility") in ("private", "public"):
                repo.private = body["visibility"] == "private"
            return _json({})
        if verb in ("xet-read-token", "xet-write-token"):
            raise HubHTTPError(
                501,
                "HubServer does not implement Xet storage. Set HF_HUB_DISABLE_XET=1 (and "
                "huggingface_hub.constants.HF_HUB_DISABLE_XET = True) so that huggingface_hub uploads via git-LFS.",
            )
        return _unhandled(req)

    # misc API ----------------------------------------------------------------------------------------------------

    def _validate_yaml(self, req: "_Request") -> "_Response":
        content = (req.json() or {}).get("content", "")
        match = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", content, re.S)
        if match is not None:
            try:
                import yaml

                yaml.safe_load(match.group(1))
            except ImportError:  # pragma: no cover
                pass
            except Exception as e:
                return _json({"errors": [{"message": f"Invalid YAML in README.md metadata: {e}"}], "warnings": []},
                             status=400)
        return _json({"errors": [], "warnings": []})

    def _create_repo(self, req: "_Request") -> "_Response":
        body = req.json() or {}
        name, organization = body.get("name"), body.get("organization")
        repo_type = body.get("type") or "model"
        if repo_type not in REPO_TYPES:
            raise HubHTTPError(400, f"Invalid repo type: {repo_type}")
        if not name or "/" in name:
            raise HubHTTPError(400, f"Invalid repo name: {name!r}")
        repo_id = f"{organization or self.user}/{name}"
        url = f"{self.endpoint}/{_URL_PREFIX[repo_type]}{repo_id}"
        if (repo_type, repo_id) in self.repos:
            return _json({"error": f"You already created this {repo_type} repo", "url": url}, status=409)
        private = body.get("visibility") == "private" or bool(body.get("private"))
        repo = self.create_repo(repo_id, repo_type=repo_type, private=private)
        return _json({"url": url, "name": repo_id, "id": repo.object_id})

    def _delete_repo(self, req: "_Request") -> "_Response":
        body = req.json() or {}
        repo_type = body.get("type") or "model"
        repo_id = f"{body.get('organization') or self.user}/{body.get('name')}"
        self._get_repo(repo_type, repo_id)
        del self.repos[(repo_type, repo_id)]
        return _json({})

    # read API ------------------------------------------------------------------------------------------------------

    def _tree(self, req: "_Request", repo: Repo, revision: str, folder: str) -> "_Response":
        commit = repo.commits[self._resolve_or_raise(repo, revision)]
        recursive, expand = _truthy(req.param("recursive")), _truthy(req.param("expand"))
        prefix = folder + "/" if folder else ""
        if folder and not any(p.startswith(prefix) for p in commit.files):
            raise HubHTTPError(404, f"Entry not found: {folder}", "EntryNotFound",
                               {"X-Repo-Commit": commit.oid})
        entries: list[dict] = []
        seen_dirs: set[str] = set()
        for path in sorted(commit.files):
            if not path.startswith(prefix):
                continue
            rel = path[len(prefix) :]
            parts = rel.split("/")
            # folders on the way (all of them when recursive, only direct children otherwise)
            for depth in range(1, len(parts) if recursive else min(2, len(parts))):
                d = prefix + "/".join(parts[:depth])
                if d not in seen_dirs:
                    seen_dirs.add(d)
                    entries.append({"type": "directory", "oid": self._tree_oid(commit, d), "size": 0, "path": d})
            if recursive or len(parts) == 1:
                entries.append(self._file_json(commit.files[path]))
        if expand:
            last = self._last_commits(repo, commit.oid, [e["path"] for e in entries])
            entries = [self._expand(e, last.get(e["path"])) for e in entries]
        # Cursor pagination through a `Link: <...>; rel="next"` header, like the Hub.
        page_size = _TREE_PAGE_SIZE_EXPAND if expand else _TREE_PAGE_SIZE
        start = int(req.param("cursor") or 0)
        page = entries[start : start + page_size]
        headers = {}
        if start + page_size < len(entries):
            query = f"recursive={str(recursive).lower()}&expand={str(expand).lower()}&cursor={start + page_size}"
            headers["Link"] = f'<{self.endpoint}{req.raw_path}?{query}>; rel="next"'
        return _json(page, headers=headers)

    def _paths_info(self, req: "_Request", repo: Repo, revision: str) -> "_Response":
        commit = repo.commits[self._resolve_or_raise(repo, revision)]
        if "json" in req.headers.get("content-type", ""):
            body = req.json() or {}
            paths, expand = body.get("paths") or [], bool(body.get("expand"))
        else:
            form = parse_qs(req.body.decode(), keep_blank_values=True)
            paths, expand = form.get("paths", []), _truthy((form.get("expand") or [""])[0])
        out = []
        for raw in paths:
            path = raw.strip("/")
            if path in commit.files:
                out.append(self._file_json(commit.files[path]))
            elif any(p.startswith(path + "/") for p in commit.files):
                out.append({"type": "directory", "oid": self._tree_oid(commit, path), "size": 0, "path": path})
        if expand:
            last = self._last_commits(repo, commit.oid, [e["path"] for e in out])
            out = [self._expand(e, last.get(e["path"])) for e in out]
        return _json(out)

    def _refs(self, req: "_Request", repo: Repo) -> "_Response":
        data = {
            "branches": [{"name": b, "ref": f"refs/heads/{b}", "targetCommit": c} for b, c in repo.branches.items()],
            "converts": [],
            "tags": [{"name": t, "ref": f"refs/tags/{t}", "targetCommit": c} for t, c in repo.tags.items()],
        }
        if _truthy(req.param("include_prs")):
            data["pullRequests"] = [
                {"name": f"refs/pr/{n}", "ref": f"refs/pr/{n}", "targetCommit": c} for n, c in repo.pull_requests.items()
            ]
        return _json(data)

    def _list_commits(self, req: "_Request", repo: Repo, revision: str) -> "_Response":
        oid = self._resolve_or_raise(repo, revision)
        out = []
        while oid:
            c = repo.commits[oid]
            item = {"id": c.oid, "title": c.title, "message": c.message, "date": c.date,
                    "authors": [{"user": c.author, "avatar": None}]}
            if "formatted" in req.query_params.get("expand[]", []):
                item["formatted"] = {"title": c.title, "message": c.message}
            out.append(item)
            oid = c.parents[0] if c.parents else None
        return _json(out)

    def _resolve_file(self, req: "_Request", repo_type: str, repo_id: str, revision: str, filename: str) -> "_Response":
        repo = self._get_repo(repo_type, repo_id)
        commit = repo.commits[self._resolve_or_raise(repo, revision)]
        entry = commit.files.get(filename)
        if entry is None:
            raise HubHTTPError(404, "Entry not found", "EntryNotFound", {"X-Repo-Commit": commit.oid})
        common = {"X-Repo-Commit": commit.oid, "Accept-Ranges": "bytes"}
        if entry.lfs_sha256:
            common.update({"X-Linked-Etag": f'"{entry.lfs_sha256}"', "X-Linked-Size": str(entry.size)})
            if self.lfs_redirect:
                location = (f"{self.cdn_endpoint}/cdn-lfs/{entry.lfs_sha256}"
                            f"?repo={quote(f'{repo_type}/{repo_id}', safe='')}&filename={quote(filename, safe='')}")
                body = f"Found. Redirecting to {location}".encode()
                return _Response(302, body, {**common, "ETag": f'"{entry.oid}"', "Location": location,
                                             "Content-Type": "text/plain; charset=utf-8"})
            return self._serve_content(req, self._lfs[entry.lfs_sha256], {**common, "ETag": f'"{entry.lfs_sha256}"'},
                                       (repo_id, filename), filename)
        return self._serve_content(req, self._blobs[entry.oid], {**common, "ETag": f'"{entry.oid}"'},
                                   (repo_id, filename), filename)

    def _serve_content(self, req: "_Request", data: bytes, headers: dict, what: tuple[str, str], filename: str) -> "_Response":
        headers = {
            **headers,
            "Content-Type": "application/octet-stream",
            "Content-Disposition": f'inline; filename="{filename.rsplit("/", 1)[-1]}"',
        }
        status, body = 200, data
        range_header = req.headers.get("range")
        if range_header:
            parsed = _parse_range(range_header, len(data))
            if parsed == "unsatisfiable":
                return _Response(416, b"", {**headers, "Content-Range": f"bytes */{len(data)}"})
            if parsed is not None:
                start, end = parsed
                status, body = 206, data[start : end + 1]
                headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
        if req.method == "GET":
            self.content_downloads.append(what)
        return _Response(status, body, headers)

    # upload API ----------------------------------------------------------------------------------------------------

    def _preupload(self, req: "_Request", repo: Repo, revision: str) -> "_Response":
        head = self._resolve_or_raise(repo, revision)
        commit = repo.commits[head]
        body = req.json() or {}
        gitignore = body.get("gitIgnore")
        if gitignore is None and ".gitignore" in commit.files:
            gitignore = self._content(commit.files[".gitignore"]).decode("utf-8", errors="replace")
        out = []
        for f in body.get("files", []):
            path, size = f["path"], int(f.get("size", 0))
            sample = base64.b64decode(f.get("sample", ""))
            is_lfs = self._is_lfs(repo, head, path, size, sample)
            item: dict[str, Any] = {
                "path": path,
                "uploadMode": "lfs" if is_lfs else "regular",
                "shouldIgnore": bool(gitignore) and _gitignored(gitignore, path),
            }
            existing = commit.files.get(path)
            if existing is not None:
                item["oid"] = existing.lfs_sha256 or existing.oid
            out.append(item)
        return _json({"files": out, "commitOid": head})

    def _lfs_batch(self, req: "_Request", repo_type: str, repo_id: str) -> "_Response":
        repo = self._get_repo(repo_type, repo_id)
        body = req.json() or {}
        operation = body.get("operation")
        if operation not in ("upload", "download"):
            raise HubHTTPError(400, f"Unsupported LFS operation: {operation!r}")
        transfers = body.get("transfers") or ["basic"]
        if "basic" not in transfers:
            raise HubHTTPError(400, f"HubServer only supports the 'basic' LFS transfer, got {transfers}")
        objects = []
        for obj in body.get("objects", []):
            oid, size = str(obj.get("oid")), obj.get("size")
            item: dict[str, Any] = {"oid": oid, "size": size}
            if not _SHA256.match(oid) or not isinstance(size, int) or size < 0:
                item["error"] = {"code": 422, "message": "Invalid oid or size"}
                item["size"] = size if isinstance(size, int) else 0
            elif operation == "download":
                if oid in repo.lfs_oids and len(self._lfs[oid]) == size:
                    item["actions"] = {"download": {"href": f"{self.cdn_endpoint}/cdn-lfs/{oid}", "header": {}}}
                else:
                    item["error"] = {"code": 404, "message": "Object does not exist"}
            elif oid in repo.lfs_oids:
                pass  # already uploaded to this repo: no actions => huggingface_hub skips the upload
            else:
                key = quote(f"{repo_type}/{repo_id}", safe="")
                item["authenticated"] = True
                item["actions"] = {
                    "upload": {"href": f"{self.cdn_endpoint}/lfs-upload/{key}/{oid}?size={size}",
                               "expires_at": "2999-01-01T00:00:00.000Z"},
                }
                if self.lfs_verify:
                    item["actions"]["verify"] = {
                        "href": f"{self._url_prefix(repo)}.git/info/lfs/objects/verify",
                        "header": {},
                    }
            objects.append(item)
        return _json({"transfer": "basic", "objects": objects, "hash_algo": "sha256"},
                     content_type="application/vnd.git-lfs+json")

    def _lfs_verify(self, req: "_Request", repo_type: str, repo_id: str) -> "_Response":
        repo = self._get_repo(repo_type, repo_id)
        body = req.json() or {}
        oid, size = body.get("oid"), body.get("size")
        if oid not in repo.lfs_oids or len(self._lfs[oid]) != size:
            raise HubHTTPError(404, f"LFS object {oid} (size {size}) was not uploaded to {repo_id}")
        return _json({"success": True}, content_type="application/vnd.git-lfs+json")

    def _handle_cdn(self, req: "_Request") -> "_Response":
        segs = req.segments
        if len(segs) == 2 and segs[0] == "cdn-lfs" and req.method in ("GET", "HEAD"):
            data = self._lfs.get(segs[1])
            if data is None:
                return _Response(404, b"NoSuchKey", {"Content-Type": "text/plain"})
            repo = unquote(req.param("repo") or "")
            filename = req.param("filename") or segs[1]
            return self._serve_content(req, data, {"ETag": f'"{segs[1]}"'},
                                       (repo.split("/", 1)[-1], filename), filename)
        if len(segs) == 3 and segs[0] == "lfs-upload" and req.method == "PUT":
            repo_type, repo_id = segs[1].split("/", 1)
            repo = self._get_repo(repo_type, repo_id)
            oid, expected_size = segs[2], int(req.param("size") or -1)
            actual_sha, actual_size = hashlib.sha256(req.body).hexdigest(), len(req.body)
            if actual_size != expected_size:
                raise HubHTTPError(400, f"LFS upload of {oid}: got {actual_size} bytes, batch announced {expected_size}")
            if actual_sha != oid:
                raise HubHTTPError(400, f"LFS upload sha256 mismatch: url says {oid}, content is {actual_sha}")
            self._lfs[oid] = req.body
            repo.lfs_oids.add(oid)
            return _Response(200, b"", {"ETag": f'"{hashlib.md5(req.body).hexdigest()}"'})
        return _unhandled(req)

    def _commit(self, req: "_Request", repo: Repo, revision: str) -> "_Response":
        lines = [json.loads(line) for line in req.body.splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise HubHTTPError(400, "The first line of the commit payload must be the header")
        header = lines[0]["value"]
        create_pr = _truthy(req.param("create_pr"))

        pr_num = None
        if create_pr:
            parent = self._resolve_or_raise(repo, revision)
        else:
            pr = _PR_REF.match(revision)
            if revision.startswith("refs/heads/"):
                revision = revision[len("refs/heads/") :]
            if pr and int(pr.group(1)) in repo.pull_requests:
                pr_num = int(pr.group(1))
                parent = repo.pull_requests[pr_num]
            elif revision in repo.branches:
                parent = repo.branches[revision]
            elif self._resolve(repo, revision) is not None:
                raise HubHTTPError(400, f"Cannot commit to {revision!r}: not a branch")
            else:
                raise _revision_not_found(revision)
        if header.get("parentCommit") and header["parentCommit"] != parent:
            raise HubHTTPError(412, "A commit has happened since. Please refresh and try again.")

        snapshot = dict(repo.commits[parent].files)
        for line in lines[1:]:
            key, value = line.get("key"), line.get("value") or {}
            path = str(value.get("path", "")).strip("/")
            if not path or ".." in path.split("/") or path.startswith(".git/"):
                raise HubHTTPError(400, f"Invalid path in commit: {value.get('path')!r}")
            if key == "file":
                if value.get("encoding", "base64") != "base64":
                    raise HubHTTPError(400, f"Unsupported encoding {value.get('encoding')!r}")
                snapshot[path] = self._store_regular(path, base64.b64decode(value.get("content", "")))
            elif key == "lfsFile":
                oid = value.get("oid")
                if value.get("algo", "sha256") != "sha256" or oid not in repo.lfs_oids:
                    raise HubHTTPError(
                        400,
                        f"Your push was rejected because an LFS pointer pointed to a file that does not exist: "
                        f"{path} (oid {oid})",
                    )
                size = len(self._lfs[oid])
                if value.get("size") is not None and value["size"] != size:
                    raise HubHTTPError(400, f"LFS file {path}: size {value['size']} != uploaded size {size}")
                snapshot[path] = self._lfs_entry(path, oid, size)
            elif key == "deletedFile":
                if path not in snapshot:
                    raise HubHTTPError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
                del snapshot[path]
            elif key == "deletedFolder":
                doomed = [p for p in snapshot if p.startswith(path + "/")]
                if not doomed:
                    raise HubHTTPError(404, f"A folder with this name doesn't exist: {path}", "EntryNotFound")
                for p in doomed:
                    del snapshot[p]
            else:
                raise HubHTTPError(400, f"Unknown commit operation {key!r}")

        oid = self._new_commit(repo, parent, snapshot, header.get("summary") or "", header.get("description") or "")
        pull_request_url = None
        if create_pr:
            pr_num = repo.next_discussion
            repo.next_discussion += 1
            repo.pull_requests[pr_num] = oid
            pull_request_url = f"{self._url_prefix(repo)}/discussions/{pr_num}"
        elif pr_num is not None:
            repo.pull_requests[pr_num] = oid
        else:
            repo.branches[revision] = oid
        return _json({
            "success": True,
            "commitOid": oid,
            "commitUrl": f"{self._url_prefix(repo)}/commit/{oid}",
            "hookOutput": "",
            "pullRequestUrl": pull_request_url,
        })

    def _branch(self, req: "_Request", repo: Repo, branch: str) -> "_Response":
        if req.method == "DELETE":
            if branch not in repo.branches:
                raise _revision_not_found(branch)
            if branch == "main":
                raise HubHTTPError(403, "Cannot delete the default branch")
            del repo.branches[branch]
            return _json({})
        if branch in repo.branches:
            raise HubHTTPError(409, f"Reference already exists: refs/heads/{branch}")
        start = (req.json() or {}).get("startingPoint") or "main"
        repo.branches[branch] = self._resolve_or_raise(repo, start)
        return _json({})

    def _tag(self, req: "_Request", repo: Repo, arg: str) -> "_Response":
        if req.method == "DELETE":
            if arg not in repo.tags:
                raise _revision_not_found(arg)
            del repo.tags[arg]
            return _json({})
        tag = (req.json() or {}).get("tag")
        if not tag:
            raise HubHTTPError(400, "Missing tag name")
        if tag in repo.tags:
            raise HubHTTPError(409, f"Tag already exists: refs/tags/{tag}")
        repo.tags[tag] = self._resolve_or_raise(repo, arg)
        return _json({})


# ---------------------------------------------------------------------------------------------------------------
# HTTP plumbing
# ---------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class _Request:
    method: str
    raw_path: str
    query: str
    headers: dict[str, str]  # lower-cased names
    body: bytes
    listener: str

    @property
    def segments(self) -> list[str]:
        """Path segments, each percent-decoded (so an encoded `refs%2Fpr%2F1` stays one segment)."""
        return [unquote(s) for s in self.raw_path.strip("/").split("/")] if self.raw_path.strip("/") else []

    @property
    def query_params(self) -> dict[str, list[str]]:
        return parse_qs(self.query, keep_blank_values=True)

    def param(self, name: str) -> str | None:
        values = self.query_params.get(name)
        return values[-1] if values else None

    def json(self) -> Any:
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except ValueError as e:
            raise HubHTTPError(400, f"Invalid JSON body: {e}") from e


@dataclasses.dataclass
class _Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = dataclasses.field(default_factory=dict)


def _json(data: Any, status: int = 200, headers: dict | None = None, content_type: str = "application/json") -> _Response:
    return _Response(status, json.dumps(data).encode(), {"Content-Type": content_type, **(headers or {})})


def _unhandled(req: _Request) -> _Response:
    raise _Unhandled(f"{req.method} {req.raw_path}{'?' + req.query if req.query else ''} ({req.listener})")


class _Unhandled(Exception):
    pass


def _truthy(value: str | None) -> bool:
    return value is not None and value.lower() in ("1", "true", "yes", "on")


def _parse_range(header: str, size: int):
    """Single `bytes=` range -> (start, end) inclusive; None to ignore the header; 'unsatisfiable'."""
    match = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", header)
    if match is None or (not match.group(1) and not match.group(2)):
        return None  # multi-range or garbage: serve the whole file, as servers may
    if match.group(1):
        start = int(match.group(1))
        end = int(match.group(2)) if match.group(2) else size - 1
    else:  # suffix range: last N bytes
        start, end = max(size - int(match.group(2)), 0), size - 1
    if start >= size or start > end:
        return "unsatisfiable"
    return start, min(end, size - 1)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "HubServer/1.0"
    timeout = 60  # idle keep-alive connections are closed after this many seconds

    def log_message(self, format, *args):  # noqa: A002 - silence stderr logging
        pass

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size_line = self.rfile.readline()
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()  # CRLF after each chunk
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _dispatch(self) -> None:
        hub: HubServer = self.server.hub  # type: ignore[attr-defined]
        listener: str = self.server.role  # type: ignore[attr-defined]
        split = urlsplit(self.path)
        fault = hub._take_fault(self.command, unquote(split.path), "request")
        if fault is not None:  # injected: read part of the upload, then hang up without an answer
            length = int(self.headers.get("Content-Length") or 0)
            try:
                if fault.after_bytes and length:
                    self.rfile.read(min(fault.after_bytes, length))
            finally:
                self._hang_up()
            return
        try:
            body = self._read_body()
        except Exception:
            self.close_connection = True
            return
        req = _Request(
            method=self.command,
            raw_path=split.path,
            query=split.query,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            listener=listener,
        )
        try:
            with hub._lock:
                hub.requests.append((req.method, unquote(req.raw_path)))
                try:
                    resp = hub.handle(req)
                except HubHTTPError as e:
                    headers = dict(e.headers)
                    if e.code:
                        headers["X-Error-Code"] = e.code
                    headers["X-Error-Message"] = e.message.splitlines()[0][:500]
                    resp = _json({"error": e.message}, status=e.status, headers=headers)
                except _Unhandled as e:
                    hub.unhandled.append(str(e))
                    resp = _json({"error": f"Route not implemented by HubServer (tests/hub_server.py): {e}"},
                                 status=501)
                except Exception:
                    tb = traceback.format_exc()
                    hub.errors.append(f"{req.method} {req.raw_path}: {tb}")
                    resp = _json({"error": f"HubServer crashed (see server.errors):\n{tb}"}, status=501)
                hub.request_log.append(RequestRecord(req.method, unquote(req.raw_path), req.query, req.headers,
                                                     listener, resp.status))
            fault = hub._take_fault(req.method, unquote(req.raw_path), "response")
            if fault is not None:  # injected: headers and part of the body, then hang up
                self._send(_Response(resp.status, resp.body[: fault.after_bytes], resp.headers),
                           content_length=len(resp.body))
                self._hang_up()
                return
            self._send(resp)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _send(self, resp: _Response, content_length: int | None = None) -> None:
        self.send_response(resp.status)
        for name, value in resp.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(resp.body) if content_length is None else content_length))
        self.end_headers()
        if self.command != "HEAD" and resp.body:
            self.wfile.write(resp.body)
        self.wfile.flush()

    def _hang_up(self) -> None:
        """Close the connection now, as a dropped network would (the client sees a reset or a short body)."""
        self.close_connection = True
        try:
            self.wfile.flush()
        except OSError:
            pass
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _dispatch


class _Listener(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, hub: HubServer, role: str):
        self.hub = hub
        self.role = role
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)
        self.thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05},
                                       name=f"HubServer-{role}-{self.server_address[1]}", daemon=True)

    def process_request(self, request, client_address):
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def stop(self) -> None:
        self.shutdown()  # stop accepting
        self.server_close()
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:  # cut keep-alive connections so pooled clients cannot reach a stopped server
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.thread.join(timeout=5)
