"""The pure part of SEND_EXPECT_CHECK: does an answer match ``expect``, and ``%h``.

Matching follows Piranha's nanny: a plain ``expect`` must be the beginning of the answer
(nanny compares the first bytes with ``strncmp``); with ``use_regex`` the pattern may match
anywhere in what was received so far (``regexec``). The answer arrives in pieces, so
:class:`ExpectMatcher` is fed bytes and says as early as it can whether the answer matches:
a plain ``expect`` is decided as soon as enough bytes arrived (or one differs), a regex as
soon as it matches, or at the end of the answer, or once :data:`ANSWER_LIMIT` bytes arrived.
"""

from __future__ import annotations

import enum
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["ANSWER_LIMIT", "ExpectMatcher", "Verdict", "expand_host", "preview"]

ANSWER_LIMIT = 65536
"""Bytes of an answer looked at; a regex that has not matched by then has failed."""


class Verdict(enum.Enum):
    """Where the match stands."""

    PENDING = "pending"
    MATCH = "match"
    MISMATCH = "mismatch"


class ExpectMatcher:
    """Decides, as the answer's bytes arrive, whether they match ``expect``."""

    def __init__(self, expect: bytes, *, regex: bool = False, limit: int = ANSWER_LIMIT) -> None:
        self.expect = expect
        self._regex = re.compile(expect) if regex else None
        self._limit = limit
        self._buf = bytearray()
        self.verdict = Verdict.PENDING
        """The decision so far; it never changes once it is not PENDING."""
        if not expect:
            self.verdict = Verdict.MATCH

    @property
    def received(self) -> bytes:
        """What was fed (at most ``limit`` bytes)."""
        return bytes(self._buf)

    def feed(self, data: bytes) -> Verdict:
        """Add the next bytes of the answer; the verdict so far."""
        if self.verdict is not Verdict.PENDING or not data:
            return self.verdict
        room = self._limit - len(self._buf)
        self._buf += data[:room]
        buf = self._buf
        if self._regex is not None:
            if self._regex.search(buf):
                self.verdict = Verdict.MATCH
            elif len(buf) >= self._limit:
                self.verdict = Verdict.MISMATCH
        elif len(buf) >= len(self.expect):
            self.verdict = Verdict.MATCH if buf.startswith(self.expect) else Verdict.MISMATCH
        elif not self.expect.startswith(buf):
            self.verdict = Verdict.MISMATCH
        return self.verdict

    def close(self) -> Verdict:
        """The answer ended (connection closed, output finished, time is up): a match that
        has not happened by now never will."""
        if self.verdict is Verdict.PENDING:
            self.verdict = Verdict.MISMATCH
        return self.verdict

    def describe(self) -> str:
        """One line for the check's result: what was expected and what came."""
        how = "a match of" if self._regex is not None else "an answer starting with"
        got = preview(self.received) if self._buf else "nothing"
        if self.verdict is Verdict.MATCH:
            return f"got {got}"
        return f"expected {how} {preview(self.expect)}, got {got}"


def preview(data: bytes, limit: int = 60) -> str:
    """``data`` as a short, printable, quoted string for logs."""
    text = repr(data[:limit])[1:]  # b'...' -> '...'
    return text + ("…" if len(data) > limit else "")


def expand_host(argv: Sequence[str], host: str) -> tuple[str, ...]:
    """``argv`` with every ``%h`` replaced by ``host`` (Piranha's send_program token)."""
    return tuple(word.replace("%h", host) for word in argv)
