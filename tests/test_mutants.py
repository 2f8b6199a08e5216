"""tests/mutants.py's table still applies to sql/: every original text is there exactly once and
every test named to kill a mutant exists (the runner itself is a developer tool: see README)."""

from __future__ import annotations

import re

import pytest
from mutants import EQUIVALENT, MUTANTS, ROOT, occurrences

EVERY = MUTANTS + [x for x, _why in EQUIVALENT]


@pytest.mark.parametrize("mutant", EVERY, ids=[x.name for x in EVERY])
def test_mutant_applies(mutant):
    assert mutant.mutant != mutant.original
    assert occurrences(mutant) == 1, f"{mutant.original!r} should occur once in sql/{mutant.file}"


def test_mutants_are_named_once_and_name_tests_that_exist():
    names = [x.name for x in EVERY]
    assert len(names) == len(set(names))
    for x in MUTANTS:
        assert x.tests, x.name
        for node in x.tests:
            path, function = node.split("::")
            text = (ROOT / path).read_text(encoding="utf-8")
            assert re.search(rf"^def {re.escape(function)}\(", text, re.MULTILINE), node
