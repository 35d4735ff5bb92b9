"""YAML text -> plain Python data, remembering where every value was written.

Safe by construction: nodes are composed with PyYAML's SafeLoader and turned
into values here, so only the standard scalar tags and ``!ref`` are ever
constructed; ``!!python/...`` and any other tag are reported, never run.
Also done here, because PyYAML does not: duplicate keys are errors, and a
document that expands (through aliases) to more than ``MAX_VALUES`` values is
refused, which stops "billion laughs" alias bombs.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from runner.shared import Ref

__all__ = ["MAX_VALUES", "Document", "Located", "parse"]

# A real config has hundreds of values; a million leaves room for long inline
# map lists while an alias bomb (10^9 values from a few lines) stops at once.
MAX_VALUES = 1_000_000

Path = tuple[str | int, ...]

_ENV_RE = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\{")
_WHOLE_RE = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*(?::-[^}]*)?\}")
_STANDARD_TAGS = {
    f"tag:yaml.org,2002:{name}"
    for name in ("str", "int", "float", "bool", "null", "timestamp", "binary",
                 "seq", "map", "set", "omap", "pairs", "value")
}


@dataclass
class Located:
    """A problem found while reading, at a 1-based line and column."""

    line: int
    column: int
    path: Path
    message: str


@dataclass
class Document:
    """The data of one YAML document with the position of each value and key."""

    data: Any
    values: dict[Path, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path, tuple[int, int]] = field(default_factory=dict)
    problems: list[Located] = field(default_factory=list)


class _TooLarge(Exception):
    pass


class _Builder:
    def __init__(self, loader: yaml.SafeLoader, environ: dict[str, str]) -> None:
        self.loader = loader
        self.environ = environ
        self.doc = Document(data=None)
        self.count = 0

    def problem(self, node: Node, path: Path, message: str) -> None:
        mark = node.start_mark
        self.doc.problems.append(Located(mark.line + 1, mark.column + 1, path, message))

    def build(self, node: Node, path: Path) -> Any:
        self.count += 1
        if self.count > MAX_VALUES:
            raise _TooLarge
        mark = node.start_mark
        self.doc.values[path] = (mark.line + 1, mark.column + 1)
        if node.tag == "!ref":
            return self.ref(node, path)
        if node.tag.startswith("tag:yaml.org,2002:python/"):
            tag = "!!" + node.tag.removeprefix("tag:yaml.org,2002:")
            self.problem(node, path, f"the tag {tag} is not allowed: mprun reads YAML safely and "
                                     "never builds Python objects from it")
            return None
        if node.tag not in _STANDARD_TAGS and node.tag != "tag:yaml.org,2002:merge":
            self.problem(node, path, f"unknown tag {node.tag} (mprun knows !ref NAME)")
            return None
        if isinstance(node, MappingNode):
            return self.mapping(node, path)
        if isinstance(node, SequenceNode):
            return [self.build(item, (*path, index)) for index, item in enumerate(node.value)]
        assert isinstance(node, ScalarNode)
        return self.scalar(node, path)

    def ref(self, node: Node, path: Path) -> Any:
        if not isinstance(node, ScalarNode) or not str(node.value).strip():
            self.problem(node, path, "!ref takes the name of a shared primitive, e.g. !ref counter")
            return None
        return Ref(str(node.value).strip())

    def mapping(self, node: MappingNode, path: Path) -> dict[Any, Any]:
        seen: dict[Any, Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.loader.construct_object(key_node, deep=True)
            if key in seen:
                first = seen[key].start_mark.line + 1
                self.problem(key_node, (*path, key),
                             f"duplicate key {key!r} (first written on line {first})")
            seen[key] = key_node
        try:
            self.loader.flatten_mapping(node)  # resolves "<<: *anchor" merge keys
        except yaml.MarkedYAMLError as exc:
            self.problem(node, path, str(exc.problem))
            return {}
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = self.loader.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                self.problem(key_node, path, "a mapping key must be a plain value")
                continue
            mark = key_node.start_mark
            self.doc.keys[(*path, key)] = (mark.line + 1, mark.column + 1)
            result[key] = self.build(value_node, (*path, key))
        return result

    def scalar(self, node: ScalarNode, path: Path) -> Any:
        if node.tag == "tag:yaml.org,2002:str" and "$" in node.value:
            text = self.interpolate(node, path)
            if node.style is None and _WHOLE_RE.fullmatch(node.value.strip()):
                # "workers: ${W:-2}" is an int: read the result as YAML would a plain scalar.
                tag = self.loader.resolve(ScalarNode, text, (True, False))  # type: ignore[no-untyped-call]
                return self.loader.construct_object(
                    ScalarNode(tag, text), deep=True)
            return text
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.MarkedYAMLError as exc:
            self.problem(node, path, str(exc.problem))
            return None

    def interpolate(self, node: ScalarNode, path: Path) -> str:
        def substitute(match: re.Match[str]) -> str:
            whole = match.group(0)
            if whole == "$${":
                return "${"
            name, default = match.group(1), match.group(2)
            if name is None:
                self.problem(node, path, "a ${...} needs a variable name: ${NAME} or "
                                         "${NAME:-default}")
                return whole
            if name in self.environ:
                return self.environ[name]
            if default is not None:
                return default
            self.problem(node, path, f"environment variable {name} is not set "
                                     f"(give a default: ${{{name}:-value}})")
            return ""

        return _ENV_RE.sub(substitute, node.value)


def parse(text: str, *, environ: dict[str, str] | None = None) -> Document:
    """Read one YAML document. Syntax errors and unsafe input become ``problems``."""
    loader = yaml.SafeLoader(text)
    builder = _Builder(loader, dict(os.environ) if environ is None else environ)
    try:
        node = loader.get_single_node()
        if node is None:
            builder.doc.problems.append(Located(1, 1, (), "the file is empty"))
            return builder.doc
        builder.doc.data = builder.build(node, ())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        message = " ".join(part for part in (exc.context, exc.problem) if part)
        builder.doc.problems.append(Located(line, column, (), f"invalid YAML: {message}"))
    except yaml.YAMLError as exc:
        builder.doc.problems.append(Located(1, 1, (), f"invalid YAML: {exc}"))
    except _TooLarge:
        builder.doc.problems.append(Located(1, 1, (), (
            f"the document expands to more than {MAX_VALUES:,} values; "
            "aliases that multiply (an alias bomb) are refused")))
    finally:
        loader.dispose()
    return builder.doc
