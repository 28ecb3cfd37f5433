"""Read YAML while remembering where every key and value stands.

libyaml's event stream is turned into plain Python data (yaml_compose, with
limits on depth, size and aliases) plus a table from field path to (line, column) so that later
passes can point at the exact spot of a mistake. Duplicate keys, which plain
YAML loaders silently accept (the last one wins), are reported here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lab.topology.errors import Problem, TopologyError
from lab.topology.yaml_compose import EventBuilder, LimitExceeded, dotted

FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)   # libyaml when installed

PathKey = tuple[Any, ...]


@dataclass
class Source:
    """Plain data from a YAML file, plus where each path came from (1-based)."""

    file: str
    data: Any
    value_marks: dict[PathKey, tuple[int, int]] = field(default_factory=dict)
    key_marks: dict[PathKey, tuple[int, int]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)   # found while reading (duplicate keys)

    def mark(self, path: PathKey, at_key: bool = False) -> tuple[int, int]:
        """Position of the value (or key) at path, falling back to the nearest ancestor."""
        table = self.key_marks if at_key else self.value_marks
        probe = self._as_written(tuple(path))
        while probe:
            if probe in table:
                return table[probe]
            if isinstance(probe[-1], int) and probe in self.value_marks:
                return self.value_marks[probe]  # list items have no key: point at the item
            probe = probe[:-1]
        return self.value_marks.get((), (1, 1))

    def _as_written(self, path: PathKey) -> PathKey:
        """A path through a list written as names (networks: [lan, dmz]) uses the names;
        the file has list items: point at the item."""
        node: Any = self.data
        for depth, step in enumerate(path):
            if isinstance(node, list) and isinstance(step, str) and step in node:
                return (*path[:depth], node.index(step), *path[depth + 1:])
            node = node.get(step) if isinstance(node, dict) else \
                node[step] if isinstance(node, list) and isinstance(step, int) and step < len(node) else None
        return path

    def problem(self, path: PathKey, message: str, at_key: bool = False,
                mark_path: PathKey | None = None) -> Problem:
        """A Problem about path, placed at path (or at mark_path when the path is absent)."""
        line, column = self.mark(path if mark_path is None else mark_path, at_key)
        return Problem(line, column, dotted(path), message, self.file)


MAX_BYTES = 2_000_000   # a 5,000-node topology is about 250 kB


def _position(mark: yaml.Mark) -> tuple[int, int]:
    return mark.line + 1, mark.column + 1


def _line_column(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _reader_problem(file: str, text: str, error: yaml.reader.ReaderError) -> Problem:
    line, column = _line_column(text, error.position)
    char = error.character if isinstance(error.character, str) else chr(error.character)
    return Problem(line, column, "", f"the character {ascii(char)[1:-1]} (code {ord(char)}) "
                   "cannot appear in a YAML file: remove it, or write it as an escape inside "
                   "double quotes", file)


def _syntax_problem(file: str, error: yaml.YAMLError) -> Problem:
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    context = getattr(error, "context", None) or ""
    if "quoted scalar" in context and getattr(error, "context_mark", None):
        # An unclosed quote is only noticed where the file ends: point where it opened.
        line, column = _position(error.context_mark)
        return Problem(line, column, "", "this quote is never closed: add the closing quote "
                       "at the end of the value", file)
    line, column = _position(mark) if mark else (1, 1)
    reason = getattr(error, "problem", None) or str(error)
    if "'\\t'" in reason or "\\t" in reason:
        message = ("a tab character is used for indentation; YAML allows only spaces: "
                   "replace the tab with spaces")
    else:
        message = f"YAML syntax error: {reason}" + (f" ({context})" if context else "")
        message += "; check the indentation and quoting on this line or the one before"
    return Problem(line, column, "", message, file)


def _first_syntax_problem(text: str, file: str) -> Problem:
    """Re-read with PyYAML's own parser: slower than libyaml, but its messages say more."""
    try:
        for _ in yaml.parse(text, Loader=yaml.SafeLoader):
            pass
    except yaml.reader.ReaderError as error:
        return _reader_problem(file, text, error)
    except yaml.YAMLError as error:
        return _syntax_problem(file, error)
    return Problem(1, 1, "", "the file is not valid YAML: check its quoting and indentation", file)


