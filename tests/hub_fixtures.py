"""pytest fixtures that point huggingface_hub at the loopback `HubServer` and keep tests off the network.

Use them from a test module with ``from hub_fixtures import *`` (``tests/`` is on ``sys.path`` because pytest's
default "prepend" import mode inserts the directory of a rootdir-less test module), or from a conftest with
``pytest_plugins = ["hub_fixtures"]``.

Fixtures:

* ``hub_server``  a started `HubServer`; for the duration of the test huggingface_hub talks to it when called
  with no ``endpoint`` argument, uses a fresh cache under ``tmp_path``, sends a dummy token, never tries Xet,
  never sends telemetry. At teardown the server is stopped and ``server.check()`` fails the test if a request
  hit a route the fake does not implement or the fake crashed (set ``hub_server.strict = False`` to opt out).
* ``offline``  switches huggingface_hub to offline mode (``HF_HUB_OFFLINE=1`` semantics) for the whole test.
* ``go_offline``  a callable that switches to offline mode in the middle of a test (``go_offline()``).
* ``no_network``  any connection (or DNS lookup) to something other than loopback raises `NetworkAccessBlocked`
  immediately, and the test fails at teardown if one was attempted, even if the error was swallowed. Yields a
  `NetworkGuard` whose ``attempts`` list the refused destinations.

Helpers (usable without the fixtures): ``use_hub_endpoint(monkeypatch, endpoint, hf_home)`` and
``set_offline(monkeypatch, enabled=True)``.
"""

from __future__ import annotations

import importlib
import ipaddress
import os
import socket
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from hub_server import HubServer

__all__ = [
    "HubServer",
    "NetworkAccessBlocked",
    "NetworkGuard",
    "DUMMY_TOKEN",
    "go_offline",
    "hub_server",
    "no_network",
    "offline",
    "set_offline",
    "use_hub_endpoint",
]

DUMMY_TOKEN = "hf_hubserver_dummy_token"

# Module-level copies of `huggingface_hub.constants` values, taken with `from ..constants import X` at import
# time, which patching `constants` alone does not reach (lazy `huggingface_hub.utils` submodules).
_MODULES_WITH_CONSTANT_COPIES = (
    "huggingface_hub.utils._cache_assets",  # HF_ASSETS_CACHE
    "huggingface_hub.utils._cache_manager",  # HF_HUB_CACHE (default of scan_cache_dir)
    "huggingface_hub.utils._git_credential",  # ENDPOINT
)
_COPIED_CONSTANT_NAMES = (
    "ENDPOINT",
    "HUGGINGFACE_CO_URL_TEMPLATE",
    "HF_HOME",
    "HF_HUB_CACHE",
    "HUGGINGFACE_HUB_CACHE",
    "HF_ASSETS_CACHE",
    "HUGGINGFACE_ASSETS_CACHE",
    "HF_XET_CACHE",
    "HF_TOKEN_PATH",
    "HF_HUB_OFFLINE",
)


def _reset_http_state() -> None:
    """Drop huggingface_hub's shared httpx2 client (its pooled keep-alive connections) and HfFileSystem instances."""
    from huggingface_hub.utils import _http

    _http.close_session()
    fs_module = sys.modules.get("huggingface_hub.hf_file_system")
    if fs_module is not None:
        fs_module.HfFileSystem.clear_instance_cache()


