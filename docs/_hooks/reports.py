"""MkDocs hook: tables read from the saved results at build time, never retyped.

A page asks for a table with an HTML comment on a line of its own::

    <!-- bayes_msc:sbc -->          every reports/*.sbc*.json: verdict, N, p per parameter, ...
    <!-- bayes_msc:simstudy -->     every reports/*.simstudy*.json: per truth, then per likelihood
    <!-- bayes_msc:oc -->           reports/*.oc.json: how often each decision rule fires
    <!-- bayes_msc:presets -->      the named prior presets of bayes_msc.priors
    <!-- bayes_msc:schema -->       the register's tables and columns, as the validator declares them

The hook replaces the comment with Markdown, so a regenerated JSON (``python -m bayes_msc sbc``,
``simstudy``, ``oc``) changes the page at the next ``mkdocs build``. Keys are read defensively:
a field a file lacks is shown as "–", and a field added later (e.g. the operating
characteristics' ``settings.control_risk``) is shown where it is known.

Each result names the register it was simulated on (its ``register_hash``). A result made on an
earlier version of the embedded register says so, and what has changed in the trials it
simulates since (``REGISTER_CHANGES``), so a table is never read as describing today's register.
"""

from __future__ import annotations

import json
import re
import statistics
from pathlib import Path

MARKER = re.compile(r"^<!-- bayes_msc:(\w+) -->$", re.MULTILINE)
DASH = "–"
_ROOT: Path | None = None
_CURRENT_REGISTER: str | None = None  # content hash of _ROOT/data, read once per build


def on_config(config, **kwargs):
    global _ROOT, _CURRENT_REGISTER
    _ROOT = Path(config.config_file_path).resolve().parent
    _CURRENT_REGISTER = None
    return config


def on_page_markdown(markdown, page, config, files, **kwargs):
    def replace(match):
        name = match.group(1)
        if name not in RENDERERS:
            raise ValueError(f"{page.file.src_path}: unknown table marker {name!r}; known: {sorted(RENDERERS)}")
        return RENDERERS[name]()

    return MARKER.sub(replace, markdown)


# Docstrings cross-reference the Sphinx way (:func:`fit`); in the rendered API pages the role
# itself is noise: keep the code, drop the role.
SPHINX_ROLE = re.compile(r":(?:func|class|mod|meth|attr|data|exc|obj):(<code>)~?")


def on_page_content(html, page, config, files, **kwargs):
    return SPHINX_ROLE.sub(r"\1", html)


# -- helpers ------------------------------------------------------------------------------------


def _reports(pattern: str) -> list[Path]:
    return sorted((_ROOT / "reports").glob(pattern))


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _num(value, fmt: str = ".3f", signed: bool = False) -> str:
    if value is None or isinstance(value, (dict, list)):
        return DASH
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if number != number:  # nan
        return DASH
    return format(number, ("+" if signed else "") + fmt)


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _source(path: Path) -> str:
    return f"`{path.relative_to(_ROOT).as_posix()}`"


# Each earlier version of the embedded register on which a saved result was made, by content
# hash: the version that followed it, and per analysis what changed in the studies its
# simulations follow (a clause completing "since then, ..."). A result made on a version listed
# here says what changed from it up to the current register.
REGISTER_CHANGES = {
    "598352f4b89e8bc825e0ff44427072fe8b4aa6c8f0a4bc1f64f9e4d474d4a3d3": (
        "37a62148fdc40499bef78927f8d71bec7b6e0f685064a7bd30fe485d6387c91f",
        {"mortality": "Adas 2021 was reclassified as non-randomised (11 randomised trials became 10), and "
                      "these simulations still include its arms",
         "oxygenation": "the oxygenation studies and numbers these simulations follow are unchanged"}),
}


def _current_register_hash() -> str:
    """The content hash of the embedded register the pages describe: this checkout's ``data/``
    (the installed package's register where there is none), read once per build."""
    global _CURRENT_REGISTER
    if _CURRENT_REGISTER is None:
        import bayes_msc

        data = _ROOT / "data"
        _CURRENT_REGISTER = bayes_msc.load_register(data if data.is_dir() else None).content_hash
    return _CURRENT_REGISTER


def _register_note(d: dict) -> str:
    """Which register ``d`` was simulated on and, when that is not the current embedded register,
    what has changed since: one sentence, ending with a full stop."""
    made_on = d.get("register_hash")
    if not made_on:
        return "The register it was made on is not recorded."
    current = _current_register_hash()
    if made_on == current:
        return f"Made on the current embedded register (`{current[:12]}`)."
    changes, version = [], made_on
    while version in REGISTER_CHANGES and version != current:
        version, by_analysis = REGISTER_CHANGES[version]
        changes.append(by_analysis.get(d.get("analysis"), "the studies it simulates may differ"))
    if version != current:  # not a version of the embedded register this page knows: other data
        return f"Made on data `{made_on[:12]}`, not the current embedded register (`{current[:12]}`)."
    return (f"Made on an earlier version of the embedded register (`{made_on[:12]}`; now `{current[:12]}`): "
            "since then, " + "; ".join(changes) + ".")


