"""Progress you can see: on a terminal a long command shows one line naming its step; nothing when
stderr is not a terminal or under --quiet."""

from __future__ import annotations

import io
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from bayes_msc.io import progress
from bayes_msc.cli import main
from bayes_msc.io.progress import COMPILING, ProgressLine

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--chains", "2", "--draws", "100", "--tune", "100", "--seed", "3"]


def test_a_fit_on_a_terminal_shows_its_steps_on_one_line():
    """stderr on a pseudo-terminal: the compile and the sampling are named, on one rewritten line,
    and the line is gone before the result (nothing of it on stdout)."""
    leader, follower = pty.openpty()
    child = subprocess.Popen([sys.executable, "-m", "bayes_msc", "fit", "mortality", *TINY],
                             stdout=subprocess.PIPE, stderr=follower, cwd=ROOT)
    os.close(follower)
    err = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the child closed its end
            break
        if not chunk:
            break
        err += chunk
    out = child.stdout.read().decode()
    assert child.wait() == 0
    os.close(leader)
    text = err.decode()
    assert f"bayes_msc: {COMPILING} ..." in text
    assert "bayes_msc: sampling ..." in text
    assert "\n" not in text.split("WARNING")[0].replace("\r\n", "\n").rstrip("\n")  # one line, rewritten
    assert "\r\x1b[K" in text
    assert "sampling ..." not in out and "pooled odds ratio" in out


@pytest.fixture
def terminal(monkeypatch):
    """Make the command line take captured stderr for a terminal."""
    monkeypatch.setattr(progress, "is_terminal", lambda stream: True)


def test_quiet_and_a_pipe_show_no_progress(capsys, terminal, monkeypatch):
    assert main(["--quiet", "fit", "mortality", *TINY, "--prior", "halfnormal_1.0"]) == 0
    assert "sampling ..." not in capsys.readouterr().err
    monkeypatch.setattr(progress, "is_terminal", lambda stream: False)
    assert main(["fit", "mortality", *TINY, "--prior", "halfnormal_1.0"]) == 0
    err = capsys.readouterr().err
    assert "sampling ..." not in err and "\x1b[K" not in err


def test_influence_counts_its_refits(capsys, terminal):
    assert main(["influence", "mortality", *TINY]) == 0
    err = capsys.readouterr().err
    assert "bayes_msc: sampling ..." in err
    import bayes_msc

    spec = bayes_msc.load_spec("mortality")
    k = len(spec.outcome_type.build_evidence(bayes_msc.load_register(), spec).studies)  # one refit per study
    for done in range(k + 1):
        assert f"bayes_msc: refits {done}/{k}" in err, done
    assert err.endswith("\r\x1b[K")  # cleared before the table


def test_counter_names_the_step_and_stays_silent_when_off():
    stream = io.StringIO()
    line = ProgressLine(stream, enabled=True)
    line.counter("refits")(3, 11, 0, 12.0)
    assert stream.getvalue() == "\r\x1b[Kbayes_msc: refits 3/11, about 12 s left ..."
    line.clear()
    assert stream.getvalue().endswith("\r\x1b[K")
    silent = io.StringIO()
    ProgressLine(silent).counter("refits")(3, 11, 0, 12.0)  # StringIO is not a terminal
    assert silent.getvalue() == ""


def test_warm_keeps_its_own_lines(capsys, terminal):
    assert main(["warm", "mortality"]) == 0
    err = capsys.readouterr().err
    assert "warm: compiling mortality (1/1) ... done in" in err and "\x1b[K" not in err
