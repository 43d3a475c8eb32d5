"""The compile cache shipped with the package (bayes_msc.prebuilt): what it covers, how it is
copied into a cache folder, and what it refuses. That a seeded fresh cache fits without
compiling and gives the same numbers as a compile from nothing is in test_reproducibility."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from bayes_msc import prebuilt

ROOT = Path(__file__).resolve().parents[1]


# -- the bundle in the package -------------------------------------------------------------


def test_the_shipped_bundle_was_compiled_for_this_environment_and_the_default_fits():
    """Fails when a change to the models, the register, this package's source or the pinned
    libraries left the bundle behind: rebuild it with ``python -m bayes_msc.prebuilt``."""
    from bayes_msc import api, warm_start

    manifest = prebuilt.read_manifest()
    assert manifest is not None, "bayes_msc/prebuilt/manifest.json is missing"
    assert prebuilt.mismatch(manifest) is None, f"{prebuilt.mismatch(manifest)}: rebuild the bundle"
    archive = (prebuilt.BUNDLE_DIR / prebuilt.ARCHIVE_NAME).read_bytes()
    assert hashlib.sha256(archive).hexdigest() == manifest["sha256"]
    assert set(manifest["analyses"]) == set(prebuilt.ANALYSES)
    for analysis in prebuilt.ANALYSES:
        spec = api.resolve_spec(analysis)
        outcome = spec.outcome_type
        inputs = outcome.make_inputs(api._evidence(outcome, api.load_data(spec), spec), spec.priors, spec.model)
        shipped = manifest["analyses"][analysis]
        assert shipped["structure_key"] == inputs.structure_key(), f"{analysis}: rebuild the bundle"
        assert shipped["package_source"] == warm_start._code_and_versions(), (
            f"{analysis}: the package's source changed since the bundle was built; rebuild it")
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:xz") as tar:
        names = tar.getnames()
    assert len(names) == manifest["files"]
    # every member lands in one of the two cache folders, and each default fit's facts are there
    assert all(prebuilt._destination(n, Path("/n"), Path("/f")) is not None for n in names)
    for shipped in manifest["analyses"].values():
        assert f"compiled/{shipped['structure_key']}-{shipped['package_source']}.json" in names


# -- seeding, on a bundle made here ------------------------------------------------------------


def _bundle(folder: Path, members: dict[str, bytes], environment: dict | None = None) -> Path:
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:xz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    payload = archive.getvalue()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / prebuilt.ARCHIVE_NAME).write_bytes(payload)
    manifest = {"environment": environment or prebuilt.environment(), "analyses": {"mortality": {}},
                "files": len(members), "sha256": hashlib.sha256(payload).hexdigest()}
    (folder / prebuilt.MANIFEST_NAME).write_text(json.dumps(manifest))
    return folder


@pytest.fixture
def cache_folders(tmp_path, monkeypatch):
    """This process's numba cache folder and facts folder, both empty, in tmp_path."""
    import pytensor.link.numba.cache as numba_cache

    numba_dir = tmp_path / "cache" / "pytensor" / "numba"
    numba_dir.mkdir(parents=True)
    monkeypatch.setattr(numba_cache, "NUMBA_CACHE_PATH", numba_dir)
    monkeypatch.setenv("BAYES_MSC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv(prebuilt.ENV_SWITCH, raising=False)
    return numba_dir, tmp_path / "cache" / "compiled"


MEMBERS = {
    "pytensor/numba/op-abc.py312.nbi": b"index",
    "pytensor/numba/op-abc.py312.1.nbc": b"code",
    "compiled/c505-33f5.json": b"{}",
    "pytensor/numba/kept.nbi": b"shipped",
    # never written: outside the two folders, nested, absolute, climbing out
    "elsewhere/file": b"x",
    "pytensor/numba/sub/deeper.nbi": b"x",
    "/etc/passwd_bayes_msc": b"x",
    "compiled/../../escaped": b"x",
}


def test_a_fresh_cache_gets_the_entries_once_and_keeps_its_own(tmp_path, cache_folders):
    numba_dir, facts_dir = cache_folders
    (numba_dir / "kept.nbi").write_bytes(b"compiled here")
    bundle = _bundle(tmp_path / "bundle", MEMBERS)
    assert prebuilt.seed(bundle) == 3
    assert (numba_dir / "op-abc.py312.nbi").read_bytes() == b"index"
    assert (numba_dir / "op-abc.py312.1.nbc").read_bytes() == b"code"
    assert (facts_dir / "c505-33f5.json").read_bytes() == b"{}"
    assert (numba_dir / "kept.nbi").read_bytes() == b"compiled here"  # never replaced
    written = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    assert not any("escaped" in w or "deeper" in w or "elsewhere" in w for w in written), written
    assert not Path("/etc/passwd_bayes_msc").exists()
    assert not list(tmp_path.rglob("*.tmp"))
    # done once per cache folder and bundle: a marker, then nothing more is copied
    (numba_dir / "op-abc.py312.nbi").unlink()
    assert prebuilt.seed(bundle) == 0
    assert not (numba_dir / "op-abc.py312.nbi").exists()


@pytest.mark.parametrize("field", ["numba", "pytensor", "nutpie", "python", "numba_cpu", "machine", "fastmath"])
def test_a_bundle_built_for_another_environment_is_not_used(tmp_path, cache_folders, caplog, field):
    numba_dir, _ = cache_folders
    other = {**prebuilt.environment(), field: "something else"}
    bundle = _bundle(tmp_path / "bundle", MEMBERS, other)
    with caplog.at_level(logging.INFO, logger="bayes_msc.prebuilt"):
        assert prebuilt.seed(bundle) == 0
    assert not list(numba_dir.iterdir())
    assert f"{field} 'something else'" in caplog.text, caplog.text


def test_a_bundle_that_does_not_match_its_manifest_is_not_used(tmp_path, cache_folders, caplog):
    numba_dir, _ = cache_folders
    bundle = _bundle(tmp_path / "bundle", MEMBERS)
    manifest = json.loads((bundle / prebuilt.MANIFEST_NAME).read_text())
    (bundle / prebuilt.MANIFEST_NAME).write_text(json.dumps({**manifest, "sha256": "0" * 64}))
    with caplog.at_level(logging.WARNING, logger="bayes_msc.prebuilt"):
        assert prebuilt.seed(bundle) == 0
    assert "does not match its manifest" in caplog.text
    assert not list(numba_dir.iterdir())


def test_switched_off_or_missing_means_nothing_is_copied(tmp_path, cache_folders, monkeypatch):
    numba_dir, _ = cache_folders
    bundle = _bundle(tmp_path / "bundle", MEMBERS)
    monkeypatch.setenv(prebuilt.ENV_SWITCH, "0")
    assert prebuilt.seed(bundle) == 0
    monkeypatch.delenv(prebuilt.ENV_SWITCH)
    assert prebuilt.seed(tmp_path / "no_bundle_here") == 0
    assert not list(numba_dir.iterdir())
    assert prebuilt.mismatch(None) == "no prebuilt bundle in the package"


# -- portable machine code --------------------------------------------------------------------


def _numba_cpu(environ: dict[str, str], before: str = "") -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_CPU")} | environ
    script = (before + "import bayes_msc.sampling, os\nfrom numba.core import config\n"
              "from numba.core.registry import cpu_target\n"
              "print(repr((os.environ.get('NUMBA_CPU_NAME'), config.CPU_NAME, config.CPU_FEATURES, "
              "cpu_target.target_context.codegen().magic_tuple()[1:])))")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=ROOT,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout.strip().splitlines()[-1]


def test_numba_compiles_for_a_generic_cpu_unless_told_otherwise():
    import llvmlite.binding as llvm

    host = llvm.get_host_cpu_name()
    assert _numba_cpu({}) == repr(("generic", "generic", "", ("generic", "")))
    # the user's choice stands
    chosen = _numba_cpu({"NUMBA_CPU_NAME": host})
    assert chosen.startswith(repr((host, host))[:-1]) and "generic" not in chosen
    # numba imported first but not yet compiling: it is told in time
    assert _numba_cpu({}, before="import numba\n") == repr(("generic", "generic", "", ("generic", "")))
    # numba set up for this CPU before bayes_msc was imported: left as it is, not half-changed
    early = _numba_cpu({}, before="from numba.core.registry import cpu_target; cpu_target.target_context\n")
    assert early.startswith(repr((None, None))[:-1]) and "generic" not in early, early
