"""The argument-matcher grammar of tooling cases: how a matcher is written, checked and read.

This is part of the task format, and its only definition: the loader (taskfiles/loading.py) checks
every matcher of a task file with `check_matchers`, and the scorer (suites/matching.py) reads them
with `parse_matcher` and gives them their meaning. It imports nothing of the package.

A matcher is plain YAML/JSON data:

- a literal: a string, number, bool or null; a list, whose elements are matchers; a dict whose
  values are matchers (so nesting is recursive);
- a dict with exactly one head, ``equals``, ``one_of``, ``contains`` or ``approx``, and only the
  modifiers that head takes (`HEADS`): ``{equals: V}`` (V taken literally at its own level, so a
  literal dict with a head key is written ``{equals: {...}}``), ``{one_of: [A, B]}`` (a non-empty
  list of matchers), ``{contains: s}`` (a string), ``{approx: x, tol: 1e-6, rel: 0}`` (finite
  numbers, tol and rel at least 0); ``optional``, ``unordered`` and ``normalize`` are true or
  false.

A dict key that looks like a misspelt head (``{contians: x}``) is refused with the nearest name:
as a literal it would silently match only an object with that key.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "DEFAULT_REL",
    "DEFAULT_TOL",
    "HEADS",
    "Matcher",
    "MatcherError",
    "check_matcher",
    "check_matchers",
    "head_of",
    "is_optional",
    "nearest_name",
    "parse_matcher",
]

Head = Literal["equals", "one_of", "contains", "approx"]
Kind = Literal["literal", Head]
Path = tuple[str | int, ...]  # from an argument's name down to a matcher inside it

# Each head and the modifiers it takes.
HEADS: Mapping[Head, frozenset[str]] = {
    "equals": frozenset({"optional", "unordered", "normalize"}),
    "one_of": frozenset({"optional", "unordered", "normalize"}),
    "contains": frozenset({"optional"}),
    "approx": frozenset({"optional", "tol", "rel"}),
}
_MODIFIERS = frozenset().union(*HEADS.values())
_FLAGS = ("optional", "unordered", "normalize")
DEFAULT_TOL = 1e-6
DEFAULT_REL = 0.0


def nearest_name(word: str, names: Iterable[str]) -> str:
    """' (did you mean X?)' when `word` looks like a misspelling of one of `names`, else ''.

    The task format's one spelling hint: unknown keys (taskfiles/loading.py) and misspelt heads use
    it."""
    close = difflib.get_close_matches(word, sorted(names), n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close and close[0] != word else ""


class MatcherError(ValueError):
    """A matcher that cannot be used. `path` leads from the argument's name to the matcher at
    fault, and `key` (when set) is its key at fault, so the loader can point at that line."""

    def __init__(self, path: Path, reason: str, key: str | None = None) -> None:
        super().__init__(f"{_label(path)}: {reason}")
        self.path = path
        self.key = key

    @property
    def location(self) -> Path:
        """Where the fault is, below the arguments (`path`, then `key`)."""
        return (*self.path, self.key) if self.key is not None else self.path


def _label(path: Path) -> str:
    """`city.one_of[0]`; `matcher` for a matcher checked on its own."""
    text = "" if path and isinstance(path[0], str) else "matcher"
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else part
    return text


@dataclass(frozen=True)
class Matcher:
    """One level of a matcher, read: its kind, its value (for a literal, the data itself; its
    elements or values are matchers again) and its modifiers, defaults filled in."""

    kind: Kind
    value: Any
    optional: bool = False
    unordered: bool = False
    normalize: bool = False
    tol: float = DEFAULT_TOL
    rel: float = DEFAULT_REL


def head_of(data: Any) -> Head | None:
    """The head of a matcher dict, or None for a literal (a dict without exactly one head)."""
    if not isinstance(data, Mapping):
        return None
    heads: list[Head] = [k for k in data if k in HEADS]
    return heads[0] if len(heads) == 1 else None


def parse_matcher(data: Any) -> Matcher:
    """The top level of a matcher, read (the loader has checked it; see `check_matcher`)."""
    head = head_of(data)
    if head is None:
        return Matcher(kind="literal", value=data)
    return Matcher(
        kind=head,
        value=data[head],
        optional=bool(data.get("optional", False)),
        unordered=bool(data.get("unordered", False)),
        normalize=bool(data.get("normalize", False)),
        tol=float(data.get("tol", DEFAULT_TOL)),
        rel=float(data.get("rel", DEFAULT_REL)),
    )


def is_optional(data: Any) -> bool:
    """Whether the matcher lets its argument be omitted."""
    return parse_matcher(data).optional


def check_matchers(matchers: Mapping[str, Any]) -> None:
    """Check a case's `args` (argument name -> matcher); raise MatcherError for the first fault."""
    for name, matcher in matchers.items():
        check_matcher(matcher, (name,))