def use_hub_endpoint(monkeypatch: pytest.MonkeyPatch, endpoint: str, hf_home: str | os.PathLike) -> None:
    """Point huggingface_hub (already imported or not) at `endpoint`, with a fresh HF_HOME, for one test.

    huggingface_hub 2.4 reads its environment once, into `huggingface_hub.constants`, at import time, and a few
    objects capture values at import too; all of them are patched here (monkeypatch undoes it at teardown):

    * `constants.ENDPOINT`, `constants.HUGGINGFACE_CO_URL_TEMPLATE` (used by `hf_hub_url`),
      `constants.HF_URL_HOSTS` (hosts whose web URLs are parsed, e.g. the create_repo answer);
    * `utils._http._HUB_ORIGINS`: origins to which `/resolve` redirects are followed with the auth header;
    * `hf_api.api`: the module-level `HfApi()` behind `huggingface_hub.create_repo`, `upload_folder`, ...
      (its `endpoint` attribute was fixed at import; `HfApi()` created later read `constants.ENDPOINT`);
    * `huggingface_hub.HUGGINGFACE_CO_URL_TEMPLATE` (lazy re-export) and module-level copies in
      `utils._cache_assets`, `utils._cache_manager`, `utils._git_credential`;
    * cache/token paths (`HF_HOME`, `HF_HUB_CACHE`, `HF_ASSETS_CACHE`, `HF_XET_CACHE`, `HF_TOKEN_PATH`,
      `HF_STORED_TOKENS_PATH`, `AGENT_HARNESSES_PATH`, update-check markers) so nothing touches ~/.cache;
    * `HF_HUB_OFFLINE=False`, `HF_HUB_DISABLE_XET=True`, `HF_HUB_DISABLE_TELEMETRY=True`,
      `HF_HUB_DISABLE_IMPLICIT_TOKEN=False`; `HF_TOKEN` is a dummy token.
    * `utils._detect_agent._registry`: building the User-Agent of the first request otherwise GETs
      `{ENDPOINT}/api/agent-harnesses` once per process (and caches it under HF_HOME); it is preset empty.
    """
    import huggingface_hub
    from huggingface_hub import constants, hf_api
    from huggingface_hub.utils import _detect_agent, _http

    endpoint = endpoint.rstrip("/")
    hf_home = Path(hf_home)
    hub_cache, assets_cache, xet_cache = hf_home / "hub", hf_home / "assets", hf_home / "xet"
    for d in (hub_cache, assets_cache):
        d.mkdir(parents=True, exist_ok=True)

    env = {
        "HF_ENDPOINT": endpoint,
        "HF_HOME": str(hf_home),
        "HF_HUB_CACHE": str(hub_cache),
        "HF_ASSETS_CACHE": str(assets_cache),
        "HF_XET_CACHE": str(xet_cache),
        "HF_TOKEN": DUMMY_TOKEN,
        "HF_HUB_DISABLE_XET": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_UPDATE_CHECK": "1",
        "HF_HUB_OFFLINE": "0",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name in (
        "HUGGINGFACE_HUB_CACHE",
        "HUGGINGFACE_ASSETS_CACHE",
        "HUGGING_FACE_HUB_TOKEN",
        "HF_TOKEN_PATH",
        "HF_HUB_DISABLE_IMPLICIT_TOKEN",
        "HF_OIDC_RESOURCE",
        "HF_OIDC_ID_TOKEN",
        "TRANSFORMERS_OFFLINE",
        "HUGGINGFACE_CO_STAGING",
    ):
        monkeypatch.delenv(name, raising=False)

    old = {name: getattr(constants, name, None) for name in _COPIED_CONSTANT_NAMES}
    new = {
        "ENDPOINT": endpoint,
        "HUGGINGFACE_CO_URL_TEMPLATE": endpoint + "/{repo_id}/resolve/{revision}/{filename}",
        "HF_HOME": str(hf_home),
        "HF_HUB_CACHE": str(hub_cache),
        "HUGGINGFACE_HUB_CACHE": str(hub_cache),
        "HF_ASSETS_CACHE": str(assets_cache),
        "HUGGINGFACE_ASSETS_CACHE": str(assets_cache),
        "HF_XET_CACHE": str(xet_cache),
        "HF_TOKEN_PATH": str(hf_home / "token"),
        "HF_HUB_OFFLINE": False,
    }
    for name, value in new.items():
        monkeypatch.setattr(constants, name, value, raising=False)
    for name, value in {
        "HF_STORED_TOKENS_PATH": str(hf_home / "stored_tokens"),
        "CHECK_FOR_UPDATE_DONE_PATH": str(hf_home / ".check_for_update_done"),
        "CHECK_FOR_SKILL_UPDATE_DONE_PATH": str(hf_home / ".check_for_skill_update_done"),
        "AGENT_HARNESSES_PATH": str(hf_home / ".agent_harnesses.json"),
        "default_cache_path": str(hub_cache),
        "default_assets_cache_path": str(assets_cache),
        "default_xet_cache_path": str(xet_cache),
        "HF_HUB_DISABLE_XET": True,
        "HF_HUB_DISABLE_TELEMETRY": True,
        "HF_HUB_DISABLE_IMPLICIT_TOKEN": False,
        "HF_HUB_DISABLE_UPDATE_CHECK": True,
        "HF_URL_HOSTS": frozenset(constants.HF_URL_HOSTS | {urlsplit(endpoint).hostname}),
    }.items():
        monkeypatch.setattr(constants, name, value, raising=False)

    # Module-level copies of the constants (from `from ..constants import X`).
    for module_name in _MODULES_WITH_CONSTANT_COPIES:
        try:
            importlib.import_module(module_name)
        except ImportError:  # pragma: no cover - layout changed
            pass
    for module_name, module in list(sys.modules.items()):
        if module is None or module is constants or not module_name.startswith("huggingface_hub"):
            continue
        for name in _COPIED_CONSTANT_NAMES:
            if name in vars(module) and old[name] is not None and vars(module)[name] == old[name]:
                monkeypatch.setattr(module, name, new[name])
    monkeypatch.setattr(huggingface_hub, "HUGGINGFACE_CO_URL_TEMPLATE", new["HUGGINGFACE_CO_URL_TEMPLATE"],
                        raising=False)

    monkeypatch.setattr(_http, "_HUB_ORIGINS", frozenset(_http._HUB_ORIGINS | {_http._url_origin(endpoint)}))
    monkeypatch.setattr(hf_api.api, "endpoint", endpoint)
    monkeypatch.setattr(_detect_agent, "_registry", {"standardEnvVars": [], "harnesses": {}})
    _reset_http_state()


def set_offline(monkeypatch: pytest.MonkeyPatch, enabled: bool = True) -> None:
    """Switch huggingface_hub's offline mode in-process (what `HF_HUB_OFFLINE=1` at import time would do).

    In huggingface_hub 2.4 `constants.is_offline_mode()` (also exported as `huggingface_hub.is_offline_mode`)
    returns the module global `constants.HF_HUB_OFFLINE`, and every request made through `get_session()` is
    refused by its request hook with `OfflineModeIsEnabled` when it is true; downloads then fall back to the
    cache. Patching that one global (plus the env var, for code that reads it) is enough.
    """
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", enabled)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1" if enabled else "0")


