"""Build plain data from a YAML event stream, with limits, never recursing.

PyYAML's composer and constructor recurse once per nesting level and expand
aliases without bound, so a hostile file (thousands of brackets, an alias
that contains itself, a few levels of aliases repeated) crashes or hangs
them. This builder walks libyaml's event stream with an explicit stack:

- nesting deeper than MAX_DEPTH is refused where it starts;
- an alias is expanded by reference, but the values it stands for are
  counted, so an "alias bomb" is refused as soon as the file would mean more
  than MAX_VALUES values; an alias to a node that is still open (one that
  contains itself) is refused;
- plain scalars that YAML 1.1 would silently turn into something else
  (`22:23` -> 1343, `no` -> false, `0755` -> 493, `2024-05-01` -> a date)
  are kept as written, as a Yaml11 string that remembers the 1.1 reading so
  that number fields can refuse them with a clear message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from lab.topology.errors import Problem

MAX_DEPTH = 40            # the deepest real topology field is 6 levels down
MAX_VALUES = 100_000      # a 5,000-node topology holds about 35,000
TRUE_FALSE = ("true", "false")
MERGE_KEY = "<<"

PathKey = tuple[Any, ...]


class Yaml11(str):
    """A plain scalar kept as written, which YAML 1.1 would have typed as `reading`."""

    reading: str = ""

    def __new__(cls, text: str, reading: str):
        value = super().__new__(cls, text)
        value.reading = reading
        return value


class LimitExceeded(Exception):
    """A refusal with its position; turned into a Problem by the caller."""

    def __init__(self, problem: Problem):
        super().__init__(problem.message)
        self.problem = problem


_RESOLVER = yaml.resolver.Resolver()
_CONSTRUCTOR = yaml.SafeLoader("")
_STR, _INT = "tag:yaml.org,2002:str", "tag:yaml.org,2002:int"
_OCTAL = re.compile(r"^[-+]?0[0-7_]+$")


def _yaml11_reading(text: str, tag: str, value: Any) -> str | None:
    """How YAML 1.1 misreads a plain scalar, or None when it reads it as meant."""
    if tag.endswith(":bool") and text.lower() not in TRUE_FALSE:
        return f"the boolean {str(value).lower()}"
    if tag.endswith((":int", ":float")) and ":" in text:
        return f"the base-60 number {value}"
    if tag.endswith(":int") and _OCTAL.match(text):
        return f"the octal number {value}"
    if tag.endswith(":int") and text.lstrip("+-").lower().startswith("0b"):
        return f"the binary number {value}"
    if tag.endswith(":timestamp"):
        return f"a date ({value})"
    return None


_DECIMAL = re.compile(r"^(0|-?[1-9][0-9]*)$")


def scalar_value(event: yaml.ScalarEvent) -> Any:
    """The Python value of a scalar: explicit tags honoured, YAML 1.1 traps kept as text."""
    plain = event.style in (None, "")
    if event.tag is None and not plain:
        return event.value   # quoted or block text is always a string
    node = yaml.ScalarNode(event.tag, event.value, event.start_mark, event.end_mark, event.style)
    if event.tag is None or event.tag == "!":
        node.tag = _RESOLVER.resolve(yaml.ScalarNode, event.value, (plain, not plain))
        if node.tag == _STR:
            return event.value   # the common case, without the constructor's overhead
        if node.tag == _INT and _DECIMAL.match(event.value):
            return int(event.value)
    if node.tag.endswith((":merge", ":value")) and plain and event.tag is None:
        return event.value   # `<<` and `=` are only words here; the builder handles `<<`
    try:
        value = _CONSTRUCTOR.construct_object(node, deep=True)
    except (ValueError, TypeError, AttributeError, OverflowError) as error:
        # PyYAML checks an explicit tag's text only by failing: `!!timestamp nope`.
        raise yaml.constructor.ConstructorError(None, None, str(error), event.start_mark) from None
    if plain and event.tag is None:
        reading = _yaml11_reading(event.value, node.tag, value)
        if reading is not None:
            return Yaml11(event.value, reading)
    return value


def position(mark: yaml.Mark) -> tuple[int, int]:
    return mark.line + 1, mark.column + 1


@dataclass
class _Open:
    """A mapping or list being built: where it goes, and (for mappings) the pending key."""

    path: PathKey
    value: Any
    anchor: str | None
    key: Any = None
    key_mark: tuple[int, int] | None = None
    has_key: bool = False
    merged: set = field(default_factory=set)   # keys that came from `<<` (may be overridden)


class EventBuilder:
    """Turns one document's events into data plus position tables (see Source)."""

    def __init__(self, file: str, value_marks: dict, key_marks: dict):
        self.file = file
        self.value_marks = value_marks
        self.key_marks = key_marks
        self.problems: list[Problem] = []
        self.stack: list[_Open] = []
        self.anchors: dict[str, tuple[Any, int]] = {}   # name -> (value, values it holds)
        self.open_anchors: set[str] = set()
        self.sizes: list[int] = [0]                     # values per open container
        self.total = 0
        self.root: Any = None

    def refuse(self, mark: yaml.Mark, message: str) -> LimitExceeded:
        line, column = position(mark)
        return LimitExceeded(Problem(line, column, "", message, self.file))

    # -- events --------------------------------------------------------------
    def feed(self, event: yaml.Event) -> None:
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            self._start(event)
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            self._end()
        elif isinstance(event, yaml.ScalarEvent):
            self._count(1, event.start_mark)
            value = scalar_value(event)
            if event.anchor:
                self.anchors[event.anchor] = (value, 1)
            self._place(value, event, is_scalar_key=True)
        elif isinstance(event, yaml.AliasEvent):
            self._alias(event)

    def _count(self, values: int, mark: yaml.Mark) -> None:
        self.total += values
        self.sizes[-1] += values
        if self.total > MAX_VALUES:
            raise self.refuse(mark, f"the file stands for more than {MAX_VALUES:,} values (after "
                              "expanding aliases): a topology is far smaller; if this is an alias "
                              "repeated inside aliases, write the values out instead")

    def _start(self, event) -> None:
        if len(self.stack) >= MAX_DEPTH:
            raise self.refuse(event.start_mark, f"nesting deeper than {MAX_DEPTH} levels: a topology "
                              "needs at most 8; look for unclosed or repeated brackets")
        if self.stack and self.stack[-1].has_key is False and isinstance(self.stack[-1].value, dict):
            self._bad_key(event.start_mark)
        self._count(1, event.start_mark)
        path = self._child_path()
        self.value_marks[path] = position(event.start_mark)
        container: Any = {} if isinstance(event, yaml.MappingStartEvent) else []
        if event.anchor:
            self.open_anchors.add(event.anchor)
        self.stack.append(_Open(path, container, event.anchor))
        self.sizes.append(0)

    def _end(self) -> None:
        done = self.stack.pop()
        inside = self.sizes.pop()     # values below this container, aliases expanded
        self.sizes[-1] += inside
        size = inside + 1
        if done.anchor:
            self.open_anchors.discard(done.anchor)
            self.anchors[done.anchor] = (done.value, size)
        self._attach(done.value, done.path)

    def _alias(self, event: yaml.AliasEvent) -> None:
        name = event.anchor
        if name in self.open_anchors:
            raise self.refuse(event.start_mark, f"the alias *{name} is inside the value it names, "
                              "so it would never end: copy the values instead of using the alias")
        if name not in self.anchors:
            raise self.refuse(event.start_mark, f"the alias *{name} names no anchor: define it "
                              f"first with &{name}, or remove the '*'")
        value, size = self.anchors[name]
        self._count(size, event.start_mark)
        self._place(value, event, is_scalar_key=isinstance(value, (str, int, float, bool)) or value is None)

    # -- placing values ------------------------------------------------------
    def _child_path(self) -> PathKey:
        if not self.stack:
            return ()
        top = self.stack[-1]
        if isinstance(top.value, list):
            return (*top.path, len(top.value))
        return (*top.path, top.key)

    def _bad_key(self, mark: yaml.Mark) -> None:
        line, column = position(mark)
        self.problems.append(Problem(line, column, dotted(self.stack[-1].path),
                                     "a key must be a plain name, not a list or mapping", self.file))
        self.stack[-1].key, self.stack[-1].has_key = None, True   # its value is dropped

    def _place(self, value: Any, event, is_scalar_key: bool) -> None:
        top = self.stack[-1] if self.stack else None
        if isinstance(top and top.value, dict) and not top.has_key:
            if not is_scalar_key or isinstance(value, (dict, list)):
                self._bad_key(event.start_mark)
                return
            self._take_key(top, value, event)
            return
        path = self._child_path()
        self.value_marks[path] = position(event.start_mark)
        self._attach(value, path)

    def _take_key(self, top: _Open, value: Any, event) -> None:
        # Keys are names: keep what was written, so `on:` or `yes:` stay words
        # instead of YAML 1.1's booleans, and `80:` stays "80".
        text = event.value if isinstance(event, yaml.ScalarEvent) and event.style in (None, "") \
            and event.tag is None else value
        key = text if isinstance(text, str) else str(text)
        top.key, top.has_key, top.key_mark = str(key), True, position(event.start_mark)

    def _attach(self, value: Any, path: PathKey) -> None:
        if not self.stack:
            self.root = value
            return
        top = self.stack[-1]
        if isinstance(top.value, list):
            top.value.append(value)
            return
        key, top.has_key = top.key, False
        if key is None:
            return   # a key that was refused
        if key == MERGE_KEY and top.key_mark is not None:
            self._merge(top, value, path)
            return
        child = (*top.path, key)
        if key in top.value and key not in top.merged:
            first_line = self.key_marks[child][0]
            line, column = top.key_mark
            self.problems.append(Problem(
                line, column, dotted(child),
                f"duplicate key '{key}' (first written on line {first_line}); "
                "YAML would silently keep only the last one: merge them or remove one", self.file))
            return
        top.merged.discard(key)
        self.key_marks[child] = top.key_mark
        top.value[key] = value

    def _merge(self, top: _Open, value: Any, path: PathKey) -> None:
        """`<<: *defaults` (or a list of them): copy keys the mapping does not set itself."""
        sources = value if isinstance(value, list) else [value]
        if not all(isinstance(item, dict) for item in sources):
            line, column = top.key_mark
            self.problems.append(Problem(line, column, dotted(path), "'<<' merges a mapping "
                                         "(like <<: *defaults): give it an alias of a mapping", self.file))
            return
        for item in sources:
            for key, item_value in item.items():
                if key not in top.value:
                    top.value[key] = item_value
                    top.merged.add(key)
                    self.key_marks.setdefault((*top.path, key), top.key_mark)
                    self.value_marks.setdefault((*top.path, key), top.key_mark)


def dotted(path: PathKey) -> str:
    """Render a path the way people read it: nodes.laptop.networks[0]."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


