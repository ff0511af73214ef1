"""The effective configuration as readable text (``-d``) and as JSON that loads back exactly."""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
import json
import types
import typing
from typing import Any

import cattrs
from cattrs.strategies import configure_tagged_union

from pykeepalived.config.model import globals as _globals
from pykeepalived.config.model import lvs as _lvs
from pykeepalived.config.model import root as _root
from pykeepalived.config.model import vrrp as _vrrp
from pykeepalived.config.model.common import Script
from pykeepalived.config.model.root import Config

__all__ = ["config_from_json", "config_to_json", "dump_text", "to_jsonable"]

_SCALARS: tuple[type, ...] = (int, str, float, bool, type(None))
_IP_TYPES: tuple[type, ...] = (
    ipaddress.IPv4Address,
    ipaddress.IPv6Address,
    ipaddress.IPv4Interface,
    ipaddress.IPv6Interface,
    ipaddress.IPv4Network,
    ipaddress.IPv6Network,
)


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=True)
    conv.register_unstructure_hook(bytes, bytes.hex)
    conv.register_structure_hook(bytes, lambda v, _: bytes.fromhex(v))
    for cls in _IP_TYPES:
        conv.register_unstructure_hook(cls, str)
        conv.register_structure_hook(cls, lambda v, t: t(v))

    def is_ip_union(t: Any) -> bool:
        """A union of IP types, possibly with plain scalars (``IPv4Address | int | None``)."""
        origin = typing.get_origin(t)
        if origin is not typing.Union and origin is not types.UnionType:
            return False
        args = typing.get_args(t)
        return any(a in _IP_TYPES for a in args) and all(
            a in _IP_TYPES or a in _SCALARS for a in args
        )

    def structure_ip(value: Any, t: Any) -> Any:
        args = typing.get_args(t)
        if value is None or isinstance(value, bool | int | float):
            return value
        for kind, parse in (
            ("Address", ipaddress.ip_address),
            ("Interface", ipaddress.ip_interface),
            ("Network", ipaddress.ip_network),
        ):
            if any(a in _IP_TYPES and a.__name__.endswith(kind) for a in args):
                try:
                    return parse(value)
                except ValueError:
                    continue
        return value

    conv.register_structure_hook_func(is_ip_union, structure_ip)
    for module in (_globals, _vrrp, _lvs, _root):
        for value in vars(module).values():
            if isinstance(value, types.UnionType | typing._UnionGenericAlias):  # type: ignore[attr-defined]
                members = typing.get_args(value)
                if len(members) > 1 and all(dataclasses.is_dataclass(m) for m in members):
                    configure_tagged_union(value, conv, tag_name="_type")
    return conv


_CONVERTER = _make_converter()


def to_jsonable(config: Config) -> dict[str, Any]:
    """The model as plain JSON-compatible data."""
    data: dict[str, Any] = _CONVERTER.unstructure(config)
    return data


def config_to_json(config: Config, *, indent: int | None = 2) -> str:
    """The model as a JSON document."""
    return json.dumps(to_jsonable(config), indent=indent)


def config_from_json(text: str) -> Config:
    """Load a model back from :func:`config_to_json`'s output."""
    return _CONVERTER.structure(json.loads(text), Config)


# ---- text ---------------------------------------------------------------------------------------


def _scalar(value: Any) -> str:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, float):
        return f"{value:g}" if value == int(value) or abs(value) >= 1e-4 else f"{value:.6f}"
    if isinstance(value, Script):
        out = _quote(value.command)
        if value.user:
            out += f" {value.user}"
        if value.group:
            out += f" {value.group}"
        return out
    if isinstance(value, str):
        return _quote(value)
    return str(value)


def _quote(text: str) -> str:
    if text == "" or any(c in text for c in " \t#!\"'{}"):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text


def _singular(name: str) -> str:
    if name.endswith("ies"):
        return name[:-3] + "y"
    return name[:-1] if name.endswith("s") and not name.endswith("ss") else name


def _title(obj: Any, fieldname: str) -> str:
    kind = getattr(obj, "kind", None)
    head = kind if isinstance(kind, str) else _singular(fieldname)
    label = obj.dump_label() if hasattr(obj, "dump_label") else getattr(obj, "name", "")
    return f"{head} {label}".rstrip() if isinstance(label, str) else head


def _is_scalar_tuple(value: tuple[Any, ...]) -> bool:
    return not any(dataclasses.is_dataclass(v) or isinstance(v, tuple) for v in value)


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def _lines(obj: Any, indent: str, *, skip_defaults: bool = False) -> list[str]:
    """Field lines of ``obj``; unset values and false flags are left out (and values equal to
    their default when ``skip_defaults``)."""
    out: list[str] = []
    for f in dataclasses.fields(obj):
        if f.name == "kind" or f.name.startswith("_"):
            continue
        value = getattr(obj, f.name)
        if value is None or value == () or value is False:
            continue
        if skip_defaults and value == _default(f):
            continue
        if dataclasses.is_dataclass(value) and not isinstance(value, type | Script):
            body = _lines(value, indent + "    ")
            if body:
                out.append(f"{indent}{f.name} {{")
                out.extend(body)
                out.append(f"{indent}}}")
        elif (
            isinstance(value, tuple)
            and value
            and all(dataclasses.is_dataclass(v) and not isinstance(v, Script) for v in value)
        ):
            for item in value:
                out.append(f"{indent}{_title(item, f.name)} {{")
                body = _lines(item, indent + "    ")
                if not hasattr(item, "dump_label") and isinstance(getattr(item, "name", 0), str):
                    body = [ln for ln in body if not ln.startswith(f"{indent}    name ")]
                out.extend(body)
                out.append(f"{indent}}}")
        elif isinstance(value, tuple) and _is_scalar_tuple(value):
            out.append(f"{indent}{f.name} {' '.join(_scalar(v) for v in value)}")
        elif isinstance(value, tuple):
            out.append(f"{indent}{f.name} {json.dumps(_CONVERTER.unstructure(value))}")
        else:
            out.append(f"{indent}{f.name} {_scalar(value)}")
    return out


def dump_text(config: Config) -> str:
    """The effective configuration in keepalived-like block syntax.

    Blocks show every effective value (defaults filled in, aliases resolved); global_defs and
    the root keywords show only what differs from keepalived's defaults. Unset optional values
    and false flags are left out.
    """
    out: list[str] = []
    root = _lines(config.root, "", skip_defaults=True)
    if root:
        out.extend(root)
        out.append("")
    out.append("global_defs {")
    out.extend(_lines(config.global_defs, "    ", skip_defaults=True))
    out.append("}")
    for part in (config.vrrp, config.lvs):
        body = _lines(part, "")
        if body:
            out.append("")
            out.extend(body)
    return "\n".join(out) + "\n"
