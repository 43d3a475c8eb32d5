"""Errors a user can act on.

Every problem with user input (a register, a spec, a command-line value) is raised as
:class:`InputError`. The CLI prints its one-line message and exits non-zero without a
traceback, so the message must say *where* (file, row, field) and *what* is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Location:
    """Where a bad value sits: a file, optionally a 1-based data row and a field name.

    ``row`` counts data rows (the header is not a row), so row 1 is the file's second line.
    """

    file: str
    row: int | None = None
    field: str | None = None

    def __str__(self) -> str:
        parts = [self.file]
        if self.row is not None:
            parts.append(f"row {self.row}")
        if self.field is not None:
            parts.append(f"field '{self.field}'")
        return ", ".join(parts)


class InputError(ValueError):
    """Bad user input, reported as ``<file>, row <r>, field '<f>': <problem>``."""

    def __init__(self, problem: str, location: Location | None = None):
        self.problem = problem
        self.location = location
        super().__init__(f"{location}: {problem}" if location else problem)


# Where a settings object built in code (not read from a file or given as an override) went
# wrong; a spec's reader replaces it with the file or the override (bayes_msc.spec).
CONSTRUCTED = Location("settings")
