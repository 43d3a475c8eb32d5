"""The one way this package writes a file: complete or not at all, and where it was asked to.

Every output (``posterior.nc``, ``summary.json``, HTML reports, SBC results, estimate tables)
goes through :func:`write_atomic`: the content is written to a temporary file in the target's
own folder, flushed to disk (``fsync``), given the permissions a plain ``open()`` would give
under the user's umask (the temporary file is created 0600), then renamed over the target with
``os.replace`` — so a reader, a crash or Ctrl-C sees the old file or the new one, never half
of one. :func:`check_output_file` and :func:`check_output_dir` test a location *before* any
work starts, so a fit that takes minutes does not end in a traceback about a read-only folder;
:func:`safe_file_name` turns a name from a spec into one file name that cannot leave its folder.
"""

from __future__ import annotations

import os
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from .errors import InputError, Location

Writer = Callable[[Path], None]


def _umask() -> int:
    # os.umask can only be read by setting it; set it straight back (single-threaded at this point)
    mask = os.umask(0)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode ``open(path, "w")`` gives a new file: 0666 less the umask (0644 under 022)."""
    return 0o666 & ~_umask()


def write_atomic(path: str | os.PathLike, content: str | bytes | Writer) -> Path:
    """Write ``content`` to ``path`` atomically; return the path.

    ``content`` is text (written as UTF-8), bytes, or a callable that writes the file at the
    temporary path it is given (e.g. ``lambda p: tree.to_netcdf(p)``). The folder must exist
    or be creatable. On any failure the target is untouched and the temporary file removed.
    """
    with atomic_paths([path]) as (temp,):
        if isinstance(content, str):
            temp.write_bytes(content.encode("utf-8"))
        elif isinstance(content, bytes):
            temp.write_bytes(content)
        else:
            content(temp)
    return Path(path)


@contextmanager
def atomic_paths(paths: list[str | os.PathLike]) -> Iterator[list[Path]]:
    """Temporary paths for several files that appear together or not at all.

    The caller writes each temporary path; when the block ends without an error every file is
    synced and renamed onto its target (``posterior.nc`` and ``summary.json`` of one result).
    """
    targets = [Path(p) for p in paths]
    temps: list[Path] = []
    try:
        for target in targets:
            target.parent.mkdir(parents=True, exist_ok=True)
            # the name is recorded before the file exists, so an interrupt (Ctrl-C) at any
            # point leaves nothing behind: the clean-up below removes whatever was created
            temp = _temp_name(target)
            temps.append(temp)
            os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        yield temps
        mode = file_mode()
        for temp in temps:
            os.chmod(temp, mode)
            _fsync(temp)
        for temp, target in zip(temps, targets):
            os.replace(temp, target)
        _fsync_dir(targets[0].parent)
    finally:
        for temp in temps:
            temp.unlink(missing_ok=True)


def _temp_name(target: Path) -> Path:
    import secrets

    return target.parent / f".{target.name}.{secrets.token_hex(6)}.tmp"


def append_lines(path: str | os.PathLike, lines: list[str]) -> None:
    """Append whole lines and sync them (a journal: a torn last line is ignored on reading)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write("".join(line + "\n" for line in lines))
        handle.flush()
        os.fsync(handle.fileno())


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # not every platform opens folders
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# -- output locations, checked before the work ------------------------------------------------


def _writable_dir(directory: Path, what: str) -> None:
    """``directory`` exists (or can be made) and a file can be created in it."""
    existing = directory
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise InputError(f"{existing} is a file, not a folder", Location(what))
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"folder {existing} is not writable", Location(what))


def check_not_protected(path: str | os.PathLike, what: str, force: bool = False) -> None:
    """Refuse to replace a shipped example or a file of the package's repository unless
    ``force`` (``--force``) says so (:func:`bayes_msc.io.paths.protected_reason`)."""
    from .paths import protected_reason

    reason = None if force else protected_reason(path)
    if reason:
        raise InputError(f"will not overwrite {path}: {reason}; give another path, or --force to replace it",
                         Location(what))


def check_output_file(path: str | os.PathLike, what: str, force: bool = False) -> Path:
    """``path`` can be written as a file: not a folder, its folder writable, not a protected
    file (:func:`check_not_protected`). ``what`` names the option (``--output``) for the message."""
    path = Path(path)
    if "\0" in str(path):
        raise InputError("path contains a NUL byte", Location(what))
    if path.is_dir():
        raise InputError(f"{path} is a folder; give a file name", Location(what))
    check_not_protected(path, what, force)
    if path.exists() and not os.access(path, os.W_OK):
        raise InputError(f"{path} is not writable", Location(what))
    _writable_dir(path.parent, what)
    return path


def check_output_dir(path: str | os.PathLike, what: str, files: tuple[str, ...] = (), force: bool = False) -> Path:
    """``path`` is (or can be made) a writable folder; none of the ``files`` it will get is
    protected (:func:`check_not_protected`)."""
    path = Path(path)
    if "\0" in str(path):
        raise InputError("path contains a NUL byte", Location(what))
    if path.exists() and not path.is_dir():
        raise InputError(f"{path} is a file; give a folder", Location(what))
    _writable_dir(path, what)
    for name in files:
        check_not_protected(path / name, what, force)
    return path


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_file_name(name: str) -> str:
    """One file name from a spec's ``name``: letters, digits, ``.``, ``_``, ``-`` only, no
    leading dot, so ``../../x``, ``/etc/x`` or a NUL byte cannot leave the folder it goes in.

    A name that had to be changed keeps a short hash of the whole name, so two names that
    differ only in what was replaced (``mortality李``, ``mortality``) never share a file."""
    cleaned = _UNSAFE.sub("_", name).strip("._")
    if cleaned and cleaned == name:
        return cleaned
    import hashlib

    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{cleaned or 'analysis'}-{digest}"