def check_matcher(data: Any, path: Path = ()) -> None:
    """Raise MatcherError if `data` (recursively) is not a matcher: several heads in one dict,
    a modifier its head does not take, a misspelt head, a one_of that is not a non-empty list,
    a contains that is not a string, an approx/tol/rel that is not a finite number (tol and rel
    at least 0), a flag that is not a bool, a literal that is not JSON."""
    if isinstance(data, Mapping):
        heads: list[Head] = [k for k in data if k in HEADS]
        if len(heads) > 1:
            raise MatcherError(
                path,
                f"a matcher has exactly one of {', '.join(HEADS)} (got {', '.join(heads)}); "
                "wrap a literal dict in {equals: ...}",
            )
        if heads:
            _check_head(data, heads[0], path)
            return
    _check_literal(data, path, literal=True)


def _check_head(data: Mapping[Any, Any], head: Head, path: Path) -> None:
    bad = [k for k in data if k != head and k not in HEADS[head]]
    if bad:
        hint = nearest_name(str(bad[0]), HEADS[head])
        raise MatcherError(path, f"{head} does not take {bad[0]!r}{hint}", key=str(bad[0]))
    for flag in _FLAGS:
        if flag in data and not isinstance(data[flag], bool):
            raise MatcherError(path, f"{flag} must be true or false", key=flag)
    value = data[head]
    if head == "one_of":
        if not isinstance(value, list) or not value:
            raise MatcherError(path, "one_of needs a non-empty list", key=head)
        for index, option in enumerate(value):
            check_matcher(option, (*path, head, index))
    elif head == "contains":
        if not isinstance(value, str):
            raise MatcherError(path, "contains needs a string", key=head)
    elif head == "approx":
        for key in ("approx", "tol", "rel"):
            number = data.get(key, 0.0)
            if isinstance(number, bool) or not isinstance(number, (int, float)):
                raise MatcherError(path, f"{key} needs a number", key=key)
            if not math.isfinite(number):
                raise MatcherError(path, f"{key} needs a finite number", key=key)
            if key != "approx" and number < 0:
                raise MatcherError(path, f"{key} must be >= 0", key=key)
    else:  # equals: its own level is literal, what it holds are matchers again
        _check_literal(value, (*path, head), literal=False)


def _check_literal(value: Any, path: Path, *, literal: bool) -> None:
    if isinstance(value, Mapping):
        for key, sub in value.items():
            if not isinstance(key, str):
                raise MatcherError(path, "dict keys must be strings")
            # A misspelt head, alone or with modifiers: `{contians: x}`, `{aprox: 1, tol: 0.1}`.
            others_are_modifiers = all(k in _MODIFIERS for k in value if k != key)
            hint = nearest_name(key, HEADS) if literal and others_are_modifiers else ""
            if hint:
                raise MatcherError(
                    path,
                    f"unknown matcher {key!r}{hint}; an object argument with this key is "
                    "written {equals: {...}}",
                    key=key,
                )
            check_matcher(sub, (*path, key))
    elif isinstance(value, (list, tuple)):
        for index, sub in enumerate(value):
            check_matcher(sub, (*path, index))
    elif not isinstance(value, (str, int, float, bool, type(None))):
        raise MatcherError(path, f"unsupported literal {type(value).__name__}")
