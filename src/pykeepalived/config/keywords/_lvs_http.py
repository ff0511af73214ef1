"""``HTTP_GET`` and ``SSL_GET``: their keyword tables and their ``url { … }`` blocks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pykeepalived.config.convert import boolean, flag, nargs, parse_int, string
from pykeepalived.config.diagnostics import did_you_mean
from pykeepalived.config.keywords._lvs_checkers import COMMON, finalize_connected, pending
from pykeepalived.config.keywords._lvs_convert import HEX_DIGITS, uint
from pykeepalived.config.model.lvs import HttpGetCheck, SslGetCheck, UrlSpec
from pykeepalived.config.schema import BlockSchema, Ctx, Invalid, Kw

if TYPE_CHECKING:
    from pykeepalived.config.ast import Stmt

__all__ = ["HTTP_GET", "SSL_GET", "URL"]


def _digest(ctx: Ctx, stmt: Stmt) -> str:
    word = nargs(stmt, 1, 1)[0]
    if len(word) != 32:
        raise Invalid(
            f"digest '{word}' has {len(word)} characters; an MD5 digest has 32 hex digits",
            arg=0,
            hint="compute it with 'genhash'",
        )
    if not all(c in HEX_DIGITS for c in word):
        raise Invalid(f"digest '{word}' is not hexadecimal", arg=0)
    return word.lower()


def _status_codes(ctx: Ctx, stmt: Stmt) -> tuple[tuple[int, int], ...]:
    out: list[tuple[int, int]] = []
    for i, word in enumerate(nargs(stmt, 1)):
        lo_s, dash, hi_s = word.partition("-")
        try:
            lo = int(lo_s)
            hi = int(hi_s) if dash else lo
        except ValueError:
            lo = hi = -1
        if not (100 <= lo <= hi <= 599):
            ctx.error(
                stmt,
                f"invalid HTTP status code '{word}'; ignored",
                arg=i,
                hint="write N or A-B with codes 100..599",
            )
            continue
        out.append((lo, hi))
    return tuple(out)


def _merge_ranges(ranges: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return tuple(out)


_REGEX_OPTIONS = (
    "allow_empty_class",
    "alt_bsux",
    "auto_callout",
    "caseless",
    "dollar_endonly",
    "dotall",
    "dupnames",
    "extended",
    "firstline",
    "match_unset_backref",
    "multiline",
    "never_ucp",
    "never_utf",
    "no_auto_capture",
    "no_auto_possess",
    "no_dotstar_anchor",
    "no_start_optimize",
    "ucp",
    "ungreedy",
    "utf",
    "never_backslash_c",
    "alt_circumflex",
    "alt_verbnames",
    "use_offset_limit",
)


def _regex_options(ctx: Ctx, stmt: Stmt) -> tuple[str, ...]:
    out: list[str] = []
    for i, word in enumerate(nargs(stmt, 1)):
        if word in _REGEX_OPTIONS:
            out.append(word)
        else:
            ctx.error(
                stmt,
                f"unknown regex option '{word}'; ignored",
                arg=i,
                hint=did_you_mean(word, _REGEX_OPTIONS),
            )
    return tuple(out)


def _regex_stack(ctx: Ctx, stmt: Stmt) -> tuple[int, int]:
    args = stmt.args
    if len(args) != 2:
        raise Invalid("'regex_stack' needs a start and a max size")
    start = parse_int(args[0], 0, None, 0, "regex stack start")
    top = parse_int(args[1], 0, None, 1, "regex stack max")
    if start > top:
        raise Invalid("regex stack start exceeds its max", arg=0)
    return start, top


def _http_protocol(ctx: Ctx, stmt: Stmt) -> str:
    word = nargs(stmt, 1, 1)[0]
    if word in ("1.0", "1.1"):
        return word
    if word in ("1.0C", "1.0c"):
        return "1.0C"
    raise Invalid(f"invalid http_protocol '{word}'", arg=0, hint="expected 1.0, 1.0C or 1.1")


def _finalize_url(ctx: Ctx, stmt: Stmt, values: dict[str, Any], src: dict[str, Stmt]) -> bool:
    if "path" not in values:
        ctx.error(stmt, "url has no 'path'; the url is ignored", hint="add 'path /'")
        return False
    codes = values.pop("status_code", None)
    if codes is not None:
        merged = _merge_ranges([r for rs in codes for r in rs])
        if merged:
            values["status_codes"] = merged
    regex_params = [
        k
        for k in (
            "regex_no_match",
            "regex_options",
            "regex_stack",
            "regex_min_offset",
            "regex_max_offset",
        )
        if k in values
    ]
    if "regex" not in values and regex_params:
        ctx.warning(src[regex_params[0]], "regex parameters without 'regex'; ignored")
        for k in regex_params:
            del values[k]
    lo, hi = values.get("regex_min_offset"), values.get("regex_max_offset")
    if lo is not None and hi is not None and lo > hi:
        ctx.warning(
            src["regex_min_offset"],
            f"regex_min_offset {lo} is above regex_max_offset {hi}; both are ignored",
        )
        del values["regex_min_offset"], values["regex_max_offset"]
    return True


URL = BlockSchema(
    "url",
    UrlSpec,
    [
        Kw("path", string),
        Kw("digest", _digest),
        Kw("status_code", _status_codes, multi=True),
        Kw("virtualhost", string),
        Kw("regex", string),
        Kw("regex_no_match", flag),
        Kw("regex_options", _regex_options),
        Kw("regex_stack", _regex_stack),
        Kw("regex_min_offset", uint(0, None)),
        Kw("regex_max_offset", uint(0, None)),
        Kw("tls_compliant", flag),
    ],
    finalize=_finalize_url,
    derived=frozenset({"status_code"}),
)


def _finalize_http(ctx: Ctx, stmt: Stmt, values: dict[str, Any], src: dict[str, Stmt]) -> bool:
    if not values.get("urls"):
        ctx.error(
            stmt,
            f"{stmt.keyword} has no valid 'url' block; the checker is ignored",
            hint="add url { path / }",
        )
        return False
    return finalize_connected(ctx, stmt, values, src)


def _http_schema(name: str, cls: type) -> BlockSchema:
    return BlockSchema(
        name,
        pending(cls),
        [
            *COMMON,
            Kw("url", block=URL, field="urls", multi=True),
            Kw("http_protocol", _http_protocol),
            Kw("virtualhost", string),
            Kw("fast_recovery", boolean),
            Kw("enable_sni", boolean),
            Kw("sni_name", string),
            Kw("tls_compliant", boolean),
        ],
        finalize=_finalize_http,
    )


HTTP_GET = _http_schema("HTTP_GET", HttpGetCheck)
SSL_GET = _http_schema("SSL_GET", SslGetCheck)
