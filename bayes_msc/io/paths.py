"""Where the package finds its default specs, its embedded register and its cache.

An installed wheel carries the specs and the register inside the package
(``bayes_msc/_models``, ``bayes_msc/_data``; see ``pyproject.toml``), found through
:mod:`importlib.resources`; a source checkout (or an editable install of one) uses its
top-level ``models/`` and ``data/``. The folder beside the package counts as a checkout only
when it holds *this* project's ``pyproject.toml``: a ``models/`` or ``data/`` folder that
another package leaves in site-packages can neither break nor replace the bundled ones.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import InputError, Location

_PACKAGE = Path(__file__).resolve().parents[1]  # bayes_msc/


def _checkout_root() -> Path | None:
    root = _PACKAGE.parent
    try:
        project = (root / "pyproject.toml").read_text(encoding="utf-8")
    except OSError:
        return None
    return root if 'name = "bayes_msc"' in project else None


def bundled_dir(name: str) -> Path:
    """``models`` or ``data``: the package's own copy, wherever it is installed."""
    from importlib.resources import files

    packaged = Path(str(files("bayes_msc") / f"_{name}"))
    if packaged.is_dir():
        return packaged
    root = _checkout_root()
    if root is not None and (root / name).is_dir():
        return root / name
    raise InputError(f"the package's bundled {name}/ folder is missing from {_PACKAGE}: reinstall bayes_msc")


def default_models_dir() -> Path:
    return bundled_dir("models")


def analysis_names() -> list[str]:
    return sorted(p.stem for p in default_models_dir().glob("*.toml"))


def resolve_spec_path(name_or_path: str | os.PathLike) -> Path:
    """A name (``mortality``) resolves in the default models folder; anything else is a path."""
    text = str(name_or_path)
    candidate = Path(text)
    if candidate.suffix == ".toml" or os.sep in text or candidate.exists():
        if not candidate.is_file():
            raise InputError("spec file not found", Location(text))
        return candidate
    named = default_models_dir() / f"{text}.toml"
    if not named.is_file():
        known = ", ".join(analysis_names()) or "none"
        raise InputError(f"unknown analysis {text!r}; known analyses: {known} (or give a path to a .toml spec)")
    return named


# -- where commands write by default ---------------------------------------------------------

OUTPUT_DIR = "reports"  # relative to the working directory
OWN_CHECKOUT_OUTPUT_DIR = "bayes_msc_out"  # used instead when ./reports is the package's own


def shipped_reports_dir() -> Path | None:
    """The package checkout's own ``reports/`` (shipped examples and calibrations), if any."""
    root = _checkout_root()
    return root / "reports" if root is not None and (root / "reports").is_dir() else None


def default_output_dir() -> Path:
    """``./reports``, unless that folder is this package's own checkout's ``reports/`` (run from
    the clone's root), whose shipped examples and calibrations a run must not replace: then
    ``./bayes_msc_out``."""
    shipped = shipped_reports_dir()
    here = Path(OUTPUT_DIR)
    if shipped is not None and here.resolve() == shipped.resolve():
        return Path(OWN_CHECKOUT_OUTPUT_DIR)
    return here


def protected_reason(path: str | os.PathLike) -> str | None:
    """Why an existing ``path`` must not be overwritten without ``--force`` (None if it may be):
    a file inside the installed package, a shipped example in the checkout's ``reports/``, or
    any other file the package's git repository tracks."""
    target = Path(path)
    if not target.is_file():
        return None
    resolved = target.resolve()
    if resolved.is_relative_to(_PACKAGE):
        return "it is part of the installed bayes_msc package"
    root = _checkout_root()
    if root is None or not resolved.is_relative_to(root.resolve()):
        return None
    relative = resolved.relative_to(root.resolve())
    if relative.parts[0] == "reports":
        return "it is a shipped example in the bayes_msc checkout's reports/"
    import subprocess

    try:
        tracked = subprocess.run(["git", "-C", str(root), "ls-files", "--error-unmatch", "--", str(relative)],
                                 capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):  # no git: every file of the checkout counts as its own
        tracked = True
    return "it is a file tracked in the bayes_msc repository" if tracked else None
