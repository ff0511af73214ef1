"""Keyword tables: how each block's statements become fields of a typed model object.

A :class:`BlockSchema` lists the keywords (:class:`Kw`) of one block. A keyword is either a
*value* keyword (a converter turns the statement into a value), a *list* keyword (a converter
turns the statement's ``{ … }`` items into a tuple) or a *block* keyword (a nested schema
builds a model object). :func:`build_block` applies a schema to a statement; it reports every
problem to the :class:`Ctx` and never raises.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pykeepalived.config.ast import Stmt
from pykeepalived.config.diagnostics import Category, Diagnostics, Severity, did_you_mean

__all__ = [
    "BlockSchema",
    "Converter",
    "Ctx",
    "Finalizer",
    "Invalid",
    "Kw",
    "SourceMap",
    "Status",
    "alias",
    "build_block",
]


class Invalid(Exception):
    """Raised by a converter: the statement is wrong; the keyword is then ignored."""

    def __init__(
        self,
        message: str,
        *,
        arg: int | None = None,
        hint: str | None = None,
        category: Category = Category.INVALID,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.arg = arg
        """Index of the offending argument (None: the keyword itself)."""
        self.hint = hint
        self.category = category


class Status(enum.Enum):
    """What pykeepalived does with a keyword it accepts."""

    SUPPORTED = "supported"
    NOT_IMPLEMENTED = "not implemented yet"
    NO_EFFECT = "no effect"


@dataclass
class SourceMap:
    """Where each model object (by identity) and each of its fields came from.

    ``keep`` holds every object added through :meth:`add`, so that an id is never reused by a
    new object while the map lives (a dropped block's children would otherwise be freed).
    """

    objects: dict[int, tuple[Stmt, dict[str, Stmt]]] = field(default_factory=dict)
    keep: list[object] = field(default_factory=list)

    def add(self, obj: object, stmt: Stmt, fields: dict[str, Stmt]) -> None:
        """Remember that ``obj`` was built from the block ``stmt``."""
        self.objects[id(obj)] = (stmt, fields)
        self.keep.append(obj)

    def stmt(self, obj: object, fieldname: str | None = None) -> Stmt | None:
        """The statement that set ``fieldname`` of ``obj`` (or that opened ``obj``'s block)."""
        entry = self.objects.get(id(obj))
        if entry is None:
            return None
        if fieldname is not None and fieldname in entry[1]:
            return entry[1][fieldname]
        return entry[0]


@dataclass
class Ctx:
    """What converters and finalizers report to; also remembers where objects came from."""

    diags: Diagnostics
    srcmap: SourceMap = field(default_factory=SourceMap)

    def report(
        self,
        severity: Severity,
        stmt: Stmt | None,
        message: str,
        *,
        arg: int | None = None,
        hint: str | None = None,
        category: Category | None = None,
    ) -> None:
        """Report at ``stmt``'s keyword, or at its argument number ``arg``."""
        if stmt is None:
            self.diags.add(severity, None, message, hint=hint, category=category)
            return
        value: str | None = None
        if stmt.rewritten:
            value = stmt.keyword if arg is None or arg >= len(stmt.args) else stmt.args[arg]
        elif arg is not None and arg >= len(stmt.args):
            arg = len(stmt.args) - 1 if stmt.args else None
        self.diags.add(
            severity,
            stmt.where,
            message,
            token=stmt.column_token(arg),
            value=value,
            hint=hint,
            category=category,
        )

    def error(
        self,
        stmt: Stmt | None,
        message: str,
        *,
        arg: int | None = None,
        hint: str | None = None,
        category: Category = Category.INVALID,
    ) -> None:
        """Report an error (the object or value concerned is dropped or defaulted)."""
        self.report("error", stmt, message, arg=arg, hint=hint, category=category)

    def warning(
        self,
        stmt: Stmt | None,
        message: str,
        *,
        arg: int | None = None,
        hint: str | None = None,
        category: Category = Category.WARNING,
    ) -> None:
        """Report a warning (the configuration is still usable as written)."""
        self.report("warning", stmt, message, arg=arg, hint=hint, category=category)

    def where(self, obj: object, fieldname: str | None = None) -> Stmt | None:
        """Shortcut for :meth:`SourceMap.stmt`."""
        return self.srcmap.stmt(obj, fieldname)


Converter = Callable[[Ctx, Stmt], Any]
"""Turns one statement into a value; raises :class:`Invalid` when it cannot."""

Finalizer = Callable[[Ctx, Stmt, dict[str, Any], dict[str, Stmt]], bool]
"""Derives defaults and checks one block's values in place; returns False to drop the block."""

HeaderConverter = Callable[[Ctx, Stmt], dict[str, Any]]
"""Turns a block's own arguments (``virtual_server IP PORT {``) into field values."""


@dataclass(frozen=True, slots=True)
class Kw:
    """One keyword of a block."""

    name: str
    conv: Converter | None = None
    """For value and list keywords."""
    block: BlockSchema | None = None
    """For keywords that open a sub-block built into a model object."""
    field: str = ""
    """The model field it sets (default: the keyword name)."""
    multi: bool = False
    """Every occurrence is appended to a tuple field (instead of the last one winning)."""
    status: Status = Status.SUPPORTED
    note: str = ""
    """Why it has no effect / what is missing (appended to the status warning)."""
    deprecated: str | None = None
    """A deprecation message telling what to write instead."""
    list_block: bool = False
    """The converter reads the statement's ``{ … }`` block (a list of items)."""

    @property
    def target(self) -> str:
        """The model field name."""
        return self.field or self.name


def alias(
    name: str,
    of: Kw,
    *,
    deprecated: str | None = None,
    status: Status | None = None,
    note: str = "",
) -> Kw:
    """Another spelling of ``of`` (same converter and field)."""
    return Kw(
        name,
        of.conv,
        of.block,
        of.target,
        of.multi,
        of.status if status is None else status,
        note or of.note,
        deprecated,
        of.list_block,
    )


@dataclass(slots=True)
class BlockSchema:
    """The keyword table of one block and the model class it builds."""

    name: str
    model: Callable[..., Any]
    keywords: Iterable[Kw] = ()
    header: HeaderConverter | None = None
    finalize: Finalizer | None = None
    status: Status = Status.SUPPORTED
    derived: frozenset[str] = frozenset()
    """Keyword targets that ``finalize`` consumes (they are not fields of the model)."""
    table: dict[str, Kw] = field(default_factory=dict, init=False, repr=False)
    plain: dict[str, tuple[Converter, str]] = field(default_factory=dict, init=False, repr=False)
    """Keywords that just convert a value into a field (the fast path of :func:`build_block`)."""

    def __post_init__(self) -> None:
        for kw in self.keywords:
            if kw.name in self.table:
                raise ValueError(f"{self.name}: keyword {kw.name!r} listed twice")
            self.table[kw.name] = kw
            if (
                kw.conv is not None
                and kw.block is None
                and not kw.multi
                and not kw.list_block
                and kw.status is Status.SUPPORTED
                and kw.deprecated is None
            ):
                self.plain[kw.name] = (kw.conv, kw.target)

    def describe(self, stmt: Stmt) -> str:
        """How diagnostics name an instance of this block: ``vrrp_instance VI_1``."""
        return f"{self.name} {' '.join(stmt.args)}".rstrip()


_ELSEWHERE: dict[str, list[str]] = {}
_TOP = "the top level (outside any block)"


def register_blocks(schemas: Iterable[BlockSchema]) -> None:
    """Index keywords by block, so that a keyword in the wrong block gets a useful hint."""
    _ELSEWHERE.clear()
    for schema in schemas:
        for name in schema.table:
            blocks = _ELSEWHERE.setdefault(name, [])
            if schema.name not in blocks:
                blocks.append(schema.name)


def _unknown(ctx: Ctx, schema: BlockSchema, parent: Stmt, stmt: Stmt) -> None:
    where = schema.describe(parent) if parent.keyword != "<root>" else _TOP
    hint = did_you_mean(stmt.keyword, schema.table)
    elsewhere = [b for b in _ELSEWHERE.get(stmt.keyword, ()) if b != schema.name]
    if elsewhere:
        places = " or ".join(_TOP if b == "<root>" else b for b in elsewhere)
        hint = f"'{stmt.keyword}' belongs in {places}"
    what = "block" if stmt.block is not None else "keyword"
    msg = f"unknown {what} '{stmt.keyword}' in {where}"
    if stmt.block is not None:
        msg += "; the whole block is ignored"
    ctx.error(stmt, msg, hint=hint, category=Category.UNKNOWN_KEYWORD)


def _status_warning(ctx: Ctx, kw: Kw, stmt: Stmt) -> None:
    if kw.deprecated is not None:
        ctx.warning(
            stmt,
            f"'{stmt.keyword}' is deprecated",
            hint=kw.deprecated,
            category=Category.DEPRECATED,
        )
    if kw.status is Status.NOT_IMPLEMENTED:
        note = f" ({kw.note})" if kw.note else ""
        ctx.warning(stmt, f"'{stmt.keyword}' is accepted, not implemented yet{note}")
    elif kw.status is Status.NO_EFFECT:
        note = f": {kw.note}" if kw.note else ""
        ctx.warning(stmt, f"'{stmt.keyword}' is accepted, has no effect in pykeepalived{note}")


def _set_again(ctx: Ctx, stmt: Stmt, first: Stmt) -> None:
    ctx.warning(
        stmt,
        f"'{stmt.keyword}' is set again (line {first.lineno} set it first); the last one wins",
    )


def build_block(
    ctx: Ctx, schema: BlockSchema, stmt: Stmt, extra: Mapping[str, Any] | None = None
) -> Any:
    """Build the model object for the block opened by ``stmt``, or None if it is dropped."""
    values: dict[str, Any] = dict(extra) if extra else {}
    src: dict[str, Stmt] = {}
    if schema.header is not None:
        try:
            values.update(schema.header(ctx, stmt))
        except Invalid as exc:
            ctx.error(stmt, exc.message, arg=exc.arg, hint=exc.hint, category=exc.category)
            return None
    table = schema.table
    plain = schema.plain
    for child in stmt.block or ():
        fast = plain.get(child.keyword)
        if fast is not None and child.block is None:  # most statements: convert and store
            conv, target = fast
            try:
                value = conv(ctx, child)
            except Invalid as exc:
                ctx.error(child, exc.message, arg=exc.arg, hint=exc.hint, category=exc.category)
                continue
            if target in src:
                _set_again(ctx, child, src[target])
            values[target] = value
            src[target] = child
            continue
        kw = table.get(child.keyword)
        if kw is None:
            _unknown(ctx, schema, stmt, child)
            continue
        if kw.status is not Status.SUPPORTED or kw.deprecated is not None:
            _status_warning(ctx, kw, child)
        target = kw.field or kw.name
        if kw.block is not None:
            if child.block is None:
                ctx.error(child, f"'{child.keyword}' needs a {{ … }} block")
                continue
            value = build_block(ctx, kw.block, child)
            if value is None:
                continue
        else:
            if child.block is not None and not kw.list_block:
                ctx.error(
                    child, f"'{child.keyword}' does not take a {{ … }} block; the block is ignored"
                )
            try:
                value = kw.conv(ctx, child)  # type: ignore[misc]
            except Invalid as exc:
                ctx.error(child, exc.message, arg=exc.arg, hint=exc.hint, category=exc.category)
                continue
        if kw.multi:
            values.setdefault(target, []).append(value)
        elif kw.list_block and target in values:
            values[target] = (*values[target], *value)  # a second block adds to the first
        else:
            if target in src and not kw.list_block:
                _set_again(ctx, child, src[target])
            values[target] = value
        src[target] = child
    if schema.finalize is not None and not schema.finalize(ctx, stmt, values, src):
        return None
    for key, value in values.items():
        if type(value) is list:
            values[key] = tuple(value)
    try:
        obj = schema.model(**values)
    except TypeError as exc:  # a keyword table that does not match its model: our bug
        raise AssertionError(f"{schema.name}: keyword table and model disagree: {exc}") from exc
    ctx.srcmap.add(obj, stmt, src)
    return obj
