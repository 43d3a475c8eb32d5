"""Every Python example in README.md runs as written.

The blocks are taken from the README itself, so an example that drifts from the library
fails here. They run in a scratch folder holding the files they name (``my_register/``,
``my_analysis.toml``, ``estimates.csv``), with every fit's sampler shortened: the examples'
meaning is what is checked, not their numbers. (The docs' examples run in ``test_docs.py``.)
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def fenced_blocks(path: Path, language: str) -> list[str]:
    text = path.read_text(encoding="utf-8")
    return [body for lang, body in FENCE.findall(text) if lang == language]


def readme_blocks(language: str) -> list[str]:
    return fenced_blocks(ROOT / "README.md", language)


def example_files(folder: Path) -> None:
    """The files the README's and the docs' library examples name, in ``folder``."""
    shutil.copytree(ROOT / "data", folder / "my_register", ignore=shutil.ignore_patterns("*.md"))
    shutil.copy(ROOT / "models" / "mortality.toml", folder / "my_analysis.toml")
    (folder / "estimates.csv").write_text("study,estimate,se\na,12.0,8.0\nb,20.0,10.0\nc,5.0,9.0\n", encoding="utf-8")


def run_blocks(blocks: list[str], where: str, monkeypatch) -> int:
    """Run each block in its own namespace with every fit's sampler shortened; the number run."""
    import bayes_msc.api as api

    original = api.fit_spec

    def quick(spec, *args, **kwargs):  # the examples' calls, with a short sampler
        return original(spec.with_sampler(chains=2, draws=150, tune=150), *args, **kwargs)

    monkeypatch.setattr(api, "fit_spec", quick)
    for number, block in enumerate(blocks):
        namespace: dict = {"__name__": f"example_block_{number}"}
        exec(compile(block, f"{where} python block {number + 1}", "exec"), namespace)
    return len(blocks)


def test_the_readme_has_the_python_examples_this_test_runs():
    python = readme_blocks("python")
    assert python and all(b.startswith("import bayes_msc\n") for b in python)


def test_every_python_block_of_the_readme_runs(tmp_path, monkeypatch):
    example_files(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert run_blocks(readme_blocks("python"), "README.md", monkeypatch) >= 1
    assert (tmp_path / "results" / "posterior.nc").is_file()  # result.save("results/") ran
    assert not (ROOT / "results").exists()


@pytest.mark.parametrize("name", ["DesignSettings", "design"])
def test_what_the_readme_names_in_the_design_section_exists(name):
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "bayes_msc.design.design(result, DesignSettings(...))" in text
    assert "from bayes_msc.design.plan import DesignSettings" in text
    import bayes_msc.design
    import bayes_msc.design.plan

    assert hasattr(bayes_msc.design.plan if name == "DesignSettings" else bayes_msc.design, name)
