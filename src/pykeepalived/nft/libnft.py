"""A small typed adapter over libnftables (the C library behind ``nft``), through ctypes.

One :class:`Nft` holds one ``nft_ctx`` with buffered output and error streams. Each
:meth:`Nft.run` is one call of ``nft_run_cmd_from_buffer``: every command of the call goes
to the kernel in one netlink batch, so the call is one atomic transaction (all or
nothing). Commands are either JSON objects (``libnftables-json(5)``: a list of command
objects such as ``{"add": {"table": {...}}}``; the result is the decoded JSON output, ``{}``
when there is none) or native ``nft`` syntax (a string; the result is the text output).
A failure raises :class:`NftError` carrying the library's own message.

Network namespace: a context acts in the namespace its creator was in, because
libnftables opens its netlink socket in ``nft_ctx_new`` (checked with 1.0.6: a context
made before a ``setns`` still sees the old namespace; one made after sees the new one).
Interface names in commands are resolved in the calling thread's namespace. So create
the :class:`Nft` in the namespace you mean, e.g. in a process started with ``ip netns
exec`` (what the daemon and the tests do), and use it from that namespace only. A
context is not thread-safe: one owner at a time.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
from collections.abc import Mapping, Sequence
from typing import Any, overload

from pykeepalived.errors import PykeepalivedError

__all__ = ["LIBRARY", "Nft", "NftError", "NftUnavailable"]

LIBRARY = "libnftables.so.1"
"""The soname loaded by default (Debian package ``libnftables1``)."""

_OUTPUT_JSON = 1 << 4
_OUTPUT_ECHO = 1 << 5

JsonCommand = Mapping[str, Any]


class NftError(PykeepalivedError):
    """libnftables refused or failed a command (message: the library's error output)."""

    def __init__(self, message: str, *, commands: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.commands = commands
        """The input of the failed call (JSON or nft syntax), for logs."""


class NftUnavailable(NftError):
    """libnftables cannot be loaded or cannot create a context."""


def _load(name: str) -> ctypes.CDLL:
    try:
        lib = ctypes.CDLL(name, use_errno=True)
    except OSError as exc:
        found = ctypes.util.find_library("nftables") if name == LIBRARY else None
        if found is None or found == name:
            raise NftUnavailable(f"cannot load {name}: {exc}") from exc
        try:
            lib = ctypes.CDLL(found, use_errno=True)
        except OSError as exc2:
            raise NftUnavailable(f"cannot load {name} or {found}: {exc2}") from exc2
    vp, cp, ui, i = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_uint, ctypes.c_int
    signatures: dict[str, tuple[list[Any], Any]] = {
        "nft_ctx_new": ([ctypes.c_uint32], vp),
        "nft_ctx_free": ([vp], None),
        "nft_ctx_output_get_flags": ([vp], ui),
        "nft_ctx_output_set_flags": ([vp, ui], None),
        "nft_ctx_buffer_output": ([vp], i),
        "nft_ctx_buffer_error": ([vp], i),
        "nft_ctx_get_output_buffer": ([vp], cp),
        "nft_ctx_get_error_buffer": ([vp], cp),
        "nft_run_cmd_from_buffer": ([vp, cp], i),
    }
    for fname, (args, res) in signatures.items():
        try:
            fn = getattr(lib, fname)
        except AttributeError as exc:
            raise NftUnavailable(f"{name} has no {fname}") from exc
        fn.argtypes = args
        fn.restype = res
    return lib


class Nft:
    """One libnftables context (see the module docstring). Use as a context manager, or
    call :meth:`close`."""

    def __init__(self, library: str = LIBRARY) -> None:
        self._lib = _load(library)
        ctx = self._lib.nft_ctx_new(0)
        if not ctx:
            raise NftUnavailable("nft_ctx_new failed")
        self._ctx: int | None = ctx
        if self._lib.nft_ctx_buffer_output(ctx) != 0 or self._lib.nft_ctx_buffer_error(ctx) != 0:
            self.close()
            raise NftUnavailable("cannot buffer libnftables output")
        self._base_flags = int(self._lib.nft_ctx_output_get_flags(ctx)) & ~(
            _OUTPUT_JSON | _OUTPUT_ECHO
        )

    def __enter__(self) -> Nft:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Free the context (idempotent)."""
        if self._ctx is not None:
            self._lib.nft_ctx_free(self._ctx)
            self._ctx = None

    @overload
    def run(self, commands: Sequence[JsonCommand], *, echo: bool = False) -> dict[str, Any]: ...

    @overload
    def run(self, commands: str, *, echo: bool = False) -> str: ...

    def run(
        self, commands: Sequence[JsonCommand] | str, *, echo: bool = False
    ) -> dict[str, Any] | str:
        """Run ``commands`` as one transaction; return what the library printed (decoded
        JSON for JSON input, text for nft syntax). ``echo`` also prints what was committed
        (with handles). Raises :class:`NftError` with the library's message."""
        as_json = not isinstance(commands, str)
        text = json.dumps({"nftables": list(commands)}) if as_json else str(commands)
        out = self._call(text, json_output=as_json, echo=echo)
        if not as_json:
            return out
        if not out.strip():
            return {}
        try:
            decoded = json.loads(out)
        except ValueError as exc:
            raise NftError(f"libnftables printed invalid JSON: {exc}", commands=text) from exc
        if not isinstance(decoded, dict):
            raise NftError("libnftables printed JSON that is not an object", commands=text)
        return decoded

    def _call(self, text: str, *, json_output: bool, echo: bool) -> str:
        ctx = self._ctx
        if ctx is None:
            raise NftError("the libnftables context is closed", commands=text)
        flags = self._base_flags | (_OUTPUT_JSON if json_output else 0)
        if echo:
            flags |= _OUTPUT_ECHO
        lib = self._lib
        lib.nft_ctx_output_set_flags(ctx, flags)
        rc = lib.nft_run_cmd_from_buffer(ctx, text.encode())
        # reading a buffer rewinds it: each call sees only its own output and errors
        out = (lib.nft_ctx_get_output_buffer(ctx) or b"").decode(errors="replace")
        err = (lib.nft_ctx_get_error_buffer(ctx) or b"").decode(errors="replace")
        if rc != 0:
            raise NftError(err.strip() or f"libnftables failed (code {rc})", commands=text)
        return out