def _sampler(settings: dict) -> str:
    chains, draws, tune = settings.get("chains"), settings.get("draws"), settings.get("tune")
    if None in (chains, draws, tune):
        return DASH
    return f"{chains} × {draws} after {tune} warm-up"


# -- simulation-based calibration ----------------------------------------------------------------


def render_sbc() -> str:
    paths = _reports("*.sbc*.json")
    if not paths:
        return "*No saved SBC result in `reports/`.*"
    rows, notes = [], []
    for path in paths:
        d = _load(path)
        notes.append(f"{_source(path)}: {_register_note(d)}")
        spec = d.get("spec") or {}
        model = spec.get("model") or {}
        form = model.get("dose_response", "none")
        uniformity = d.get("uniformity") or {}
        params = ", ".join(f"{p} {_num((uniformity.get(p) or {}).get('chi2_pvalue'))}"
                           + ("" if (uniformity.get(p) or {}).get("passed", True) else " (outside its band)")
                           for p in d.get("parameters", []))
        ranks = d.get("ranks") or {}
        divergent = ranks.get("divergences")
        divergent = f"{sum(1 for x in divergent if x)} of {len(divergent)}" if isinstance(divergent, list) else DASH
        ess = ranks.get("min_bulk_ess")
        ess = f"{statistics.median(ess):.0f}" if isinstance(ess, list) and ess else DASH
        verdict = str(d.get("verdict", DASH)).split(":", 1)[0]
        seconds = d.get("seconds")
        covariates = model.get("covariates") or []
        rows.append([f"{d.get('analysis', DASH)}" + ("" if form in (None, "none") else f" ({form})")
                     + (f" (covariates: {', '.join(covariates)})" if covariates else ""),
                     d.get("n", DASH), f"**{verdict}**", params, divergent, ess, d.get("n_draws", DASH),
                     _sampler(d.get("sampler") or {}), _num(seconds, ".0f") if seconds is not None else DASH,
                     d.get("date", DASH), _source(path)])
    return (_table(["analysis", "N", "verdict", "chi-square p per parameter", "replicates with a divergence",
                    "median min bulk ESS", "L (ranked draws)", "sampler per replicate", "seconds", "date", "file"],
                   rows)
            + "\n\n" + "\n".join(f"* {note}" for note in notes))


# -- simulation study of the likelihoods ---------------------------------------------------------


def render_simstudy() -> str:
    paths = _reports("*.simstudy*.json")
    if not paths:
        return "*No saved simulation study in `reports/`.*"
    parts = []
    for path in paths:
        d = _load(path)
        s = d.get("settings") or {}
        priors = s.get("priors") or {}
        prior_text = ", ".join(f"{role} `{(p or {}).get('preset', DASH)}`" for role, p in priors.items()) or DASH
        parts.append(
            f"**{_source(path)}**: {d.get('reps_per_cell', DASH)} registers per truth; likelihoods "
            f"{', '.join(map(str, s.get('likelihoods', []))) or DASH}; true OR {s.get('odds_ratios', DASH)} × "
            f"τ {s.get('taus', DASH)}; fits {_sampler(s)}; priors {prior_text}; rare control risk "
            f"{s.get('rare_control_risk', DASH)}; double-zero studies per register "
            f"{_num(d.get('double_zero_studies_per_replicate'), '.1f')}; {_num(d.get('seconds'), '.0f')} s; "
            f"{d.get('date', DASH)}. {_register_note(d)}")
        rows = [[r.get("likelihood", DASH), _num(r.get("odds_ratio"), "g"), _num(r.get("tau"), "g"),
                 f"{_num(r.get('bias'), '.3f', True)} ({_num(r.get('bias_mcse'))})", _num(r.get("rmse")),
                 f"{_num(r.get('coverage'), '.2f')} ({_num(r.get('coverage_mcse'), '.2f')})",
                 f"{_num(r.get('declare_benefit'), '.2f')} ({_num(r.get('declare_benefit_mcse'), '.2f')})",
                 r.get("divergent_fits", DASH)]
                for r in d.get("table", [])]
        parts.append(_table(["likelihood", "true OR", "τ", "bias of median log OR (MCSE)", "RMSE",
                             "95% ETI coverage (MCSE)", "declares P(OR < 1) > 0.95 (MCSE)", "divergent fits"], rows))
        overall = [[o.get("likelihood", DASH),
                    f"{_num(o.get('mean_false_claim'))} ({_num(o.get('max_false_claim'))})",
                    _num(o.get("mean_abs_bias")), _num(o.get("mean_rmse")),
                    f"{_num(o.get('mean_coverage'))} ({_num(o.get('min_coverage'))})"]
                   for o in d.get("overall", [])]
        if overall:
            parts.append(_table(["likelihood", "false claims at OR 1: mean over τ (max)", "mean abs. bias",
                                 "mean RMSE", "coverage: mean (min)"], overall))
    return "\n\n".join(parts)


# -- operating characteristics of the decision rules ---------------------------------------------


