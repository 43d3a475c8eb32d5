"""The package's layers point down: no import circles (counting imports inside functions,
which hide circles from Python but not from a reader), analysis code does not import the
terminal display or the report, and nothing branches on an outcome's name."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "bayes_msc"

# Modules that present results to a person: only the CLI (and the benchmark, a command of
# its own) may import them.
PRESENTATION = ("bayes_msc.io.display", "bayes_msc.report")
PRESENTERS = ("bayes_msc.cli", "bayes_msc.bench", "bayes_msc.io.display", "bayes_msc.report")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, type_only: bool = False) -> set[str]:
    """bayes_msc modules imported anywhere in ``path`` (module level or inside functions);
    with ``type_only``, those under ``if TYPE_CHECKING:`` too."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in (ast.walk(tree) if type_only else _runtime_nodes(tree)):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("bayes_msc")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("bayes_msc"):
                continue
            found.add(target)
            for alias in node.names:  # `from . import figures` imports a module
                candidate = f"{target}.{alias.name}"
                if (PACKAGE.parent / candidate.replace(".", "/")).with_suffix(".py").is_file() or (
                        PACKAGE.parent / candidate.replace(".", "/") / "__init__.py").is_file():
                    found.add(candidate)
    return found - {name}


def _runtime_nodes(tree):
    """Every node except those under ``if TYPE_CHECKING:`` (annotations, not dependencies)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and isinstance(child.test, ast.Name) and child.test.id == "TYPE_CHECKING":
                todo.extend(child.orelse)
                continue
            todo.append(child)


def import_graph(type_only: bool = False) -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        # importing a.b.c runs a/__init__ and a/b/__init__ too, but those are not the
        # dependency a reader follows; keep edges to the named modules that exist
        graph[name] = {m for m in imports_of(path, type_only) if m in modules}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_cycle_finder_finds_a_planted_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def _without_own_package(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    # package __init__ files re-export their members; an edge into a package's own
    # __init__ from its members is how Python packages work, not a circle a reader follows
    return {name: {m for m in targets if not (m != name and name.startswith(m + "."))} for name, targets in graph.items()}


def test_no_import_circles():
    assert cycles(_without_own_package(import_graph())) == []


def test_no_import_circles_counting_type_only_imports():
    """An import under ``if TYPE_CHECKING:`` is a dependency a reader (and a type checker)
    follows: the spec's types name outcomes, which build evidence, which must not name the
    spec back (the evidence builders take the settings they read, not the whole spec)."""
    assert cycles(_without_own_package(import_graph(type_only=True))) == []


def test_type_only_imports_are_counted(tmp_path, monkeypatch):
    (tmp_path / "bayes_msc").mkdir()
    (tmp_path / "bayes_msc" / "a.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .b import B\n")
    (tmp_path / "bayes_msc" / "b.py").write_text("def f():\n    from .a import A\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", tmp_path / "bayes_msc")
    assert cycles(import_graph()) == []
    assert cycles(import_graph(type_only=True)) == [["bayes_msc.a", "bayes_msc.b"]]


def test_analysis_code_does_not_import_presentation():
    graph = import_graph()
    offenders = {
        module: sorted(m for m in targets if m.startswith(PRESENTATION))
        for module, targets in graph.items()
        if not module.startswith(PRESENTERS)
    }
    assert {m: t for m, t in offenders.items() if t} == {}


def test_dosing_and_modelling_do_not_call_back_into_the_pipeline():
    graph = import_graph()
    below_the_pipeline = ("bayes_msc.analyses.dosing", "bayes_msc.analyses.loo", "bayes_msc.decisions", "bayes_msc.engine.diagnostics",
                          "bayes_msc.outcomes.base", "bayes_msc.outcomes.mortality", "bayes_msc.outcomes.continuous")
    for module in below_the_pipeline:
        assert "bayes_msc.api" not in graph[module], module


def test_nothing_branches_on_an_outcome_name():
    pattern = re.compile(r"outcome\s*[!=]=|\.outcome\s+in\s")
    hits = [f"{p.relative_to(PACKAGE.parent)}:{i}" for p in PACKAGE.rglob("*.py")
            for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if pattern.search(line)]
    assert hits == []


def test_each_choice_list_has_one_home():
    """Likelihoods, dose-response forms, measures and evidence sets are spelled out once (the spec
    checks against that list and the command line offers it); nowhere else in the package."""
    from bayes_msc.evidence import settings
    from bayes_msc.models import choices

    homes = {choices.LIKELIHOODS: "bayes_msc/models/choices.py", choices.DOSE_RESPONSE_FORMS: "bayes_msc/models/choices.py",
             choices.MEASURES: "bayes_msc/models/choices.py", settings.EVIDENCE_SETS: "bayes_msc/evidence/settings.py"}
    found = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Tuple) and all(isinstance(e, ast.Constant) for e in node.elts):
                value = tuple(e.value for e in node.elts)
                where = str(path.relative_to(PACKAGE.parent))
                if value in homes:
                    found.append((value, where))
    assert sorted(found) == sorted((value, home) for value, home in homes.items())


def test_random_streams_are_named_in_one_module():
    """Every seeded stream outside the sampler is ``bayes_msc.engine.streams.stream(seed, TAG)``
    with a named tag of its own; no module picks a tag by hand."""
    from bayes_msc.engine import streams

    tags = {name: value for name, value in vars(streams).items() if name.isupper() and isinstance(value, int)}
    assert len(set(tags.values())) == len(tags), tags
    by_hand = [f"{p.relative_to(PACKAGE.parent)}:{i}" for p in PACKAGE.rglob("*.py")
               for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
               if "default_rng([" in line and p.name != "streams.py"]
    assert by_hand == []
    assert streams.SIMULATION_REPLICATE == 0x51D


def test_outcomes_know_nothing_of_their_presentation():
    """What an outcome measures and how it is modelled live in ``bayes_msc.outcomes``; how a report
    shows it is registered beside the report (``bayes_msc.report.presentations``), by name."""
    graph = import_graph(type_only=True)
    offenders = {module: sorted(m for m in targets if m.startswith(PRESENTATION))
                 for module, targets in graph.items() if module.startswith("bayes_msc.outcomes")}
    assert {m: t for m, t in offenders.items() if t} == {}


def test_the_spec_imports_no_model_defaults():
    """Each model family owns its settings' defaults and checks (``bayes_msc.models.settings``,
    named by the outcome's ``model_settings``); the spec keeps the shared settings and asks the
    outcome registry for the rest, so it imports no family's defaults."""
    tree = ast.parse((PACKAGE / "spec.py").read_text(encoding="utf-8"))
    imported = [(node.module or "", alias.name) for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                for alias in node.names]
    registry = {"known_outcomes", "get_outcome", "Outcome"}  # the registry, asked for a family's table
    defaults = [(module, name) for module, name in imported
                if name.startswith("DEFAULT")
                or module.lstrip(".") == "models.settings" and name != "FamilySettings"
                or module.lstrip(".").startswith(("outcomes.", "models.sparse", "models.mortality", "models.continuous"))
                or module.lstrip(".") == "outcomes" and name not in registry]
    assert defaults == []
    assert [name for module, name in imported if module.lstrip(".") == "models.settings"] == ["FamilySettings"]


