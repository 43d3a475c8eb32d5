"""The core uses its dependencies' public names only: an AST scan of ``bayes_msc/`` outside
``bayes_msc/accel/`` (the one optional, version-pinned place allowed to reach further) for

* ``from dep... import _x`` and ``from dep._private import x``;
* ``import dep._x``;
* ``name._x`` (and deeper: ``name.a._x``) where ``name`` was bound by importing from a
  dependency, including ``getattr(name, "_x")``, ``vars(name)`` and ``name.__dict__``.

A dependency is any top-level module that is neither the standard library nor this package.
The scanner is itself checked on code that breaks each rule.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "bayes_msc"
ALLOWED = PACKAGE / "accel"
OWN = {"bayes_msc"}


def _third_party(module: str | None, level: int = 0) -> bool:
    if level or not module:
        return False  # a relative import: this package
    top = module.split(".")[0]
    return top not in OWN and top not in sys.stdlib_module_names


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def violations(source: str, filename: str = "<source>") -> list[str]:
    """``file:line: what`` for every private dependency name ``source`` uses."""
    tree = ast.parse(source, filename)
    bound: set[str] = set()  # names bound to a dependency's modules or objects
    found = []

    def say(node, what):
        found.append(f"{filename}:{node.lineno}: {what}")

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if not _third_party(alias.name):
                    continue
                if any(_private(part) for part in alias.name.split(".")):
                    say(node, f"import {alias.name}")
                bound.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and _third_party(node.module, node.level):
            if any(_private(part) for part in node.module.split(".")):
                say(node, f"from {node.module} import ...")
            for alias in node.names:
                if _private(alias.name):
                    say(node, f"from {node.module} import {alias.name}")
                bound.add(alias.asname or alias.name)

    def root(node) -> str | None:
        while isinstance(node, ast.Attribute):
            node = node.value
        return node.id if isinstance(node, ast.Name) else None

    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and root(node) in bound:
            if _private(node.attr) or node.attr == "__dict__":
                say(node, f"{ast.unparse(node)}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.args:
            target = node.args[0]
            if node.func.id == "vars" and root(target) in bound:
                say(node, f"vars({ast.unparse(target)})")
            if (node.func.id in ("getattr", "setattr", "hasattr", "delattr") and len(node.args) >= 2
                    and root(target) in bound and isinstance(node.args[1], ast.Constant)
                    and isinstance(node.args[1].value, str) and _private(node.args[1].value)):
                say(node, f"{node.func.id}({ast.unparse(target)}, {node.args[1].value!r})")
    return found


def test_the_core_uses_no_private_name_of_a_dependency():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if ALLOWED in path.parents:
            continue
        found += violations(path.read_text(encoding="utf-8"), str(path.relative_to(PACKAGE.parent)))
    assert not found, "private names of dependencies outside bayes_msc/accel/:\n" + "\n".join(found)


def test_the_optional_place_exists_and_is_scanned_out_on_purpose():
    # accel/ does use private names (that is why it is separate): the scan would find them
    found = [v for path in ALLOWED.rglob("*.py") for v in violations(path.read_text(encoding="utf-8"), path.name)]
    assert found


@pytest.mark.parametrize("source", [
    "from nutpie.compile_pymc import _make_functions",
    "from xarray.namedarray._typing import x",
    "import numba._helperlib",
    "import pytensor\npytensor.link._something",
    "import numpy as np\nnp._NoValue",
    "from numba.core import caching\ncaching._CacheLocator",
    "from numba.core.registry import cpu_target\nvars(cpu_target)",
    "from pymc import Model\nModel.__dict__",
    "import nutpie.compile_pymc as c\ngetattr(c, '_make_c_logp_func')",
    "import nutpie.compile_pymc as c\nsetattr(c, '_make_c_logp_func', None)",
])
def test_the_scan_finds_each_kind_of_private_use(source):
    assert violations(source)


@pytest.mark.parametrize("source", [
    "from . import _private_helper\n_private_helper._x",  # this package's own names
    "from .spec import _load\n",
    "import os\nos._exit",  # the standard library is not a dependency
    "import numpy as np\nnp.__version__",  # dunder names are public
    "import pymc as pm\npm.Model().free_RVs",
])
def test_the_scan_allows_public_and_own_names(source):
    assert not violations(source)


COMPILED = (".xz", ".tar", ".so", ".nbi", ".nbc", ".pkl", ".gz", ".zip", ".whl", ".pyd", ".dll", ".dylib")


def test_no_compiled_artefact_is_tracked_in_the_package():
    """Machine code is built on demand (``python -m bayes_msc warm``), never committed."""
    import subprocess

    listed = subprocess.run(["git", "ls-files", "bayes_msc"], capture_output=True, text=True, cwd=PACKAGE.parent)
    if listed.returncode != 0:  # not a checkout (an installed copy): what is on disk
        files = [str(p.relative_to(PACKAGE.parent)) for p in PACKAGE.rglob("*") if p.is_file()]
    else:
        files = listed.stdout.split()
    assert files and not [f for f in files if f.endswith(COMPILED)]
