"""Every Python example in README.md runs as written.

The blocks are taken from the README itself, so an example that drifts from the library
fails here. They run in a scratch folder holding the files they name (``my_register/``,
``my_analysis.toml``, ``estimates.csv``, the outcome module and spec the developer section
writes), with every fit's sampler shortened: the examples' meaning is what is checked, not
their numbers.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def readme_blocks(language: str) -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return [body for lang, body in FENCE.findall(text) if lang == language]


def test_the_readme_has_the_python_examples_this_test_runs():
    python = readme_blocks("python")
    assert len(python) >= 3
    assert any(b.startswith("import bayes_msc\n") for b in python)
    assert any(b.startswith("# vfd.py\n") for b in python)
    assert any(b.startswith("# vfd.toml\n") for b in readme_blocks("toml"))


def test_every_python_block_of_the_readme_runs(tmp_path, monkeypatch):
    import bayes_msc.api as api

    # the files the examples name
    shutil.copytree(ROOT / "data", tmp_path / "my_register", ignore=shutil.ignore_patterns("*.md"))
    shutil.copy(ROOT / "models" / "mortality.toml", tmp_path / "my_analysis.toml")
    (tmp_path / "estimates.csv").write_text("study,estimate,se\na,12.0,8.0\nb,20.0,10.0\nc,5.0,9.0\n", encoding="utf-8")
    (tmp_path / "vfd_estimates.csv").write_text("study,estimate,se\na,1.5,1.0\nb,2.5,1.2\nc,0.5,0.9\n",
                                                encoding="utf-8")
    modules = [b for b in readme_blocks("python") if b.startswith("# vfd.py\n")]
    (tmp_path / "vfd.py").write_text(modules[0], encoding="utf-8")
    spec = [b for b in readme_blocks("toml") if b.startswith("# vfd.toml\n")]
    (tmp_path / "vfd.toml").write_text(spec[0], encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))

    original = api.fit_spec

    def quick(spec, *args, **kwargs):  # the examples' calls, with a short sampler
        return original(spec.with_sampler(chains=2, draws=150, tune=150), *args, **kwargs)

    monkeypatch.setattr(api, "fit_spec", quick)
    ran = 0
    for number, block in enumerate(readme_blocks("python")):
        if block.startswith("# vfd.py\n"):
            continue  # a module the next block imports
        namespace: dict = {"__name__": f"readme_block_{number}"}
        exec(compile(block, f"README.md python block {number + 1}", "exec"), namespace)
        ran += 1
    assert ran >= 2
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
