"""Parse, build and validate: a keepalived.conf file to a typed :class:`Config` plus diagnostics."""

from __future__ import annotations

import contextlib
import gc
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pykeepalived.config import parser
from pykeepalived.config.ast import Stmt
from pykeepalived.config.diagnostics import Category, Diagnostic, Diagnostics
from pykeepalived.config.host import Host, check_host
from pykeepalived.config.keywords.root import PARTS
from pykeepalived.config.lexer import INCLUDE_CHECKS, Lexer, LexOptions, SourceFile
from pykeepalived.config.model.globals import GlobalDefs
from pykeepalived.config.model.root import Config
from pykeepalived.config.schema import BlockSchema, Ctx, SourceMap, build_block, register_blocks
from pykeepalived.config.validate import lvs as validate_lvs
from pykeepalived.config.validate import vrrp as validate_vrrp
from pykeepalived.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from pykeepalived.config.lexer import RawLine

__all__ = ["LoadOptions", "LoadResult", "default_config_id", "load", "load_text"]


def default_config_id() -> str:
    """keepalived's default ``-i``: the host name up to the first dot."""
    return os.uname().nodename.split(".", 1)[0]


@dataclass(frozen=True, slots=True)
class LoadOptions:
    """Command-line settings that change how a configuration is read."""

    host: Host | None = None
    """Also check against this host (interfaces that do not exist, script security)."""
    config_id: str | None = None
    """``-i/--config-id``; None means the short host name."""
    all_config: bool = False
    """``-e/--all-config``: every include must exist and be readable."""
    random_seed: int | None = None
    environ: dict[str, str] | None = None


@dataclass
class LoadResult:
    """The outcome of loading: the model (None only when nothing could be read) and diagnostics."""

    config: Config | None
    diagnostics: list[Diagnostic]
    files: list[SourceFile] = field(default_factory=list)
    srcmap: SourceMap = field(default_factory=SourceMap)

    @property
    def ok(self) -> bool:
        """True when there is a model and no error."""
        return self.config is not None and not any(d.severity == "error" for d in self.diagnostics)

    def raise_for_errors(self) -> None:
        """Raise :class:`ConfigError` (carrying every diagnostic) if there is an error."""
        if not self.ok:
            raise ConfigError(self.diagnostics)

    @property
    def worst(self) -> Category:
        """The highest error category among the errors (OK when there are none)."""
        cats = [d.category for d in self.diagnostics if d.severity == "error"]
        return max(cats, default=Category.OK)


def _all_blocks() -> Iterator[BlockSchema]:
    seen: set[int] = set()
    todo = list(PARTS.values())
    while todo:
        schema = todo.pop()
        if id(schema) in seen:
            continue
        seen.add(id(schema))
        yield schema
        todo.extend(kw.block for kw in schema.table.values() if kw.block is not None)


register_blocks(_all_blocks())


def _lexer(options: LoadOptions, diags: Diagnostics) -> Lexer:
    lex_opts = LexOptions(
        config_id=options.config_id if options.config_id is not None else default_config_id(),
        include_checks=frozenset(INCLUDE_CHECKS) if options.all_config else frozenset(),
        random_seed=options.random_seed,
        environ=options.environ,
    )
    return Lexer(lex_opts, diags)


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector: loading allocates ~10 objects per line and creates
    no reference cycles, so collections during a load only cost time (a third of it)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def load(path: str, options: LoadOptions | None = None) -> LoadResult:
    """Load the configuration file ``path`` and everything it includes."""
    with _no_gc():
        return _load(path, options)


def _load(path: str, options: LoadOptions | None) -> LoadResult:
    options = options or LoadOptions()
    diags = Diagnostics()
    lexer = _lexer(options, diags)
    if lexer.read_file(path) is None:
        return LoadResult(None, diags.items, lexer.files)
    sf = lexer.files.pop()
    return _finish(lexer._lex_file(sf), lexer, diags, sf, options)


def load_text(text: str, path: str = "<string>", options: LoadOptions | None = None) -> LoadResult:
    """Load a configuration given as text (includes are relative to the current directory)."""
    with _no_gc():
        return _load_text(text, path, options)


def _load_text(text: str, path: str, options: LoadOptions | None) -> LoadResult:
    options = options or LoadOptions()
    diags = Diagnostics()
    lexer = _lexer(options, diags)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    sf = SourceFile(path, lines)
    return _finish(lexer._lex_file(sf), lexer, diags, sf, options)


def _finish(
    lines: Iterable[RawLine],
    lexer: Lexer,
    diags: Diagnostics,
    main: SourceFile,
    options: LoadOptions,
) -> LoadResult:
    tree = parser.parse(lines, diags)
    files = [main, *lexer.files]
    ctx = Ctx(diags)
    config = build_config(ctx, tree, main)
    validate_vrrp.validate(config, ctx)
    validate_lvs.validate(config, ctx)
    if options.host is not None:
        check_host(config, ctx, options.host)
    diags.items.sort(key=lambda d: _file_order(files, d))
    return LoadResult(config, diags.items, files, ctx.srcmap)


def _file_order(files: list[SourceFile], d: Diagnostic) -> tuple[int, int, int]:
    for i, f in enumerate(files):
        if f.path == d.location.path:
            return (i, d.location.line, d.location.column)
    return (-1, d.location.line, d.location.column)


def build_config(ctx: Ctx, tree: list[Stmt], main: SourceFile) -> Config:
    """Dispatch the top-level statements to the parts of the model and build each part."""
    owner: dict[str, str] = {}
    for part, schema in PARTS.items():
        for name in schema.table:
            owner[name] = part
    buckets: dict[str, list[Stmt]] = {part: [] for part in PARTS}
    unknown: list[Stmt] = []
    for stmt in tree:
        where = owner.get(stmt.keyword)
        if where is None:
            unknown.append(stmt)
        else:
            buckets[where].append(stmt)
    combined = BlockSchema("<root>", dict, [kw for s in PARTS.values() for kw in s.table.values()])
    root_stmt = Stmt("<root>", [], main, 0, 0)
    if unknown:
        root_stmt.block = unknown
        build_block(ctx, combined, root_stmt)  # reports each unknown keyword once
    gdefs = [s for s in buckets["global_defs"] if s.block is not None]
    if len(gdefs) > 1:  # several global_defs blocks add up, as in keepalived
        merged = Stmt(gdefs[0].keyword, gdefs[0].args, gdefs[0].file, gdefs[0].lineno, gdefs[0].tok)
        merged.block = [child for s in gdefs for child in s.block or ()]
        buckets["global_defs"] = [merged]
    built: dict[str, Any] = {}
    for part, schema in PARTS.items():
        root_stmt = Stmt("<root>", [], main, 0, 0)
        root_stmt.block = buckets[part]
        built[part] = build_block(ctx, schema, root_stmt)
    globals_ = built["global_defs"].get("global_defs") or GlobalDefs()
    return Config(root=built["root"], global_defs=globals_, vrrp=built["vrrp"], lvs=built["lvs"])