def test_each_family_checks_its_own_model_settings():
    from bayes_msc.io.errors import InputError
    from bayes_msc.models.settings import MortalitySettings, NormalNormalSettings
    from bayes_msc.outcomes import get_outcome
    from bayes_msc.spec import SHARED_MODEL_KEYS, load_spec

    assert get_outcome("mortality").model_settings is MortalitySettings
    assert get_outcome("normal_normal").model_settings is NormalNormalSettings
    assert get_outcome("oxygenation").model_keys == ()
    assert not set(SHARED_MODEL_KEYS) & set(MortalitySettings.keys() + NormalNormalSettings.keys())
    spec = load_spec("mortality")
    assert spec.model.likelihood == MortalitySettings().likelihood  # attribute access as before
    # settings added after specs were first hashed are written only when stated (stated_only)
    assert list(spec.to_dict()["model"]) == list(SHARED_MODEL_KEYS) + [
        k for k in MortalitySettings.keys() if k not in MortalitySettings.stated_only]
    assert MortalitySettings.stated_only == ("effect_measure",)
    for change, field, words in ((dict(likelihood="exact"), "model.likelihood", "unknown likelihood"),
                                 (dict(power_prior_weight=2.0), "model.power_prior_weight", "[0, 1]"),
                                 (dict(likelihood="conditional", dose_response="emax"), "model.likelihood", "one effect")):
        try:
            spec.with_model(**change)
        except InputError as exc:
            assert f"spec override, field '{field}'" in str(exc) and words in str(exc), exc
        else:
            raise AssertionError(change)
    try:
        load_spec("oxygenation").with_model(likelihood="arm")
    except InputError as exc:
        assert "field 'model.likelihood'" in str(exc) and "is for the mortality analysis" in str(exc)
    else:
        raise AssertionError("a likelihood for oxygenation")
    try:
        load_spec("normal_normal").with_model(measure="odds")
    except InputError as exc:
        assert "field 'model.measure'" in str(exc)
    else:
        raise AssertionError("an unknown measure")
