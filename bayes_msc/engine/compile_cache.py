"""A damaged compile cache is moved aside and the model compiled afresh, never a crash.

numba keeps compiled code in pytensor's compile folder as pickled files (``.nbi`` indexes,
``.nbc`` data). A file that is truncated (a full disk, a killed process on a file system
without atomic renames) or overwritten makes every later load of it raise, so every fit
of that structure would fail. When a compile fails, :func:`retry_if_damaged` reads each such
file in the folder as the pickle stream it should be; the files that do not read are renamed
aside (``NAME.damaged``), a warning names the folder, and the compile runs once more, which
compiles what was damaged and writes it anew. A failure with no damaged file is raised as it was.
"""

from __future__ import annotations

import io
import logging
import pickletools
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

log = logging.getLogger(__name__)

CACHE_FILES = ("*.nbi", "*.nbc")
T = TypeVar("T")


def compile_folder() -> Path:
    """pytensor's base compile folder as it is set now: its numba cache and its per-platform
    compile folder are both under it."""
    import pytensor

    return Path(pytensor.config.base_compiledir)


def reads_as_pickles(path: Path) -> bool:
    """Whether ``path`` is one or more complete pickles back to back (what an index or data
    file of numba's cache is). Only the pickle opcodes are parsed (``pickletools``): nothing
    in the file is executed or rebuilt, and a truncated or overwritten file fails to parse."""
    try:
        data = path.read_bytes()
        stream = io.BytesIO(data)
        if not data:
            return False
        while stream.tell() < len(data):
            for _ in pickletools.genops(stream):  # stops after each pickle's STOP opcode
                pass
    except Exception:  # noqa: BLE001 — anything that does not parse is damage
        return False
    return True


def damaged_entries(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(path for pattern in CACHE_FILES for path in folder.rglob(pattern) if not reads_as_pickles(path))


def quarantine(folder: Path) -> list[Path]:
    """Rename every damaged cache file under ``folder`` aside; return their new names."""
    moved = []
    for path in damaged_entries(folder):
        target = path.with_name(path.name + ".damaged")
        try:
            path.replace(target)
        except OSError:  # gone meanwhile (another process repaired it) or not ours to move
            continue
        moved.append(target)
    return moved


def retry_if_damaged(what: str, function: Callable[..., T], *args, **kwargs) -> T:
    """``function(*args, **kwargs)``; if it raises and the compile folder holds damaged cache
    files, move them aside, say so, and call it once more."""
    try:
        return function(*args, **kwargs)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:
        folder = compile_folder()
        moved = quarantine(folder)
        if not moved:
            raise
        log.warning("the compile cache in %s had %d damaged file(s) (%s while %s); moved aside as *.damaged, "
                    "compiling afresh", folder, len(moved), type(exc).__name__, what)
    return function(*args, **kwargs)
