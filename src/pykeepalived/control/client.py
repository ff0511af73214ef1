"""A blocking client of the control API (what ``kactl`` uses): one ``GET`` on a Unix socket.

Deliberately stdlib-only (``http.client``) so that ``kactl`` starts fast and needs no event
loop.
"""

from __future__ import annotations

import http.client
import json
import socket
from typing import Any

from pykeepalived.errors import PykeepalivedError

__all__ = ["DEFAULT_SOCKET", "ControlClientError", "get_json"]

DEFAULT_SOCKET = "/run/pykeepalived/checker.sock"
"""The checker process's control socket."""


class ControlClientError(PykeepalivedError):
    """The daemon could not be asked, or answered with an error."""


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def get_json(socket_path: str, path: str, timeout: float = 5.0) -> dict[str, Any]:
    """``GET path`` from the daemon listening on ``socket_path``, decoded."""
    conn = _UnixConnection(socket_path, timeout)
    try:
        conn.request("GET", path, headers={"Accept": "application/json"})
        response = conn.getresponse()
        body = response.read()
    except FileNotFoundError as exc:
        raise ControlClientError(
            f"{socket_path}: no such socket (is the checker process running?)"
        ) from exc
    except ConnectionRefusedError as exc:
        raise ControlClientError(f"{socket_path}: nobody is listening") from exc
    except (OSError, http.client.HTTPException) as exc:
        raise ControlClientError(f"{socket_path}: {exc}") from exc
    finally:
        conn.close()
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise ControlClientError(f"{path}: the answer is not JSON ({exc})") from exc
    if response.status != 200:
        error = data.get("error") if isinstance(data, dict) else None
        raise ControlClientError(f"{path}: {error or f'HTTP {response.status}'}")
    if not isinstance(data, dict):
        raise ControlClientError(f"{path}: the answer is not a JSON object")
    return data
