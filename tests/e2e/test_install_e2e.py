"""The wheel installs whole: its metadata declares what the README's commands need, and an
installed plugin (a fresh venv, or `pip install --user`) finds its bundled tasks from an empty
directory, by entry point, with node ids that select their case again.

The wheel is built from a copy of the sources with this environment's setuptools (no download).
The fresh installs get their dependencies (pytest, pydantic, ...) from this environment through
a path entry: what is tested is the package itself; that pip would fetch the dependencies is
what the metadata says.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from collections.abc import Iterator
from email.parser import Parser
from pathlib import Path

import pytest
from fakes.bench import not_passed

REPO = Path(__file__).resolve().parents[2]
TASKS = REPO / "tasks"
SITE = Path(sysconfig.get_paths()["purelib"])  # this environment's site-packages


def _run(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{argv}\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("build")
    source = root / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(
        REPO / "pytest_llmbench",
        source / "pytest_llmbench",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
          "-w", str(root / "dist"), str(source)], cwd=root)  # fmt: skip
    (built,) = (root / "dist").glob("pytest_llmbench-*.whl")
    return built


def _metadata(wheel: Path) -> tuple[list[str], dict[str, list[str]]]:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        info = next(n for n in names if n.endswith(".dist-info/METADATA"))
        message = Parser().parsestr(archive.read(info).decode())
    fields: dict[str, list[str]] = {}
    for key, value in message.items():
        fields.setdefault(key, []).append(value)
    return names, fields


def test_the_wheel_declares_what_the_readme_uses(wheel: Path) -> None:
    _, fields = _metadata(wheel)
    runtime = {r.split(">")[0].split("=")[0].strip().lower() for r in fields["Requires-Dist"]
               if "extra ==" not in r}  # fmt: skip
    assert {"pytest", "pytest-xdist", "pytest-json-report", "pydantic", "pyyaml", "openai"} <= (
        runtime
    )
    assert fields["License-Expression"] == ["Apache-2.0"]
    assert "License" not in fields  # the deprecated free-text field
    assert "Framework :: Pytest" in fields["Classifier"]
    assert not [c for c in fields["Classifier"] if c.startswith("License ::")]  # PEP 639


def test_the_wheel_carries_the_license_and_every_bundled_task(wheel: Path) -> None:
    names, fields = _metadata(wheel)
    assert fields["License-File"] == ["LICENSE"]
    (license_name,) = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
    with zipfile.ZipFile(wheel) as archive:
        assert "Apache License" in archive.read(license_name).decode()
    shipped = sorted(n for n in names if n.endswith(".yaml"))
    # Each file of the top-level tasks/, where the package's tasks link points.
    expected = sorted(
        f"pytest_llmbench/{p.relative_to(REPO).as_posix()}" for p in TASKS.rglob("*.yaml")
    )
    assert shipped == expected and len(expected) >= 15
    assert not [n for n in names if ".data/" in n]  # nothing outside the package


def _tooling_cases() -> int:
    from pytest_llmbench.taskfiles.loading import load_task_file

    return sum(
        len(task.cases)
        for path in sorted((TASKS / "tooling").glob("*.yaml"))
        for task in load_task_file(path).tasks
    )


def _dependencies_from_here(site_packages: Path) -> None:
    # A path entry, not a site dir: this environment's own (editable) install of the plugin is
    # not activated by it, so the plugin comes from the install under test.
    site_packages.mkdir(parents=True, exist_ok=True)
    (site_packages / "zz_test_dependencies.pth").write_text(f"{SITE}\n")


def _check_installed_plugin(python: Path, env: dict[str, str], empty: Path, where: Path) -> None:
    location = _run([str(python), "-c", "import pytest_llmbench; print(pytest_llmbench.__file__)"],
                    cwd=empty, env=env)  # fmt: skip
    assert Path(location.strip()).is_relative_to(where), location
    pytest_argv = [str(python), "-m", "pytest", "-p", "no:cacheprovider"]
    out = _run([*pytest_argv, "--models=reference", "-m", "tooling", "-q"], cwd=empty, env=env)
    assert f"{_tooling_cases()} passed" in out, out

    # A failed case's node id, from this empty directory, runs that case again.
    def failing(*args: str) -> tuple[list[str], str]:
        done = subprocess.run([*pytest_argv, "--models=null", *args, "-q", "-rf"], cwd=empty,
                              env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
        return not_passed(done.stdout.splitlines()), done.stdout

    nodeids, out = failing("-m", "tooling and easy")
    assert nodeids and nodeids[0].startswith("tasks/tooling/"), out
    again, out = failing(nodeids[0])
    assert again == [nodeids[0]], out


def _clean_env(**extra: str) -> dict[str, str]:
    dropped = ("LLMBENCH_", "PYTEST_", "PYTHONPATH", "VIRTUAL_ENV", "PYTHONUSERBASE")
    return {**{k: v for k, v in os.environ.items() if not k.startswith(dropped)}, **extra}


@pytest.fixture
def empty(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "empty"
    directory.mkdir()
    yield directory


def test_a_fresh_venv_install_finds_the_bundled_tasks(
    wheel: Path, tmp_path: Path, empty: Path
) -> None:
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp_path)
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
          "--no-index", str(wheel)], cwd=tmp_path)  # fmt: skip
    purelib = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                   cwd=tmp_path).strip()  # fmt: skip
    _dependencies_from_here(Path(purelib))
    env = _clean_env()
    _check_installed_plugin(python, env, empty, venv)
    # The README's -n and --json-report work: their plugins are the package's dependencies.
    out = _run([str(python), "-m", "pytest", "-p", "no:cacheprovider", "--models=reference",
                "-m", "tooling and easy", "-n", "2", "--json-report",
                "--json-report-file=report.json", "-q"], cwd=empty, env=env)  # fmt: skip
    assert "passed" in out and (empty / "report.json").is_file()


def test_a_user_install_finds_the_bundled_tasks(wheel: Path, tmp_path: Path, empty: Path) -> None:
    # `pip install --user` into its own PYTHONUSERBASE, with the interpreter this venv was made
    # from (a venv has no user site). Data files would land in <userbase>/share; package data
    # stays with the package.
    base = Path(getattr(sys, "_base_executable", sys.executable))
    userbase = tmp_path / "userbase"
    env = _clean_env(PYTHONUSERBASE=str(userbase))
    _run([sys.executable, "-m", "pip", "--python", str(base), "install", "-q", "--user",
          "--no-deps", "--no-index", "--break-system-packages", str(wheel)],
         cwd=tmp_path, env=env)  # fmt: skip
    user_site = _run([str(base), "-c", "import site; print(site.getusersitepackages())"],
                     cwd=tmp_path, env=env).strip()  # fmt: skip
    assert Path(user_site).is_relative_to(userbase)
    _dependencies_from_here(Path(user_site))
    _check_installed_plugin(base, env, empty, userbase)
