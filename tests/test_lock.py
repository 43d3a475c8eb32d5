"""The application's environment is locked: the README's two set-up commands (and so CI) install
from ``constraints.txt``, which pins every package exactly, including the versions
``bayes_msc.accel`` is written for; ``pyproject.toml`` keeps ranges for library users."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import version

from conftest import ROOT


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, sep, pinned = line.partition("==")
            assert sep and pinned, f"constraints.txt: {line!r} is not an exact pin"
            pins[re.sub(r"[-_.]+", "-", name).lower()] = pinned
    return pins


def test_the_readme_set_up_commands_and_ci_install_from_the_lock():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = re.findall(r"```bash\n(python3 -m venv .*?)\n```", readme)
    assert len(commands) >= 2 and all("-c constraints.txt" in c for c in commands[:2]), commands
    assert "fit mortality" in commands[0] and "pytest" in commands[1]
    assert commands[1] in (ROOT / ".ci" / "run").read_text(encoding="utf-8")  # CI runs the README's command


def test_the_lock_pins_every_dependency_and_accels_versions():
    pins = _pins()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    for requirement in project["dependencies"] + project["optional-dependencies"]["test"] + project["optional-dependencies"]["docs"]:
        name = re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9_.-]+", requirement).group()).lower()
        assert name in pins, f"{name} is not pinned in constraints.txt"
    from bayes_msc import accel

    for name, pinned in accel.VERSIONS.items():
        assert pins[name] == pinned, f"constraints.txt pins {name} {pins[name]}, accel is written for {pinned}"
    assert all("==" not in r for r in project["dependencies"]), "pyproject.toml keeps ranges for library users"


def test_the_environment_is_the_locked_one():
    """The README's commands make this environment from the lock, so it holds the locked versions."""
    pins = _pins()
    for name in ("pymc", "pytensor", "nutpie", "numba", "arviz", "xarray", "numpy", "pandas", "scipy"):
        assert version(name) == pins[name], f"{name} {version(name)} installed, {pins[name]} locked"
