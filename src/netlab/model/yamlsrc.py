"""YAML that remembers where every value came from.

PyYAML's constructors throw positions away, so we compose the node graph ourselves and build
plain dicts/lists while recording, for each path (``("nodes", "host", "bridges")``), where its
key and its value start. Validation errors then point at ``file:line:column`` instead of at a
JSON path the user has to translate. Duplicate keys, which PyYAML silently overwrites, are
reported here because they almost always hide a typo.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from netlab.errors import Issue, Position, TopologyError

PathKey = tuple[str | int, ...]

#: limits that keep a hostile or broken file from costing minutes or memory: a topology is a
#: few hundred lines; these are far above any real one
MAX_BYTES = 4 << 20
MAX_DEPTH = 64
MAX_VALUES = 200_000

try:  # the C composer is much faster; fall back when libyaml is absent
    _Loader: type[yaml.SafeLoader] = yaml.CSafeLoader  # type: ignore[assignment]
except AttributeError:  # pragma: no cover - depends on the PyYAML build
    _Loader = yaml.SafeLoader


@dataclass
class Source:
    """A parsed YAML document and where each of its values sits in the file."""

    file: str
    data: Any
    values: dict[PathKey, Position] = field(default_factory=dict)
    keys: dict[PathKey, Position] = field(default_factory=dict)
    #: the file's lines, for positions inside a multi-line value
    lines: list[str] = field(default_factory=list)

    def without_data(self) -> Source:
        """The source map alone (what the plan cache keeps of a file, for locating errors)."""
        return Source(self.file, None, self.values, self.keys, self.lines)

    def at(self, path: PathKey, *, key: bool = False) -> Position | None:
        """The position of ``path``, or of its nearest ancestor we know.

        ``key=True`` prefers where the key is written (for "unknown key" errors) over where
        its value starts.
        """
        for n in range(len(path), -1, -1):
            sub = path[:n]
            if key and n == len(path) and sub in self.keys:
                return self.keys[sub]
            if sub in self.values:
                return self.values[sub]
        return None

    def locate(self, path: PathKey, within: tuple[int, int | None] | None = None) -> Position | None:
        """Where a step made from ``path`` went wrong: its key (``within`` None), or line
        ``within[0]`` (column ``within[1]``) of its multi-line value. A block scalar (``|``)
        starts on the line after its indicator, at that line's indentation."""
        pos = self.at(path, key=within is None)
        if pos is None or within is None:
            return pos
        line, column = within
        text = self.lines
        block = pos.line <= len(text) and text[pos.line - 1][pos.column - 1 : pos.column] in ("|", ">")
        at = pos.line + line if block else pos.line
        if not 1 <= at <= len(text):
            return pos
        first = text[pos.line] if block and pos.line < len(text) else ""
        indent = len(first) - len(first.lstrip()) if block else pos.column - 1  # the block's, not the line's
        return Position(pos.file, at, indent + (column or 1))


def _mark(file: str, node: yaml.Node) -> Position:
    return Position(file, node.start_mark.line + 1, node.start_mark.column + 1)


class _LimitError(Exception):
    """The document broke one of the limits; carries the located issue."""

    def __init__(self, issue: Issue) -> None:
        super().__init__(issue.message)
        self.issue = issue


class _Builder:
    def __init__(self, file: str) -> None:
        self.file = file
        self.source = Source(file, None)
        self.constructor = yaml.constructor.SafeConstructor()
        self.issues: list[Issue] = []
        self.values = 0

    def build(self, node: yaml.Node, path: PathKey) -> Any:
        # Aliases make the node graph a DAG that expands exponentially when built ("billion
        # laughs"), and nesting recurses here: both are bounded, with the place they broke.
        self.values += 1
        if self.values > MAX_VALUES:
            raise _LimitError(
                Issue(_mark(self.file, node), f"the document expands to more than {MAX_VALUES} values (aliases?)")
            )
        if len(path) > MAX_DEPTH:
            raise _LimitError(Issue(_mark(self.file, node), f"nested more than {MAX_DEPTH} levels deep"))
        self.source.values[path] = _mark(self.file, node)
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    self.issues.append(Issue(_mark(self.file, key_node), "a key must be a scalar"))
                    continue
                key = self.constructor.construct_object(key_node)
                if key_node.tag == "tag:yaml.org,2002:merge":
                    self.issues.append(Issue(_mark(self.file, key_node), "'<<' merge keys are not supported"))
                    continue
                if key in out:
                    first = self.source.keys.get((*path, key))
                    line = first.line if first else "?"
                    self.issues.append(
                        Issue(_mark(self.file, key_node), f"duplicate key '{key}' (first at line {line})")
                    )
                    continue
                self.source.keys[(*path, key)] = _mark(self.file, key_node)
                out[key] = self.build(value_node, (*path, key))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        return self.constructor.construct_object(node)


def parse(text: str, file: str) -> Source:
    """Parse one YAML document; a syntax error becomes a located :class:`TopologyError`."""
    if len(text) > MAX_BYTES:
        raise TopologyError([Issue(Position(file, 1, 1), f"the file is larger than {MAX_BYTES >> 20} MiB")])
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        pos = Position(file, mark.line + 1, mark.column + 1) if mark else None
        problem = exc.problem or exc.context or "malformed YAML"
        raise TopologyError([Issue(pos, f"malformed YAML: {problem}")]) from None
    except yaml.YAMLError as exc:
        raise TopologyError([Issue(Position(file, 1, 1), f"malformed YAML: {exc}")]) from None
    if root is None:
        raise TopologyError([Issue(Position(file, 1, 1), "the file is empty")])
    builder = _Builder(file)
    try:
        builder.source.data = builder.build(root, ())
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark
        pos = Position(file, mark.line + 1, mark.column + 1) if mark else None
        raise TopologyError([Issue(pos, f"malformed YAML: {exc.problem}")]) from None
    except _LimitError as exc:
        raise TopologyError([exc.issue]) from None
    if builder.issues:
        raise TopologyError(builder.issues)
    builder.source.lines = text.splitlines()
    return builder.source


def parse_file(path: Path) -> Source:
    """Read and parse ``path``; an unreadable file is a located error, not an OSError."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise TopologyError([Issue(None, f"{path}: cannot read topology: {reason}")]) from None
    return parse(text, str(path))
