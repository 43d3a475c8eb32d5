"""Fewer garbage collections in a process the package owns (``bayes_msc.engine.process.own_process``,
the command line): the young-generation threshold is raised, the objects the imports made are
frozen at the first compile, and the collector still reclaims what becomes garbage. A library
import or fit does none of it (``test_side_effects``)."""

import json

from conftest import run_python

SCRIPT = r"""
import gc, json, weakref
before = gc.get_threshold()
from bayes_msc.engine import process
imported = gc.get_threshold()
process.own_process()
after = gc.get_threshold()

class Node:
    pass

cycle = Node(); cycle.me = cycle; alive = weakref.ref(cycle); del cycle
gc.collect()
unfrozen = gc.get_freeze_count()
import bayes_msc
bayes_msc.fit("mortality", chains=1, draws=50, tune=50, seed=1)
print(json.dumps({"before": before, "imported": imported, "after": after, "collected": alive() is None,
                  "enabled": gc.isenabled(), "unfrozen": unfrozen, "frozen": gc.get_freeze_count()}))
"""


def test_the_command_lines_process_collects_less_often_and_still_collects(tmp_path):
    result = run_python(SCRIPT, tmp_path, timeout=300)
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["imported"] == found["before"]  # importing the package changes nothing
    assert found["after"][0] == max(found["before"][0], 20_000) and found["after"][1:] == found["before"][1:]
    assert found["collected"] and found["enabled"]
    # the first compile froze what the imports made (a library caller's process: test_side_effects)
    assert found["frozen"] > found["unfrozen"] + 100_000