def _tag_problem(file: str, error: yaml.constructor.ConstructorError) -> Problem:
    line, column = _position(error.problem_mark)
    return Problem(line, column, "", "this value's '!' tag (or its text) cannot be read: a "
                   "topology uses plain values; remove the tag, or quote the value", file)


def _second_document(file: str, event: yaml.Event) -> TopologyError:
    line, column = _position(event.start_mark)
    return TopologyError([Problem(line, column, "", "a second YAML document ('---'): a topology "
                                  "file holds one; remove the '---' and what follows, or put it "
                                  "in its own file", file)])


def _compose(text: str, source: Source) -> EventBuilder:
    builder = EventBuilder(source.file, source.value_marks, source.key_marks)
    documents = 0
    try:
        for event in yaml.parse(text, Loader=FAST_LOADER):
            if isinstance(event, yaml.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    raise _second_document(source.file, event)
            builder.feed(event)
    except LimitExceeded as refusal:
        raise TopologyError([refusal.problem]) from None
    except yaml.constructor.ConstructorError as error:   # e.g. a !!python tag, a bad !!timestamp
        raise TopologyError([_tag_problem(source.file, error)]) from None
    except yaml.YAMLError:
        raise TopologyError([_first_syntax_problem(text, source.file)]) from None
    return builder


def parse_yaml(text: str, file: str) -> Source:
    """Parse YAML text into a Source; raise TopologyError on syntax errors and limits.
    Duplicate keys are kept in source.problems, to be reported with the structure's."""
    source = Source(file=file, data=None)
    if len(text) > MAX_BYTES:
        raise TopologyError([Problem(1, 1, "", f"the file has {len(text):,} characters: a topology "
                                     f"is at most {MAX_BYTES:,}; split the lab or check that this "
                                     "is the right file", file)])
    try:
        builder = _compose(text, source)
    except UnicodeEncodeError as error:   # a lone surrogate: only text handed in by a program
        line, column = _line_column(text, error.start)
        raise TopologyError([Problem(line, column, "", "this character is not valid Unicode "
                                     "text: remove it", file)]) from None
    if builder.root is None:
        raise TopologyError([Problem(1, 1, "", "the file is empty: a topology needs at least "
                                     "'name', 'networks' and 'nodes'", file)])
    source.data = builder.root
    source.problems = builder.problems   # duplicate keys: reported with the structure's problems
    return source


def _not_utf8(path: Path, error: UnicodeDecodeError) -> TopologyError:
    data = error.object
    line = data.count(b"\n", 0, error.start) + 1
    column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
    byte = data[error.start]
    return TopologyError([Problem(line, column, "", f"the byte 0x{byte:02x} is not UTF-8 text: "
                                  "save the file as UTF-8 (an editor's 'encoding' menu does it)",
                                  str(path))])


def read_yaml(path: Path | str) -> Source:
    """Read a topology file from disk, reporting unreadable files as topology errors."""
    return parse_yaml(read_text(path), str(path))


def read_text(path: Path | str) -> str:
    """A topology file's text; an unreadable file is a topology error naming it."""
    path = Path(path)
    try:
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise TopologyError([Problem(1, 1, "", "no such file: give the path of a topology "
                                     "YAML file (see topology/ for examples)", str(path))]) from None
    except UnicodeDecodeError as error:
        raise _not_utf8(path, error) from None
    except OSError as error:
        raise TopologyError([Problem(1, 1, "", f"cannot read the file ({error.strerror}): check "
                                     "the path and its permissions", str(path))]) from None
