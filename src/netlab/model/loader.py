"""From a name or a path to a validated :class:`Topology`, or located errors.

Names are found by :mod:`netlab.model.files` (re-exported here).
"""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from netlab.errors import Issue, TopologyError
from netlab.model import validate
from netlab.model.files import available, resolve, search_path
from netlab.model.topology import Topology
from netlab.model.yamlsrc import PathKey, Source, parse, parse_file

__all__ = ["available", "load", "load_text", "resolve", "search_path"]


def _type_at(root: type[BaseModel], loc: PathKey) -> Any:
    """The annotation reached by walking ``loc`` through the models (for 'known keys' hints)."""
    current: Any = root
    for seg in loc:
        while True:
            origin = typing.get_origin(current)
            if origin in (typing.Union, types.UnionType):
                args = [a for a in typing.get_args(current) if a is not type(None)]
                current = args[0]
            elif origin is typing.Annotated:
                current = typing.get_args(current)[0]
            else:
                break
        origin = typing.get_origin(current)
        if isinstance(current, type) and issubclass(current, BaseModel) and isinstance(seg, str):
            field = current.model_fields.get(seg)
            if field is None:
                return None
            current = field.annotation
        elif origin is dict:
            current = typing.get_args(current)[1]
        elif origin in (list, tuple):
            current = typing.get_args(current)[0]
        else:
            return None
    return current


_TYPE_NAMES = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "list_type": "a list",
}


def _describe(value: object) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"


def issue_from(err: Any, source: Source, root: type[BaseModel] = Topology) -> Issue:  # noqa: PLR0911
    """A pydantic error as a located, plain message (one return per kind of error)."""
    loc: PathKey = tuple(err["loc"])
    kind = err["type"]
    if loc and loc[-1] == "[key]":  # a bad mapping key: point at the key itself
        loc = loc[:-1]
        message = str(err["msg"]).removeprefix("Value error, ")
        if kind == "literal_error":
            message = f"'{loc[-1]}' is not one of {err.get('ctx', {}).get('expected', '')}"
        return Issue(source.at(loc, key=True), message)
    if kind == "extra_forbidden":
        parent = _type_at(root, loc[:-1])
        allowed = ", ".join(parent.model_fields) if isinstance(parent, type) and issubclass(parent, BaseModel) else ""
        msg = f"unknown key '{loc[-1]}'" + (f" (expected one of: {allowed})" if allowed else "")
        return Issue(source.at(loc, key=True), msg)
    where = ".".join(str(p) for p in loc) or "document"
    if kind == "missing":
        return Issue(source.at(loc[:-1]), f"missing required key '{loc[-1]}'")
    if kind in _TYPE_NAMES:
        return Issue(source.at(loc), f"{where}: expected {_TYPE_NAMES[kind]}, got {_describe(err.get('input'))}")
    if kind == "value_error":
        message = str(err["msg"]).removeprefix("Value error, ")
        return Issue(source.at(loc), message)
    if kind in ("too_short", "too_long") and loc and loc[-1] == "endpoints":
        return Issue(source.at(loc), "a link has exactly two endpoints, e.g. [ns1:veth1, ns2:veth2]")
    if kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        return Issue(source.at(loc), f"{where}: {err.get('input')!r} is not one of {expected}")
    return Issue(source.at(loc), f"{where}: {str(err['msg']).lower()}")


def from_source(source: Source) -> Topology:
    """Validate parsed YAML: shape first, then cross-references; all issues at once."""
    if not isinstance(source.data, dict):
        raise TopologyError([Issue(source.at(()), "a topology is a mapping with name, nodes and links")])
    try:
        topo = Topology.model_validate(source.data)
    except ValidationError as exc:
        raise TopologyError([issue_from(e, source) for e in exc.errors()]) from None
    findings = validate.check(topo)
    if findings:
        raise TopologyError([Issue(source.at(path, key=True), msg) for path, msg in findings])
    return topo


def load(ref: str | Path) -> tuple[Topology, Source]:
    """Load and validate a topology by name or path."""
    path = ref if isinstance(ref, Path) else resolve(ref)
    source = parse_file(path)
    return from_source(source), source


def load_text(text: str, file: str = "<string>") -> tuple[Topology, Source]:
    """Load a topology given as YAML text (tests, generated labs)."""
    source = parse(text, file)
    return from_source(source), source
