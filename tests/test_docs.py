"""The documentation's tutorials are executed, so they cannot rot.

Every ```python block of each ``docs/tutorials/*.md`` page runs, in order, in one namespace per
page, in a scratch working folder: a renamed function, a changed argument or a wrong attribute
fails here. The tutorials choose short sampler settings themselves (``chains``, ``draws``,
``tune`` of :func:`bayes_msc.fit`), so what runs is what a reader copies. Fits share the test
session's compile cache (``tests/conftest.py``). The developer page's outcome example runs too,
and the ```bash blocks of the tutorials that are cheap (``data check``) run through the command
line.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

FENCE = re.compile(r"^```(\w+)[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
TUTORIALS = sorted((ROOT / "docs" / "tutorials").glob("*.md"))


def blocks(path: Path, language: str) -> list[str]:
    text = path.read_text(encoding="utf-8")
    return [body for lang, body in FENCE.findall(text) if lang == language]


def test_there_are_tutorials_and_each_has_python():
    names = {p.stem for p in TUTORIALS}
    assert {"own-register", "next-trial", "normal-normal", "reading-the-report"} <= names, names
    for page in TUTORIALS:
        assert blocks(page, "python"), f"{page.name} has no python block"


def run_page(page: Path, workdir: Path) -> dict:
    namespace: dict = {"__name__": f"docs_{page.stem.replace('-', '_')}"}
    for number, block in enumerate(blocks(page, "python"), start=1):
        code = compile(block, f"{page.relative_to(ROOT)} python block {number}", "exec")
        exec(code, namespace)
    return namespace


@pytest.mark.parametrize("page", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_runs(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    run_page(page, tmp_path)
    assert not (ROOT / "my_register").exists() and not (ROOT / "estimates.csv").exists()


def test_the_register_tutorials_cli_check_runs(tmp_path, monkeypatch):
    """The own-register page's ```bash lines that only read (``data check``, ``data show``) run
    against the register its Python wrote."""
    page = ROOT / "docs" / "tutorials" / "own-register.md"
    monkeypatch.chdir(tmp_path)
    run_page(page, tmp_path)
    lines = [line.split("#", 1)[0].strip() for block in blocks(page, "bash") for line in block.splitlines()]
    commands = [line for line in lines if line.startswith("python -m bayes_msc data ")]
    assert commands, "the page shows `data check` / `data show`"
    for command in commands:
        argv = shlex.split(command)
        run = subprocess.run([sys.executable, *argv[1:]], cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, (command, run.stderr[-2000:])


def test_the_adding_an_outcome_example_runs(tmp_path, monkeypatch):
    """The developer page's outcome module, spec and use, as written (short sampler)."""
    import bayes_msc.api as api

    page = ROOT / "docs" / "developers" / "adding-an-outcome.md"
    python = blocks(page, "python")
    (module,) = [b for b in python if b.startswith("# vfd.py\n")]
    (spec,) = [b for b in blocks(page, "toml") if b.startswith("# vfd.toml\n")]
    (tmp_path / "vfd.py").write_text(module, encoding="utf-8")
    (tmp_path / "vfd.toml").write_text(spec, encoding="utf-8")
    (tmp_path / "vfd_estimates.csv").write_text("study,estimate,se\na,1.5,1.0\nb,2.5,1.2\nc,0.5,0.9\n",
                                                encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    original = api.fit_spec
    monkeypatch.setattr(api, "fit_spec", lambda spec, *a, **k: original(
        spec.with_sampler(chains=2, draws=150, tune=150), *a, **k))
    # the outcome with its own likelihood (and its report layout) runs in tests/test_outcome_registry.py
    uses = [b for b in python if not b.startswith(("# vfd.py\n", "# robust_vfd.py\n", "# robust_vfd_report.py\n"))]
    assert uses
    for number, block in enumerate(uses):
        exec(compile(block, f"adding-an-outcome.md python block {number + 1}", "exec"), {"__name__": "vfd_use"})
    sys.modules.pop("vfd", None)


def test_the_library_page_runs(tmp_path, monkeypatch):
    """The library page's example (docs/results.md) as written, short sampler, in a folder with
    the files it names (as the README's examples)."""
    from test_readme import example_files, run_blocks

    example_files(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert run_blocks(blocks(ROOT / "docs" / "results.md", "python"), "docs/results.md", monkeypatch) >= 1
    assert (tmp_path / "results" / "posterior.nc").is_file()


def test_the_docs_pages_name_no_working_notes():
    """Users cite publications: no page points at the project's working notes."""
    for page in (ROOT / "docs").rglob("*.md"):
        text = page.read_text(encoding="utf-8")
        assert "EVIDENCE.md" not in text and "DESIGN.md" not in text, page


def test_the_site_builds_strict(tmp_path):
    """``mkdocs build --strict`` (CI runs it too); skipped where the docs extra is not installed."""
    from conftest import require_module

    require_module("mkdocs", "the docs build needs the docs extra: pip install -c constraints.txt -e '.[docs]'")
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert (tmp_path / "site" / "index.html").is_file()


def test_the_report_tables_read_what_a_json_has(tmp_path):
    """The build hook renders the saved results defensively: a field added later (the operating
    characteristics' ``settings.control_risk``) is shown, a missing one is a dash, not a crash."""
    import importlib.util
    import json

    spec = importlib.util.spec_from_file_location("docs_hook", ROOT / "docs" / "_hooks" / "reports.py")
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    (tmp_path / "reports").mkdir()
    oc = json.loads((ROOT / "reports" / "mortality.oc.json").read_text(encoding="utf-8"))
    oc["settings"]["control_risk"] = "hierarchical: predicted from the register's control arms"
    del oc["seconds"], oc["table"][0]["mcse"]
    (tmp_path / "reports" / "mortality.oc.json").write_text(json.dumps(oc), encoding="utf-8")
    (tmp_path / "reports" / "x.sbc.json").write_text(json.dumps({"analysis": "x", "parameters": ["mu"]}),
                                                     encoding="utf-8")
    hook._ROOT = tmp_path
    text = hook.render_oc()
    assert "control risks: hierarchical: predicted from the register's control arms" in text
    assert "simulated registers 4000 at true OR 1, 1000 at true OR 0.8" in text
    assert f"| 1 | P(OR < 1) > γ | {oc['table'][0]['rate']:.3f} ± – |" in text
    # a file saved before the control risk and the per-truth counts were recorded
    old = {**oc, "reps_per_truth": 400, "settings": {**oc["settings"], "rare_control_risk": 0.02}}
    del old["settings"]["control_risk"], old["settings"]["reps"]
    (tmp_path / "reports" / "mortality.oc.json").write_text(json.dumps(old), encoding="utf-8")
    text = hook.render_oc()
    assert "400 per true OR" in text and "control risks: observed, two smallest trials at 0.02" in text
    assert "| x | – | **–** | mu – |" in hook.render_sbc()
    assert "No saved simulation study" in hook.render_simstudy()


def test_the_report_tables_say_which_register_each_result_was_made_on(tmp_path):
    """A saved simulation result names the register it was made on; one made on an earlier
    version of the embedded register says so and what has changed since, one made on other
    data says it is not the current register."""
    import importlib.util
    import json
    import shutil

    spec = importlib.util.spec_from_file_location("docs_hook", ROOT / "docs" / "_hooks" / "reports.py")
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    shutil.copytree(ROOT / "data", tmp_path / "data", ignore=shutil.ignore_patterns("*.md"))
    (tmp_path / "reports").mkdir()
    hook._ROOT = tmp_path
    import bayes_msc

    current = bayes_msc.load_register(tmp_path / "data").content_hash  # read as the build reads data/
    earlier = next(old for old, (new, _) in hook.REGISTER_CHANGES.items() if new == current)
    saved = json.loads((ROOT / "reports" / "mortality.sbc.json").read_text(encoding="utf-8"))
    for name, made_on in [("a_current", current), ("b_earlier", earlier), ("c_other", "f" * 64), ("d_none", None)]:
        d = {**saved, "register_hash": made_on}
        if made_on is None:
            del d["register_hash"]
        (tmp_path / "reports" / f"{name}.sbc.json").write_text(json.dumps(d), encoding="utf-8")
    notes = {line.split("`")[1].split("/")[1]: line for line in hook.render_sbc().splitlines() if line.startswith("* ")}
    assert notes["a_current.sbc.json"].endswith(f"Made on the current embedded register (`{current[:12]}`).")
    assert (f"Made on an earlier version of the embedded register (`{earlier[:12]}`; now `{current[:12]}`): "
            "since then, Adas 2021 was reclassified") in notes["b_earlier.sbc.json"]
    assert f"Made on data `ffffffffffff`, not the current embedded register (`{current[:12]}`)." in notes["c_other.sbc.json"]
    assert "not recorded" in notes["d_none.sbc.json"]
    # the simulation study and the operating characteristics say it in their own paragraph
    simstudy = json.loads((ROOT / "reports" / "mortality.simstudy.json").read_text(encoding="utf-8"))
    (tmp_path / "reports" / "mortality.simstudy.json").write_text(json.dumps({**simstudy, "register_hash": earlier}),
                                                                  encoding="utf-8")
    assert "Made on an earlier version of the embedded register" in hook.render_simstudy()
    oc = json.loads((ROOT / "reports" / "mortality.oc.json").read_text(encoding="utf-8"))
    (tmp_path / "reports" / "mortality.oc.json").write_text(json.dumps({**oc, "register_hash": current}),
                                                            encoding="utf-8")
    assert f"Made on the current embedded register (`{current[:12]}`)." in hook.render_oc()
    # a register edited in place is no longer the version the earlier result is compared with
    studies = tmp_path / "data" / "studies.csv"
    studies.write_text(studies.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    hook._CURRENT_REGISTER = None
    assert "Made on data" in hook.render_sbc().split("b_earlier.sbc.json`:")[1].splitlines()[0]