@pytest.fixture
def hub_server(tmp_path, monkeypatch):
    """A running `HubServer` that plain huggingface_hub calls talk to, with a fresh cache in `tmp_path`."""
    server = HubServer()
    server.start()
    use_hub_endpoint(monkeypatch, server.endpoint, tmp_path / "hf_home")
    try:
        yield server
    finally:
        server.stop()
        _reset_http_state()
    if server.strict:
        server.check()


@pytest.fixture
def offline(monkeypatch):
    """huggingface_hub in offline mode for the whole test."""
    set_offline(monkeypatch)


@pytest.fixture
def go_offline(monkeypatch):
    """Call `go_offline()` to switch huggingface_hub to offline mode mid-test (undone at teardown)."""

    def _go(enabled: bool = True) -> None:
        set_offline(monkeypatch, enabled)

    return _go


class NetworkAccessBlocked(RuntimeError):
    """Raised when a test tries to reach something that is not loopback.

    Deliberately not an OSError, so that libraries that treat connection errors as "offline, use the cache"
    (huggingface_hub does) do not quietly swallow it.
    """


class NetworkGuard:
    def __init__(self) -> None:
        self.attempts: list[str] = []

    @staticmethod
    def is_loopback(host) -> bool:
        if host is None or host == "":
            return True  # getaddrinfo(None, port): local wildcard, used for binding
        if isinstance(host, bytes):
            host = host.decode()
        host = str(host).strip("[]").lower()
        if host == "localhost" or host.endswith(".localhost"):
            return True
        try:
            return ipaddress.ip_address(host.split("%")[0]).is_loopback
        except ValueError:
            return False

    def check(self, what: str, host) -> None:
        if not self.is_loopback(host):
            self.attempts.append(f"{what} {host!r}")
            raise NetworkAccessBlocked(f"test tried to reach a non-loopback address: {what} {host!r}")


@pytest.fixture
def no_network(monkeypatch):
    """Refuse (loudly) any DNS lookup or connection that is not to loopback; fail the test if one was tried."""
    guard = NetworkGuard()
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_create_connection, real_getaddrinfo = socket.create_connection, socket.getaddrinfo

    def _host_of(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple):
            return address[0]
        return None  # AF_UNIX and friends are local

    def connect(self, address):
        guard.check("connect", _host_of(self, address))
        return real_connect(self, address)

    def connect_ex(self, address):
        guard.check("connect_ex", _host_of(self, address))
        return real_connect_ex(self, address)

    def create_connection(address, *args, **kwargs):
        guard.check("create_connection", address[0])
        return real_create_connection(address, *args, **kwargs)

    def getaddrinfo(host, *args, **kwargs):
        guard.check("getaddrinfo", host)
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "create_connection", create_connection)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield guard
    if guard.attempts:
        pytest.fail("non-loopback network access attempted:\n" + "\n".join(guard.attempts), pytrace=False)
