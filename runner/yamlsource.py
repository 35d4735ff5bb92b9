"""YAML text -> plain Python data, remembering where every value was written.

Safe by construction: nodes are composed with PyYAML's SafeLoader and turned
into values here, so only the standard scalar tags and ``!ref`` are ever
constructed; ``!!python/...`` and any other tag are reported, never run.
Also done here, because PyYAML does not: duplicate keys are errors, and a
document that expands (through aliases) to more than ``MAX_VALUES`` values is
refused before anything is built, which stops "billion laughs" alias bombs at
once; a document that simply holds that many is refused while it is composed,
or (over ``PRECOUNT_CHARS``) by libyaml's event stream before that. Recursive
aliases, nesting deeper than ``MAX_DEPTH`` and scalars that PyYAML cannot
construct (``!!int abc``, ``2020-13-45``) are reported too: ``parse`` never
raises.

``${VAR}`` and ``${VAR:-default}`` are expanded in string scalars. What a
variable with a secret-looking name (``DB_PASSWORD``, ``API_TOKEN``: the rule
of ``runner.redact.is_secret``) put into the document is kept in
``Document.secrets``, whether it came from the environment or from the
default, so that the loader can have it masked in logs and summaries wherever
it ends up (``dsn: "pg://u:${DB_PASSWORD}@h"``). Empty values are not kept;
``runner.redact`` decides which of the others are long enough to mask.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.events import (
    AliasEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from runner.redact import is_secret
from runner.shared import Ref

__all__ = ["MAX_DEPTH", "MAX_VALUES", "Document", "Located", "parse"]

# A real config has hundreds of values; a million leaves room for long inline
# map lists while an alias bomb (10^9 values from a few lines) stops at once.
MAX_VALUES = 1_000_000
# Deeper nesting than this is no config; it would otherwise exhaust the stack.
MAX_DEPTH = 100

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
    # True when the value at ``path`` was refused (later checks skip it); False for a
    # problem with a key of the mapping at ``path``, whose values are still checked.
    value_refused: bool = True


@dataclass
class Document:
    """The data of one YAML document with the position of each value and key."""

    data: Any
    values: dict[Path, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path, tuple[int, int]] = field(default_factory=dict)
    problems: list[Located] = field(default_factory=list)
    # What ${VAR} / ${VAR:-default} with a secret-looking VAR expanded to (non-empty).
    secrets: set[str] = field(default_factory=set)
    # Each ${VAR} read: its value then, or None where it was unset (runner.configcache).
    environ_read: dict[str, str | None] = field(default_factory=dict)


class _TooLarge(Exception):
    pass


class _TooDeep(Exception):
    pass


# What PyYAML's scalar constructors raise for a value that does not fit its tag: its own
# errors, and whatever int(), float(), datetime() or a lookup raise ("!!int ", "!!bool x",
# "2020-13-45", "0x_"). They run on one scalar and build nothing else.
_CONSTRUCT_ERRORS = (Exception,)
_TOO_LARGE = (f"the document holds more than {MAX_VALUES:,} values, counting each use of "
              "an alias in full: aliases that multiply (an alias bomb) are refused, and a "
              "long map list belongs in a file (map: {file: items.jsonl})")
_TOO_DEEP = f"the document is nested more than {MAX_DEPTH} levels deep"


class _Loader(yaml.SafeLoader):
    """SafeLoader that stops composing below ``MAX_DEPTH`` levels or past ``MAX_VALUES`` values.

    PyYAML's composer recurses once per level, and its scanner slows down
    quadratically with open flow collections, so ``[[[[...`` is cut short here
    rather than left to end in a RecursionError seconds later. Values (not
    keys) are counted as they are composed, each use of an alias as one: a
    lower bound of what ``_expanded_size`` counts, so a long list stops at its
    millionth value instead of being composed whole (minutes and gigabytes
    for 50 MB) and then refused.
    """

    depth = 0
    values = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if index is not None or not isinstance(parent, MappingNode):  # not a mapping key
            self.values += 1
            if self.values > MAX_VALUES:
                raise _TooLarge
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH + 1:
                raise _TooDeep
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


# YAML 1.1 (PyYAML) reads 1e-3 and 1E+300 as strings; YAML 1.2 and users read
# them as floats. Only exponent forms without a dot are added: the rest of
# PyYAML's float rule already matches.
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


# Above this many characters, a document's values are first counted in libyaml's C
# parser (events only, nothing kept): much faster than composing them in Python, so a
# long list is refused in seconds instead of a minute; smaller documents skip the pass.
PRECOUNT_CHARS = 1_000_000
_NODE_EVENTS = (ScalarEvent, AliasEvent, SequenceStartEvent, MappingStartEvent)


def _too_many_values(text: str) -> bool:
    """Whether ``text`` holds more than ``MAX_VALUES`` values, counted as ``_Loader`` counts
    them (keys not, each use of an alias once). False without libyaml, or for YAML it
    cannot read: the parse that follows reports that."""
    if not getattr(yaml, "__with_libyaml__", False):
        return False
    parser = yaml.CSafeLoader(text)
    count = 0
    # Per open collection: None for a sequence; for a mapping, whether a key comes next.
    open_: list[bool | None] = []
    try:
        while True:
            event = parser.get_event()
            if isinstance(event, _NODE_EVENTS):
                if not (open_ and open_[-1]):  # a value, not a mapping key
                    count += 1
                    if count > MAX_VALUES:
                        return True
                if isinstance(event, SequenceStartEvent | MappingStartEvent):
                    open_.append(True if isinstance(event, MappingStartEvent) else None)
                    continue
            elif isinstance(event, SequenceEndEvent | MappingEndEvent):
                open_.pop()
            elif isinstance(event, StreamEndEvent):
                return False
            else:
                continue
            if open_ and open_[-1] is not None:  # a node of a mapping ended: key <-> value
                open_[-1] = not open_[-1]
    except yaml.YAMLError:
        return False
    finally:
        parser.dispose()


def _children(node: Node) -> list[Node]:
    if isinstance(node, MappingNode):
        return [value for _, value in node.value]
    if isinstance(node, SequenceNode):
        return list(node.value)
    return []


def _expanded_size(root: Node) -> int:
    """How many values ``root`` stands for once aliases are expanded (capped).

    Aliased nodes are one object in PyYAML's node graph, so this visits each
    node once: an alias bomb is measured without being expanded.
    """
    sizes: dict[int, int] = {}
    entered: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            total = 1 + sum(sizes.get(id(child), 0) for child in _children(node))
            sizes[key] = min(total, MAX_VALUES + 1)
            entered.discard(key)
            continue
        if key in sizes or key in entered:  # done already, or a recursive alias
            continue
        entered.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node))
    return sizes[id(root)]


class _Builder:
    def __init__(self, loader: _Loader, environ: dict[str, str]) -> None:
        self.loader = loader
        self.environ = environ
        self.doc = Document(data=None)
        self.count = 0
        self.open: set[int] = set()  # the collections being built: a recursive alias is in here

    def problem(self, node: Node, path: Path, message: str, *, value_refused: bool = True) -> None:
        mark = node.start_mark
        self.doc.problems.append(Located(mark.line + 1, mark.column + 1, path, message,
                                         value_refused))

    def bad_tag(self, node: Node) -> str | None:
        """Why ``node``'s tag is refused, or None for the standard tags."""
        if node.tag.startswith("tag:yaml.org,2002:python/"):
            tag = "!!" + node.tag.removeprefix("tag:yaml.org,2002:")
            return (f"the tag {tag} is not allowed: mprun reads YAML safely and never builds "
                    "Python objects from it")
        if node.tag not in _STANDARD_TAGS and node.tag != "tag:yaml.org,2002:merge":
            return f"unknown tag {node.tag} (mprun knows !ref NAME)"
        return None

    def build(self, node: Node, path: Path) -> Any:
        self.count += 1
        if self.count > MAX_VALUES:
            raise _TooLarge
        if len(path) > MAX_DEPTH:
            raise _TooDeep
        mark = node.start_mark
        self.doc.values[path] = (mark.line + 1, mark.column + 1)
        if node.tag == "!ref":
            return self.ref(node, path)
        refused = self.bad_tag(node)
        if refused:
            self.problem(node, path, refused)
            return None
        if isinstance(node, ScalarNode):
            return self.scalar(node, path)
        if id(node) in self.open:
            self.problem(node, path, "a recursive alias (an anchor used inside itself) is not "
                                     "allowed: a config is a tree")
            return None
        self.open.add(id(node))
        try:
            if isinstance(node, MappingNode):
                return self.mapping(node, path)
            assert isinstance(node, SequenceNode)
            return [self.build(item, (*path, index)) for index, item in enumerate(node.value)]
        finally:
            self.open.discard(id(node))

    def ref(self, node: Node, path: Path) -> Any:
        if not isinstance(node, ScalarNode) or not str(node.value).strip():
            self.problem(node, path, "!ref takes the name of a shared primitive, e.g. !ref counter")
            return None
        return Ref(str(node.value).strip())

    def key(self, node: Node, path: Path) -> tuple[bool, Any]:
        """``(True, key)`` for a usable mapping key; else report it and return ``(False, None)``."""
        message = None
        if node.tag == "!ref":
            message = "!ref NAME stands for a value; it cannot be a mapping key"
        elif self.bad_tag(node):
            message = self.bad_tag(node)
        elif not isinstance(node, ScalarNode):
            message = "a mapping key must be a plain value, not a list or mapping"
        if message:
            self.problem(node, path, message, value_refused=False)
            return False, None
        assert isinstance(node, ScalarNode)
        return self.construct(node, path, value_refused=False)

    def mapping(self, node: MappingNode, path: Path) -> dict[Any, Any]:
        seen: dict[Any, Node] = {}
        keys: dict[int, tuple[bool, Any]] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            ok, key = keys[id(key_node)] = self.key(key_node, path)
            if not ok:
                continue
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
            # Keys merged in from elsewhere are read here; the node's own were read above.
            ok, key = keys.get(id(key_node)) or self.key(key_node, path)
            if not ok:
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
                _, value = self.construct(
                    ScalarNode(tag, text, node.start_mark, node.end_mark), path)
                return value
            return text
        _, value = self.construct(node, path)
        return value

    def construct(self, node: ScalarNode, path: Path, *,
                  value_refused: bool = True) -> tuple[bool, Any]:
        """PyYAML's value for a scalar; ``!!int abc`` or ``2020-13-45`` is reported, not raised."""
        try:
            return True, self.loader.construct_object(node, deep=True)
        except _CONSTRUCT_ERRORS as exc:
            self.loader.recursive_objects.pop(node, None)  # PyYAML leaves it marked on failure
            reason: Any = "not a valid value of that type"
            if isinstance(exc, yaml.MarkedYAMLError):
                reason = exc.problem
            elif isinstance(exc, ValueError | OverflowError):
                reason = exc
            kind = "!!" + node.tag.removeprefix("tag:yaml.org,2002:")
            self.problem(node, path, f"cannot read {_short(node.value)} as {kind}: {reason}",
                         value_refused=value_refused)
            return False, None

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
            self.doc.environ_read[name] = self.environ.get(name)
            if name in self.environ:
                value = self.environ[name]
            elif default is not None:
                value = default
            else:
                self.problem(node, path, f"environment variable {name} is not set "
                                         f"(give a default: ${{{name}:-value}})")
                return ""
            if value and is_secret(name):
                self.doc.secrets.add(value)
            return value

        return _ENV_RE.sub(substitute, node.value)


def _short(text: str) -> str:
    shown = repr(text)
    return shown if len(shown) <= 60 else shown[:57] + "..."


def parse(text: str, *, environ: dict[str, str] | None = None) -> Document:
    """Read one YAML document. Syntax errors and unsafe input become ``problems``."""
    try:
        loader = _Loader(text)
    except yaml.reader.ReaderError as exc:  # a control character, checked up front
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        return Document(data=None, problems=[Located(line, column, (), (
            f"invalid YAML: the character U+{exc.character:04X} is not allowed in YAML text "
            f"({exc.reason})"))])
    builder = _Builder(loader, dict(os.environ) if environ is None else environ)
    if len(text) > PRECOUNT_CHARS and _too_many_values(text):
        loader.dispose()
        builder.doc.problems.append(Located(1, 1, (), _TOO_LARGE))
        return builder.doc
    try:
        node = loader.get_single_node()
        if node is None:
            builder.doc.problems.append(Located(1, 1, (), "the file is empty"))
            return builder.doc
        if _expanded_size(node) > MAX_VALUES:
            raise _TooLarge
        builder.doc.data = builder.build(node, ())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        message = " ".join(part for part in (exc.context, exc.problem) if part)
        lines = text.splitlines()
        if mark and mark.line < len(lines) and "${" in lines[mark.line] \
                and "flow" in message:
            message += ("; inside [...] or {...} YAML reads the { of ${...} as a mapping: "
                        "use a block list (- ${VAR}) or quote it (a quoted value stays a string)")
        builder.doc.problems.append(Located(line, column, (), f"invalid YAML: {message}"))
    except yaml.YAMLError as exc:
        builder.doc.problems.append(Located(1, 1, (), f"invalid YAML: {exc}"))
    except _TooLarge:
        builder.doc.data = None
        builder.doc.problems.append(Located(1, 1, (), _TOO_LARGE))
    except (_TooDeep, RecursionError):  # PyYAML's composer recurses too
        builder.doc.data = None
        builder.doc.problems.append(Located(1, 1, (), _TOO_DEEP))
    finally:
        loader.dispose()
    return builder.doc
