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

_PACKAGE = Path(__file__).resolve().parent


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
