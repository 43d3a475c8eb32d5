"""HTML escaping of text AND attribute values, quotes included.

A data string (a study label from a register) must come back out of a standards parser exactly
as it went in — as text where it was text, as the whole value of the attribute it was put in —
and must never open an element or add an attribute. The browser tests in ``test_report.py``
cover the rendered page; these need no browser, so they also run where Chromium is missing.
"""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from bayes_msc.report.html import Markup, el, escape, figure, join, table
from conftest import HOSTILE_LABEL

NASTY = [
    HOSTILE_LABEL,
    '" onmouseover="alert(1)',
    "' onfocus='alert(1)' autofocus '",
    "</p><script>alert(1)</script><p>",
    "a & b &lt; c &#x27; d",
    "`backtick` =equals= \u00a0nbsp ünïcödé ✓",
]


class Parsed(HTMLParser):
    """Every start tag with its attributes (values unescaped, as a browser reads them) and the text."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


@pytest.mark.parametrize("value", NASTY)
def test_text_and_attribute_values_round_trip(value):
    fragment = el("p", value, title=value, data_label=value, aria_label=value, class_="x")
    parsed = Parsed(fragment)
    assert parsed.tags == [("p", {"title": value, "data-label": value, "aria-label": value, "class": "x"})]
    assert "".join(parsed.text) == value


@pytest.mark.parametrize("value", NASTY)
def test_void_element_attribute_cannot_break_out(value):
    parsed = Parsed(el("img", alt=value, src="data:,"))
    assert parsed.tags == [("img", {"alt": value, "src": "data:,"})]
    assert parsed.text == []


def test_quotes_are_escaped_as_entities_not_left_raw():
    # Both quote characters are escaped, so the value is safe whichever quote delimits it.
    assert str(escape("\"'<>&")) == "&quot;&#x27;&lt;&gt;&amp;"
    assert 'title="&quot; onmouseover=&quot;x"' in el("span", "", title='" onmouseover="x')


def test_figure_text_alternative_and_caption_keep_the_label_whole():
    svg = Markup('<svg xmlns="http://www.w3.org/2000/svg"><text>ok</text></svg>')
    parsed = Parsed(figure(svg, caption=HOSTILE_LABEL, alt=f"Forest plot. {HOSTILE_LABEL}: effect 3 mmHg.",
                           fig_id="fig-x"))
    tags = dict((tag, attrs) for tag, attrs in parsed.tags)
    assert tags["div"] == {"class": "plot", "role": "img", "aria-label": f"Forest plot. {HOSTILE_LABEL}: effect 3 mmHg."}
    assert tags["figure"] == {"id": "fig-x"}
    assert [t for t, _ in parsed.tags] == ["figure", "div", "svg", "text", "figcaption"]
    assert HOSTILE_LABEL in "".join(parsed.text)


def test_table_cells_and_caption_are_text():
    parsed = Parsed(table(("Study", HOSTILE_LABEL), [(HOSTILE_LABEL, 1.5)], caption=HOSTILE_LABEL, numeric=(1,)))
    assert {t for t, _ in parsed.tags} == {"div", "table", "caption", "thead", "tr", "th", "tbody", "td"}
    assert "".join(parsed.text).count(HOSTILE_LABEL) == 3


def test_markup_concatenation_escapes_the_plain_side():
    joined = Markup("<b>") + HOSTILE_LABEL + Markup("</b>")
    parsed = Parsed(joined)
    assert parsed.tags == [("b", {})] and "".join(parsed.text) == HOSTILE_LABEL
    assert Parsed(join([HOSTILE_LABEL, Markup("<i>ok</i>")], sep=" | ")).tags == [("i", {})]


def test_bad_attribute_names_are_refused():
    with pytest.raises(ValueError, match="bad attribute name"):
        el("p", "x", **{'onclick="alert(1)" title': "y"})


# -- a whole report ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hostile_report(hostile_oxygenation, tmp_path_factory) -> str:
    from bayes_msc.report import write_report

    result, register = hostile_oxygenation
    path = write_report(result, tmp_path_factory.mktemp("report") / "oxygenation.html", register=register)
    return path.read_text(encoding="utf-8")


def test_hostile_label_stays_whole_in_every_attribute_and_text_of_a_report(hostile_report):
    parsed = Parsed(hostile_report)
    names = {name for _, attrs in parsed.tags for name in attrs}
    assert not [name for name in names if name.startswith("on")], names
    assert "autofocus" not in names  # (x= is a legitimate SVG attribute, so it proves nothing)
    assert "script" not in {tag for tag, _ in parsed.tags}
    # wherever the label reached an attribute, the attribute holds all of it (no break-out)
    holding = [(tag, name, value) for tag, attrs in parsed.tags for name, value in attrs.items()
               if value and "Monsel 2022" in value]
    assert holding, "the label should reach the forest plot's text alternative"
    assert any(tag == "div" and name == "aria-label" for tag, name, _ in holding)
    for tag, name, value in holding:
        assert HOSTILE_LABEL in value, (tag, name, value)
    text = "".join(parsed.text)
    assert text.count(HOSTILE_LABEL) >= 3  # register table, derived numbers, forest data table ...
    # the markup never appears raw in the source (quotes may: inside SVG <text> content they are
    # harmless text, which is what the parse above shows)
    assert "<script>alert" not in hostile_report


def _clean(markup: str) -> Parsed:
    """Parse; no element or attribute came from data (no script, no on* handler, no autofocus)."""
    parsed = Parsed(markup)
    assert "script" not in {tag for tag, _ in parsed.tags}
    names = {name for _, attrs in parsed.tags for name in attrs}
    assert not [n for n in names if n.startswith("on")] and "autofocus" not in names, names
    return parsed


@pytest.mark.parametrize("value", NASTY)
def test_flow_diagram_text_is_escaped(value):
    """Every line of the flow diagram is SVG text: an evidence-set name and an allocation class
    carrying markup come back whole as text."""
    from bayes_msc.report.flow import flow_svg

    counts = {"register": 3, "register_by_allocation": {value: 2, "randomised": 1}, "listed": 3, "excluded": 1,
              "excluded_by_reason": {value: 1}, "included": 2, "included_by_allocation": {value: 2}}
    parsed = _clean(flow_svg(counts, f"studies:{value}"))
    text = "".join(parsed.text)
    assert text.count(value) == 4, text
