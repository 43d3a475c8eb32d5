"""Bundled specs and data are the package's own, wherever it is installed."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_installed_layout_ignores_foreign_models_and_data_folders(tmp_path):
    """As in site-packages: the package with its _models/_data, and beside it a models/ and
    data/ that another package left there (a broken spec, an empty register)."""
    site = tmp_path / "site"
    shutil.copytree(ROOT / "bayes_msc", site / "bayes_msc", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "models", site / "bayes_msc" / "_models")
    shutil.copytree(ROOT / "data", site / "bayes_msc" / "_data")
    (site / "models").mkdir()
    (site / "models" / "mortality.toml").write_text("this is not a spec [", encoding="utf-8")
    (site / "models" / "intruder.toml").write_text('name = "intruder"\n', encoding="utf-8")
    (site / "data").mkdir()
    code = (
        "import bayes_msc\n"
        "from bayes_msc.io.paths import analysis_names, default_models_dir\n"
        "from bayes_msc.evidence.register import default_data_dir\n"
        "spec = bayes_msc.load_spec('mortality')\n"
        "register = bayes_msc.load_register()\n"
        "print(default_models_dir()); print(default_data_dir()); print(spec.path)\n"
        "print(','.join(analysis_names())); print(len(register.studies))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                         env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    models_dir, data_dir, spec_path, names, n_studies = out.stdout.strip().splitlines()
    assert Path(models_dir) == site / "bayes_msc" / "_models"
    assert Path(data_dir) == site / "bayes_msc" / "_data"
    assert Path(spec_path).parent == site / "bayes_msc" / "_models"
    assert "intruder" not in names.split(",") and "mortality" in names.split(",")
    assert int(n_studies) > 0


def test_checkout_uses_its_own_folders():
    from bayes_msc.evidence.register import default_data_dir
    from bayes_msc.io.paths import default_models_dir

    assert default_models_dir() == ROOT / "models"
    assert default_data_dir() == ROOT / "data"
