"""What the importers share: the report and a YAML writer whose output the loader reads back."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


@dataclass
class ImportReport:
    """How an import went: per problem, converted or the reason it was not."""

    source: str
    converted: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # problem id -> reason
    cases: int = 0
    files: list[Path] = field(default_factory=list)

    def skip(self, problem: str, reason: str) -> None:
        self.skipped[problem] = reason

    @property
    def total(self) -> int:
        return len(self.converted) + len(self.skipped)

    def summary(self) -> str:
        lines = [
            f"{self.source}: converted {len(self.converted)} of {self.total} problems "
            f"({self.cases} cases)"
        ]
        for reason, count in Counter(self.skipped.values()).most_common():
            lines.append(f"  skipped {count}: {reason}")
        lines += [f"  wrote {path}" for path in self.files]
        return "\n".join(lines)


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value and not any(line != line.rstrip() for line in value.splitlines()):
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_Dumper.add_representer(str, _str)


def dump_task_file(path: Path, suite: str, tasks: list[dict[str, Any]], header: str) -> Path:
    """Write one task file (plain data in, YAML out) with a comment header."""
    text = yaml.dump(
        {"suite": suite, "tasks": tasks},
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        width=100,
        default_flow_style=False,
    )
    comment = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(comment + text, encoding="utf-8")
    return path
