"""Read YAML while remembering where every key and value stands.

PyYAML's composer gives a node tree with start marks; we turn it into plain
Python data plus a table from field path to (line, column) so that later
passes can point at the exact spot of a mistake. Duplicate keys, which plain
YAML loaders silently accept (the last one wins), are reported here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lab.topology.errors import Problem, TopologyError

PathKey = tuple[Any, ...]


@dataclass
class Source:
    """Plain data from a YAML file, plus where each path came from (1-based)."""

    file: str
    data: Any
    value_marks: dict[PathKey, tuple[int, int]] = field(default_factory=dict)
    key_marks: dict[PathKey, tuple[int, int]] = field(default_factory=dict)

    def mark(self, path: PathKey, at_key: bool = False) -> tuple[int, int]:
        """Position of the value (or key) at path, falling back to the nearest ancestor."""
        table = self.key_marks if at_key else self.value_marks
        probe = tuple(path)
        while probe:
            if probe in table:
                return table[probe]
            if isinstance(probe[-1], int) and probe in self.value_marks:
                return self.value_marks[probe]  # list items have no key: point at the item
            probe = probe[:-1]
        return self.value_marks.get((), (1, 1))

    def problem(self, path: PathKey, message: str, at_key: bool = False,
                mark_path: PathKey | None = None) -> Problem:
        """A Problem about path, placed at path (or at mark_path when the path is absent)."""
        line, column = self.mark(path if mark_path is None else mark_path, at_key)
        return Problem(line, column, dotted(path), message, self.file)


def dotted(path: PathKey) -> str:
    """Render a path the way people read it: nodes.laptop.networks[0]."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _position(mark: yaml.Mark) -> tuple[int, int]:
    return mark.line + 1, mark.column + 1


class _Builder:
    """Walks a composed YAML node tree into Python data, recording marks."""

    def __init__(self, source: Source):
        self.source = source
        self.problems: list[Problem] = []
        self._scalars = yaml.SafeLoader("")  # only used for its scalar constructors

    def build(self, node: yaml.Node, path: PathKey) -> Any:
        self.source.value_marks[path] = _position(node.start_mark)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        return self._scalars.construct_object(node, deep=True)

    def _mapping(self, node: yaml.MappingNode, path: PathKey) -> dict:
        result: dict = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                line, column = _position(key_node.start_mark)
                self.problems.append(Problem(line, column, dotted(path),
                                             "a key must be a plain name, not a list or mapping",
                                             self.source.file))
                continue
            # Keys are names: keep what was written, so `on:` or `yes:` stay words
            # instead of YAML 1.1's booleans, and `80:` stays "80".
            key = key_node.value if key_node.style is None else self._scalars.construct_object(key_node)
            key = key if isinstance(key, str) else str(key)
            child = (*path, key)
            if key in result:
                first_line = self.source.key_marks[child][0]
                line, column = _position(key_node.start_mark)
                self.problems.append(Problem(
                    line, column, dotted(child),
                    f"duplicate key '{key}' (first written on line {first_line}); "
                    "YAML would silently keep only the last one: merge them or remove one",
                    self.source.file))
                continue
            self.source.key_marks[child] = _position(key_node.start_mark)
            result[key] = self.build(value_node, child)
        return result


def _syntax_problem(file: str, error: yaml.YAMLError) -> Problem:
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    line, column = _position(mark) if mark else (1, 1)
    reason = getattr(error, "problem", None) or str(error)
    if "'\\t'" in reason or "\\t" in reason:
        message = ("a tab character is used for indentation; YAML allows only spaces: "
                   "replace the tab with spaces")
    else:
        context = getattr(error, "context", None)
        message = f"YAML syntax error: {reason}" + (f" ({context})" if context else "")
        message += "; check the indentation and quoting on this line or the one before"
    return Problem(line, column, "", message, file)


def parse_yaml(text: str, file: str) -> Source:
    """Parse YAML text into a Source; raise TopologyError on syntax errors or duplicate keys."""
    source = Source(file=file, data=None)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as error:
        raise TopologyError([_syntax_problem(file, error)]) from None
    if node is None:
        raise TopologyError([Problem(1, 1, "", "the file is empty: a topology needs at least "
                                     "'name', 'networks' and 'nodes'", file)])
    builder = _Builder(source)
    try:
        source.data = builder.build(node, ())
    except yaml.YAMLError as error:  # e.g. a bad !!tag or timestamp
        raise TopologyError([_syntax_problem(file, error)]) from None
    if builder.problems:
        raise TopologyError(builder.problems)
    return source


def read_yaml(path: Path | str) -> Source:
    """Read a topology file from disk, reporting unreadable files as topology errors."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TopologyError([Problem(1, 1, "", "no such file: give the path of a topology "
                                     "YAML file (see topology/ for examples)", str(path))]) from None
    except (OSError, UnicodeDecodeError) as error:
        raise TopologyError([Problem(1, 1, "", f"cannot read the file: {error}", str(path))]) from None
    return parse_yaml(text, str(path))
