"""Safe HTML building: every string is escaped unless it is already :class:`Markup`.

The report is assembled from small helpers (:func:`el`, :func:`table`, :func:`figure`) that
escape text and attribute values themselves, so a study label such as
``<script>alert(1)</script>`` read from a register can only ever appear as text. Only the
helpers here (and inline SVG produced by matplotlib, which escapes its own text) create
:class:`Markup`.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterable, Sequence
from importlib.resources import files
from typing import Any


class Markup(str):
    """A string that is already HTML; concatenating it with text escapes the text."""

    def __add__(self, other: Any) -> "Markup":
        return Markup(str.__add__(self, escape(other)))

    def __radd__(self, other: Any) -> "Markup":
        return Markup(str.__add__(escape(other), self))


def escape(value: Any) -> Markup:
    """HTML-escape ``value`` (quotes included) unless it is :class:`Markup`; None and NaN → ''."""
    if isinstance(value, Markup):
        return value
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return Markup("")
    try:
        import pandas as pd

        if value is pd.NA:
            return Markup("")
    except ImportError:  # pragma: no cover
        pass
    return Markup(html.escape(str(value), quote=True))


def join(parts: Iterable[Any], sep: str = "") -> Markup:
    return Markup(escape(sep).join(escape(p) for p in parts))


_ATTR_NAME = re.compile(r"^[a-zA-Z_:][-a-zA-Z0-9_:.]*$")
_VOID = {"br", "hr", "img", "meta", "col", "wbr"}


def el(tag: str, *children: Any, **attrs: Any) -> Markup:
    """``<tag attrs>children</tag>``; ``class_`` → ``class``, ``aria_label`` → ``aria-label``."""
    parts = [tag]
    for key, value in attrs.items():
        if value is None or value is False:
            continue
        name = key.rstrip("_").replace("_", "-")
        if not _ATTR_NAME.match(name):
            raise ValueError(f"bad attribute name {name!r}")
        parts.append(name if value is True else f'{name}="{escape(value)}"')
    head = "<" + " ".join(parts) + ">"
    if tag in _VOID:
        return Markup(head)
    # str.join, not +: ``str + Markup`` would call Markup.__radd__ and escape the tag itself
    return Markup("".join((head, join(children), f"</{tag}>")))


def para(*children: Any, **attrs: Any) -> Markup:
    return el("p", *children, **attrs)


def badge(passed: bool, yes: str = "PASS", no: str = "FAIL") -> Markup:
    """A pass/fail label that says it in words, not only in colour."""
    return el("span", yes if passed else no, class_="badge " + ("pass" if passed else "fail"))


def table(
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    caption: Any = None,
    numeric: Sequence[int] = (),
    class_: str = "",
) -> Markup:
    """A table inside a horizontally scrollable wrapper (tables never widen the page)."""
    head = el("thead", el("tr", *(el("th", c, scope="col") for c in columns)))
    body_rows = []
    for row in rows:
        cells = [el("td", value, class_="num" if i in numeric else None) for i, value in enumerate(row)]
        body_rows.append(el("tr", *cells))
    inner = el("table", el("caption", caption) if caption is not None else "", head, el("tbody", *body_rows),
               class_=class_ or None)
    return el("div", inner, class_="table-wrap")


def figure(svg: Markup, *, caption: Any, alt: str, data: Markup | None = None, fig_id: str = "") -> Markup:
    """Inline SVG figure with a text alternative (``role=img`` + ``aria-label``), a caption
    and, when given, the plotted numbers as a table (shown, so it prints too)."""
    body = [el("div", svg, class_="plot", role="img", aria_label=alt), el("figcaption", caption)]
    if data is not None:
        body.append(data)
    return el("figure", *body, id=fig_id or None)


def section(section_id: str, title: str, *content: Any) -> Markup:
    return el("section", el("h2", title), *content, id=section_id)


def fmt(value: Any, spec: str = ".2f") -> str:
    """Format a number; missing values become an en dash."""
    if value is None:
        return "–"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(number):
        return "–"
    if math.isinf(number):
        return "∞" if number > 0 else "−∞"
    return format(number, spec).replace("-", "−")


def pct(value: float, digits: int = 1) -> str:
    return fmt(100 * value, f".{digits}f") + "%"


def stylesheet() -> str:
    return files("bayes_msc.report").joinpath("report.css").read_text(encoding="utf-8")


def page(title: str, body: Sequence[Any], *, subtitle: Any = "", nav: Sequence[tuple[str, str]] = ()) -> str:
    """The whole document: inline CSS, no scripts, nothing loaded from anywhere."""
    toc = el("nav", el("ol", *(el("li", el("a", label, href=f"#{anchor}")) for anchor, label in nav)),
             aria_label="Contents") if nav else ""
    document = "".join((
        "<!DOCTYPE html>\n",
        el(
            "html",
            el(
                "head",
                Markup('<meta charset="utf-8">'),
                Markup('<meta name="viewport" content="width=device-width, initial-scale=1">'),
                # Belt and braces: even a stray reference could not fetch anything.
                Markup('<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
                       'style-src \'unsafe-inline\'; img-src data:">'),
                el("title", title),
                el("style", Markup(stylesheet())),
            ),
            el("body", el("main", el("header", el("h1", title), subtitle), toc, *body)),
            lang="en",
        ),
        "\n",
    ))
    return document