def render_oc() -> str:
    paths = _reports("*.oc.json")
    if not paths:
        return "*No saved operating characteristics in `reports/`.*"
    parts = []
    for path in paths:
        d = _load(path)
        s = d.get("settings") or {}
        control = s.get("control_risk")
        counts = s.get("reps")
        registers = (", ".join(f"{n} at true OR {o}" for o, n in counts.items()) if isinstance(counts, dict)
                     else f"{d.get('reps_per_truth', DASH)} per true OR")
        parts.append(
            f"**{_source(path)}** ({d.get('analysis', DASH)}): simulated registers {registers}; "
            f"likelihood {d.get('likelihood', DASH)}; τ {s.get('tau', DASH)}; fits {_sampler(s)}; control risks: "
            + (control if control is not None else f"observed, two smallest trials at {s.get('rare_control_risk', DASH)}")
            + f"; {_num(d.get('seconds'), '.0f')} s; {d.get('date', DASH)}. {_register_note(d)}")
        table = d.get("table", [])
        gammas = sorted({r.get("gamma") for r in table if r.get("gamma") is not None})
        keys = []
        for r in table:
            key = (r.get("true_or"), r.get("rule"))
            if key not in keys:
                keys.append(key)
        rows = []
        for true_or, rule in keys:
            cells = {r.get("gamma"): r for r in table if (r.get("true_or"), r.get("rule")) == (true_or, rule)}
            rows.append([_num(true_or, "g"), str(rule).replace("gamma", "γ")]
                        + [f"{_num(cells[g].get('rate'))} ± {_num(cells[g].get('mcse'))}" if g in cells else DASH
                           for g in gammas])
        parts.append(_table(["true OR", "rule"] + [f"γ = {g:g}" for g in gammas], rows))
    return "\n\n".join(parts)


# -- prior presets and the register's schema -----------------------------------------------------


def render_presets() -> str:
    from bayes_msc import priors

    parts = []
    for scale, presets in priors.PRESETS.items():
        if not presets:
            continue
        rows = [[f"`{p.name}`", p.role, p.prior.describe(),
                 # the reference names a publication; the rationale is printed by `priors ANALYSIS`
                 DASH if not p.reference or ".md" in p.reference else p.reference]
                for p in presets]
        parts.append(f"**{scale}**\n\n" + _table(["preset", "role", "prior", "reference"], rows))
    return "\n\n".join(parts)


def _schema_tables():
    """The register's table declarations, found through the public ``Register``'s module (the
    modules behind it may move; the declarations travel with the validator)."""
    import importlib

    import bayes_msc

    module = importlib.import_module(bayes_msc.Register.__module__)
    for value in list(vars(module).values()):
        tables = getattr(value, "TABLES", None)
        if tables is not None:
            return tables
    tables = getattr(module, "TABLES", None)
    if tables is None:
        raise RuntimeError("the register's table declarations (TABLES) were not found next to bayes_msc.Register")
    return tables


def render_schema() -> str:
    parts = []
    for table in _schema_tables():
        rows = []
        for c in table.columns:
            kind = c.kind
            if c.kind in ("int", "float"):
                kind += " > 0" if c.positive else (" (signed)" if c.signed else " ≥ 0")
            values = ", ".join(f"`{v}`" for v in c.choices) if c.choices else ""
            rows.append([f"`{c.name}`", kind, "yes" if c.required else "no", values])
        key = ", ".join(f"`{k}`" for k in table.key)
        parts.append(f"### `{table.file_name}` ({'required' if table.required else 'optional'}; key: {key})\n\n"
                     + _table(["column", "kind", "required", "allowed values"], rows))
    return "\n\n".join(parts)


def render_toplevel() -> str:
    """``load_register``, ``Register``, the one-table readers, ``InputError`` and ``figure`` as ``bayes_msc`` exports them: their
    defining modules are internal (and may move), so they are read through the public names."""
    import inspect

    import bayes_msc

    def text(doc: str) -> str:
        doc = inspect.cleandoc(doc or "")
        doc = re.sub(r":\w+:`~?([^`]+)`", r"`\1`", doc)  # Sphinx roles -> code
        return doc.replace("``", "`")

    parts = []
    for name in ("load_register", "Register", "load_binary_trials", "load_continuous_trials", "InputError", "figure"):
        obj = getattr(bayes_msc, name)
        try:
            signature = str(inspect.signature(obj))
        except (TypeError, ValueError):
            signature = "(...)"
        kind = "class" if inspect.isclass(obj) else "def"
        block = [f"### `bayes_msc.{name}`", "", "```python", f"{kind} {name}{signature}", "```", "", text(obj.__doc__)]
        if inspect.isclass(obj) and name == "Register":
            members = [(m, v) for m, v in vars(obj).items() if not m.startswith("_") and (v.__doc__ or "").strip()
                       and (inspect.isfunction(v) or isinstance(v, property))]
            for member, value in members:
                block += ["", f"**`{member}`**: " + text(value.__doc__).split("\n\n")[0].replace("\n", " ")]
        parts.append("\n".join(block))
    return "\n\n".join(parts)


RENDERERS = {"toplevel": render_toplevel, "sbc": render_sbc, "simstudy": render_simstudy, "oc": render_oc, "presets": render_presets,
             "schema": render_schema}
