"""Where the package finds its default specs, its cache and (via evidence.register) its data.

In a source checkout the specs live in the top-level ``models/`` folder; an installed wheel
carries a copy in ``bayes_msc/_models`` (see ``pyproject.toml``). Both are looked up so that
``python -m bayes_msc fit mortality`` works either way.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import InputError, Location

_PACKAGE = Path(__file__).resolve().parent


def default_models_dir() -> Path:
    checkout = _PACKAGE.parent / "models"
    return checkout if checkout.is_dir() else _PACKAGE / "_models"


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


def cache_dir() -> Path:
    """Persistent per-user cache (pytensor's compiled code lives here).

    ``BAYES_MSC_CACHE_DIR`` overrides it, e.g. to start a benchmark from a cold cache.
    """
    override = os.environ.get("BAYES_MSC_CACHE_DIR")
    if override:
        return Path(override)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "bayes_msc"


def check_cache_dir() -> Path | None:
    """The compile cache is usable: a writable folder (or creatable), with no comma in its
    path (pytensor's flags are comma-separated: a comma would silently split the path).
    Raises an :class:`InputError` naming ``BAYES_MSC_CACHE_DIR`` when it is set. Nothing to
    check when ``PYTENSOR_FLAGS`` chooses pytensor's folder itself."""
    from .fileio import check_output_dir
    from .runtime import user_chose_compiledir

    if user_chose_compiledir():
        return None
    path = cache_dir()
    what = "BAYES_MSC_CACHE_DIR" if os.environ.get("BAYES_MSC_CACHE_DIR") else "compile cache"
    if "," in str(path):
        raise InputError(f"{path} contains a comma, which pytensor's flags cannot hold; choose another folder",
                         Location(what))
    return check_output_dir(path, what)
