"""A compile cache shipped with the package, so that a fresh install's first fit does not compile.

A cold ``fit mortality`` spends most of its time in numba compiling the model's log density
(about 6 of 9 s on 2 cores, with :mod:`bayes_msc.compile_helper`); NumPyro's JAX compiles the
same model faster. What numba compiled is cached on disk (pytensor's per-operation entries,
:mod:`bayes_msc.callback_cache` and :mod:`bayes_msc.warm_start`), and a later process loads it
in a fraction of a second. This module ships those cache entries for the default analyses
(``mortality`` and ``oxygenation`` on the embedded register, :data:`ANALYSES`) inside the
package, in ``bayes_msc/prebuilt/``: ``compiled.tar.xz`` and a ``manifest.json`` that says
what they were compiled with. At the first compile in a cache folder the entries are copied
into it (:func:`seed`), and from then on the fit is a warm one.

Why the entries can be shipped: numba files compiled code under the CPU it was compiled for,
and bayes_msc has it compile for a generic CPU of the architecture (:mod:`bayes_msc.runtime`);
pytensor's entries and ours are keyed by hashes of the graphs and sources they compile, not by
paths. Why they are safe: every entry is found only under the key of exactly what it
compiled, and numba checks its own version and the CPU target again when it loads one, so an
entry that does not fit this machine or this model is never used — the model is compiled as
usual. :func:`seed` checks the manifest first (Python, platform, the versions of numba,
llvmlite, pytensor, pymc, nutpie, numpy and the CPU target) and the archive's SHA-256, and
copies nothing when anything differs. It never replaces an entry the cache already has.

``BAYES_MSC_PREBUILT=0`` switches it off (``bench`` uses that to time a compile from nothing).
After a change to the models, the register or the pinned libraries, rebuild the bundle with
``python -m bayes_msc.prebuilt`` (tests fail while it no longer covers the default fits).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import platform
import sys
import tarfile
from pathlib import Path, PurePosixPath

log = logging.getLogger(__name__)

ENV_SWITCH = "BAYES_MSC_PREBUILT"
ANALYSES = ("mortality", "oxygenation")
BUNDLE_DIR = Path(__file__).resolve().parent / "prebuilt"
ARCHIVE_NAME = "compiled.tar.xz"
MANIFEST_NAME = "manifest.json"
FORMAT = 1
# what the archive may hold, relative to the cache folder: pytensor's numba entries, warm-start facts
NUMBA_PREFIX = "pytensor/numba/"
FACTS_PREFIX = "compiled/"
_LIBRARIES = ("numba", "llvmlite", "pytensor", "pymc", "nutpie", "numpy")


def environment() -> dict[str, str]:
    """What the shipped machine code was compiled with and must meet again to be used."""
    from importlib.metadata import version

    import pytensor

    return {
        "format": str(FORMAT),
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
        "platform": sys.platform,
        "machine": platform.machine(),
        "numba_cpu": os.environ.get("NUMBA_CPU_NAME", "host"),
        "numba_cpu_features": os.environ.get("NUMBA_CPU_FEATURES", ""),
        "fastmath": "on" if pytensor.config.numba__fastmath else "off",
        **{name: version(name) for name in _LIBRARIES},
    }


def enabled() -> bool:
    from .runtime import switched_off

    return not switched_off(ENV_SWITCH)


def read_manifest(bundle_dir: Path = BUNDLE_DIR) -> dict | None:
    try:
        return json.loads((bundle_dir / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def mismatch(manifest: dict | None, current: dict[str, str] | None = None) -> str | None:
    """Why the bundle cannot serve this process (``None``: it can)."""
    if manifest is None:
        return "no prebuilt bundle in the package"
    current = environment() if current is None else current
    built = manifest.get("environment", {})
    differing = [f"{name} {built.get(name)!r} (here {value!r})" for name, value in current.items()
                 if built.get(name) != value]
    return "built for " + ", ".join(differing) if differing else None


def _destination(member: str, numba_dir: Path, facts_dir: Path) -> Path | None:
    """Where an archive member goes; ``None`` for anything but a plain name under the two prefixes."""
    path = PurePosixPath(member)
    if path.is_absolute() or ".." in path.parts or len(path.parts) < 2:
        return None
    for prefix, base in ((NUMBA_PREFIX, numba_dir), (FACTS_PREFIX, facts_dir)):
        rest = member[len(prefix):] if member.startswith(prefix) else None
        if rest and "/" not in rest:
            return base / rest
    return None


def seed(bundle_dir: Path = BUNDLE_DIR) -> int:
    """Copy the shipped entries into this process's compile cache (once per cache folder and
    bundle); return how many files were added. Cheap when done already: reading the small
    manifest and one ``stat``."""
    if not enabled():
        return 0
    import pytensor
    from pytensor.link.numba.cache import NUMBA_CACHE_PATH

    from .fileio import write_atomic
    from .paths import cache_dir

    if not pytensor.config.numba__cache:
        return 0
    manifest = read_manifest(bundle_dir)
    digest = (manifest or {}).get("sha256", "")
    marker = Path(NUMBA_CACHE_PATH) / f".bayes_msc-prebuilt-{digest[:16]}"
    if manifest is not None and marker.exists():
        return 0
    reason = mismatch(manifest)
    if reason is not None:
        log.info("the package's prebuilt compile cache is not used: %s", reason)
        return 0
    archive = (bundle_dir / ARCHIVE_NAME).read_bytes()
    if hashlib.sha256(archive).hexdigest() != digest:
        log.warning("the package's prebuilt compile cache %s does not match its manifest; not used",
                    bundle_dir / ARCHIVE_NAME)
        return 0
    facts_dir = cache_dir() / "compiled"
    added = 0
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:xz") as tar:
        for member in tar.getmembers():
            target = _destination(member.name, Path(NUMBA_CACHE_PATH), facts_dir) if member.isfile() else None
            if target is None or target.exists():  # never replace what this cache compiled itself
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(target, tar.extractfile(member).read())  # workers seeding at once never see half a file
            added += 1
    write_atomic(marker, digest)
    log.info("seeded the compile cache with %d entries compiled for the default analyses (%s)", added,
             ", ".join(manifest.get("analyses", {})))
    return added


# -- building the bundle (developers; python -m bayes_msc.prebuilt) ---------------------------


def build(bundle_dir: Path = BUNDLE_DIR, analyses: tuple[str, ...] = ANALYSES) -> dict:
    """Compile each analysis from nothing in a fresh cache folder (one process each, as a user
    would run it) and pack what the cache then holds into ``bundle_dir``."""
    import subprocess
    import tempfile

    from . import runtime
    from .fileio import write_atomic

    if os.environ.get("NUMBA_CPU_NAME", runtime.PORTABLE_CPU) != runtime.PORTABLE_CPU:
        raise SystemExit(f"NUMBA_CPU_NAME is {os.environ['NUMBA_CPU_NAME']!r}: a bundle must be compiled for "
                         f"{runtime.PORTABLE_CPU!r} to be portable")
    with tempfile.TemporaryDirectory(prefix="bayes_msc_prebuilt_") as scratch:
        cache = Path(scratch)
        env = runtime.child_environment(cache, **{ENV_SWITCH: "0"})
        keys: dict[str, dict[str, str]] = {}
        for analysis in analyses:
            before = set((cache / "compiled").glob("*.json"))
            subprocess.run([sys.executable, "-m", "bayes_msc", "fit", analysis, "--json"], env=env, check=True,
                           stdout=subprocess.DEVNULL)
            new = sorted(set((cache / "compiled").glob("*.json")) - before)
            if len(new) != 1:
                raise SystemExit(f"fit {analysis} recorded {len(new)} compiled models; expected one")
            structure, source = new[0].stem.rsplit("-", 1)
            keys[analysis] = {"structure_key": structure, "package_source": source}
        members = sorted(p for p in cache.rglob("*") if p.is_file()
                         and _destination(p.relative_to(cache).as_posix(), cache, cache) is not None)
        archive = io.BytesIO()
        with tarfile.open(fileobj=archive, mode="w:xz", preset=9) as tar:
            for path in members:
                info = tarfile.TarInfo(path.relative_to(cache).as_posix())
                data = path.read_bytes()
                info.size, info.mode, info.mtime = len(data), 0o644, 0  # reproducible archive
                tar.addfile(info, io.BytesIO(data))
    payload = archive.getvalue()
    manifest = {
        "what": "numba cache entries of the default analyses, compiled for a generic CPU; see bayes_msc.prebuilt",
        "environment": environment(),
        "analyses": keys,
        "files": len(members),
        "sha256": hashlib.sha256(payload).hexdigest(),
        "rebuild": "python -m bayes_msc.prebuilt",
    }
    bundle_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(bundle_dir / ARCHIVE_NAME, payload)
    write_atomic(bundle_dir / MANIFEST_NAME, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def main() -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bayes_msc.prebuilt", description=build.__doc__)
    parser.add_argument("--out", type=Path, default=BUNDLE_DIR, help="folder for the bundle (default: the package's)")
    args = parser.parse_args()
    manifest = build(args.out)
    size = (args.out / ARCHIVE_NAME).stat().st_size
    print(f"{args.out / ARCHIVE_NAME}: {manifest['files']} entries, {size / 1e6:.2f} MB, for "
          + ", ".join(f"{a} ({k['structure_key']})" for a, k in manifest["analyses"].items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
