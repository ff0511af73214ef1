"""The control API: a small HTTP server on a Unix socket, served by a daemon process.

Each subsystem registers the resources it owns (the checker process: ``GET /lb``; the VRRP
process will add its instances); ``GET /`` lists them. Answers are JSON built by
:mod:`.schemas`; a resource that cannot be read answers 503 with ``{"error": …}``.

``GET /lb`` reads the backend's table (``read()``) and, when the backend has them, its
counters (``stats()``, plain or ``async``) and its ``version``/``size`` attributes.
"""

from __future__ import annotations

import contextlib
import errno
import inspect
import logging
import os
import socket
import stat
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from pykeepalived import __version__
from pykeepalived.control.client import DEFAULT_SOCKET
from pykeepalived.control.schemas import LbInfo, flatten_stats, index_json, lb_json
from pykeepalived.errors import PykeepalivedError
from pykeepalived.lb.backend import BackendError

if TYPE_CHECKING:
    from pykeepalived.control.schemas import StatsMap
    from pykeepalived.lb.backend import LbBackend

__all__ = [
    "DEFAULT_SOCKET",
    "ControlError",
    "ControlServer",
    "LbResource",
    "Resource",
    "build_app",
]

log = logging.getLogger("pykeepalived.control")


class ControlError(PykeepalivedError):
    """The control socket cannot be served."""


@dataclass(frozen=True, slots=True)
class Resource:
    """One ``GET`` resource: its path, a line about it, and what produces its JSON."""

    path: str
    description: str
    get: Callable[[], Awaitable[dict[str, Any]]]


class LbResource:
    """``GET /lb``: a backend's table (and counters when it has them)."""

    def __init__(self, backend: LbBackend, name: str, reason: str = "") -> None:
        self._backend = backend
        self._name = name
        self._reason = reason

    def resource(self) -> Resource:
        """This as a :class:`Resource` at ``/lb``."""
        return Resource("/lb", "the load-balancer table (ipvsadm -Ln)", self.snapshot)

    async def snapshot(self) -> dict[str, Any]:
        """The table now, as :func:`~pykeepalived.control.schemas.lb_json`."""
        state = await self._backend.read()
        stats: StatsMap | None = None
        get_stats = getattr(self._backend, "stats", None)
        if callable(get_stats):
            result = get_stats()
            stats = flatten_stats(await result if inspect.isawaitable(result) else result)
        version = getattr(self._backend, "version", None)
        size = getattr(self._backend, "size", None)
        info = LbInfo(
            self._name,
            self._reason,
            str(version) if isinstance(version, str | int) else None,
            size if isinstance(size, int) else None,
        )
        return lb_json(state, info, stats)


def _json(data: dict[str, Any], status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


def build_app(resources: list[Resource]) -> web.Application:
    """An aiohttp application serving ``resources`` and the index at ``/``."""
    app = web.Application()

    async def index(request: web.Request) -> web.Response:
        return _json(index_json(__version__, {r.path: r.description for r in resources}))

    def handler(res: Resource) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def get(request: web.Request) -> web.Response:
            try:
                return _json(await res.get())
            except (BackendError, OSError) as exc:
                log.warning("control API: %s failed: %s", res.path, exc)
                return _json({"error": str(exc)}, status=503)

        return get

    app.router.add_get("/", index)
    for res in resources:
        app.router.add_get(res.path, handler(res))
    return app


def _clear_stale(path: str) -> None:
    """Remove a socket left by a dead daemon; refuse when one still answers on it."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise ControlError(f"control socket {path} exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError as exc:
        if exc.errno not in (errno.ECONNREFUSED, errno.ENOENT):
            raise ControlError(f"control socket {path}: {exc.strerror or exc}") from exc
    else:
        raise ControlError(f"control socket {path} is in use by another process")
    finally:
        probe.close()
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


class ControlServer:
    """Serves :class:`Resource` s on a Unix socket (mode 0600) until closed."""

    def __init__(self, path: str, resources: list[Resource] | None = None) -> None:
        self.path = path
        self._resources = list(resources or ())
        self._runner: web.AppRunner | None = None

    def add(self, resource: Resource) -> None:
        """Serve one more resource (before :meth:`start`)."""
        if self._runner is not None:
            raise RuntimeError("resources are added before start()")
        self._resources.append(resource)

    async def start(self) -> None:
        """Listen on :attr:`path` (its directory is created); raises :class:`ControlError`."""
        directory = os.path.dirname(self.path)
        try:
            if directory:
                os.makedirs(directory, mode=0o755, exist_ok=True)
            _clear_stale(self.path)
        except OSError as exc:
            raise ControlError(f"control socket {self.path}: {exc.strerror or exc}") from exc
        runner = web.AppRunner(build_app(self._resources), access_log=None, handle_signals=False)
        await runner.setup()
        try:
            await web.UnixSite(runner, self.path).start()
            os.chmod(self.path, 0o600)
        except OSError as exc:
            await runner.cleanup()
            raise ControlError(f"control socket {self.path}: {exc.strerror or exc}") from exc
        self._runner = runner
        log.info("control API listening on %s", self.path)

    async def aclose(self) -> None:
        """Stop serving and remove the socket."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        await runner.cleanup()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
