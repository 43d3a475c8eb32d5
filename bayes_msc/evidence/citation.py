"""Provenance text as a reader sees it: the publication, not the curators' working files.

A register's ``source`` cells may point at the curators' own notes ("EVIDENCE.md §7.2", "seed 003
(...)") and its ``notes`` cells may record where a number was looked for. Neither helps a reader:
:func:`public_source` replaces a pointer to project notes by the study's publication
(``studies.csv`` ``reference``), keeping the table or figure the number was read from;
:func:`public_note` keeps only the clauses of a note that describe the study.
"""

from __future__ import annotations

import re

# pointers to the curators' notes file: "via EVIDENCE.md §7.2", "(EVIDENCE.md §2)", "EVIDENCE.md §2 (Adas 2021)"
_NOTES_POINTER = re.compile(
    r"\s*\bvia\s+EVIDENCE\.md(?:\s*§\s*[\d.]+)?|\s*\(EVIDENCE\.md(?:\s*§\s*[\d.]+)?\)"
    r"|EVIDENCE\.md(?:\s*§\s*[\d.]+)?(?:\s*\([^()]*\))?\s*;?"
)
# "seed 003 (Lanzoni 2021 abstract)": the curators' numbered copy of a document; keep what it names
_SEED_FILE = re.compile(r"\bseed\s+\d+\s*(?:\(([^()]*)\))?")
_PROJECT = re.compile(r"EVIDENCE\.md|\bseed\s+\d+")
# clauses that record the search for a number rather than the study
_WORKING = re.compile(
    r"seed says|\bseed\b|EVIDENCE\.md|NOT FOUND|\blooked\b|search tool|pages corpus|"
    r"\d{4}-\d{2}-\d{2}|\bqueries\b",
    re.IGNORECASE,
)


def _text(value) -> str:
    return value.strip() if isinstance(value, str) else ""


def public_source(source, reference=None) -> str:
    """``source`` with pointers to project notes replaced by the publication ``reference``.

    A source that names a publication and the place in it keeps that, without the pointer; one
    that cites the curators' copy of a document, or names no publication (no year, PMID or DOI),
    gets the study's reference, with the place it names kept beside it.
    """
    text = _text(source)
    if not _PROJECT.search(text):
        return text
    reference = _text(reference)
    # a seed file is the curators' copy of the publication itself: cite the publication
    from_copy = bool(_SEED_FILE.search(text))
    locator = _SEED_FILE.sub(lambda m: m.group(1) or "", text)
    locator = _NOTES_POINTER.sub("", locator)
    locator = re.sub(r"\s{2,}", " ", locator).strip(" ;,")
    # what is left names a publication when it carries a year, PMC/PMID or DOI
    names_publication = bool(re.search(r"\d", locator))
    if reference and (from_copy or not names_publication):
        return f"{reference}; {locator}" if locator else reference
    return locator or reference


def public_note(note) -> str:
    """The clauses of a register note that describe the study, without the record of a search."""
    text = _text(note)
    if not text:
        return ""
    kept = [c for c in _clauses(text) if not _WORKING.search(c)]
    return "; ".join(kept)


def _clauses(text: str) -> list[str]:
    """``text`` split at '; ' and '. ' outside parentheses (a parenthesis stays with its clause)."""
    clauses, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += (ch == "(") - (ch == ")")
        if depth == 0 and ch in ";." and text[i + 1:i + 2] in (" ", ""):
            clauses.append(text[start:i])
            start = i + 1
    clauses.append(text[start:])
    return [c.strip() for c in clauses if c.strip()]
