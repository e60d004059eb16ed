"""Outcome classes and the exit-code order (issue 12, item 3)."""

from __future__ import annotations

import pytest

from triage.cli_errors import EXIT_PRECEDENCE, worst_exit
from triage.model import OUTCOME_CLASSES, OUTCOME_OF_STATUS, STATUSES, outcome_counts


def test_every_status_has_one_outcome_class() -> None:
    assert set(OUTCOME_OF_STATUS) == set(STATUSES)
    assert set(OUTCOME_OF_STATUS.values()) == set(OUTCOME_CLASSES)


def test_outcome_counts_sum_statuses_by_class() -> None:
    counts = outcome_counts({"done": 5, "skipped": 2, "incomplete": 1, "error": 3,
                             "quarantined": 1})
    assert counts == {"done": 5, "not_applicable": 2, "coverage_gap": 1, "error": 4,
                      "pending": 0}
    assert outcome_counts({}) == dict.fromkeys(OUTCOME_CLASSES, 0)


@pytest.mark.parametrize(("codes", "expected"), [
    ((), 0), ((0,), 0), ((8, 0), 8), ((3, 8), 3), ((7, 3), 7), ((6, 3, 8), 6), ((4, 6), 4),
    ((5, 4), 5), ((2, 5), 2), ((1, 2), 1), ((130, 1), 130)])
def test_worst_exit_follows_the_issue_order(codes: tuple[int, ...], expected: int) -> None:
    assert worst_exit(*codes) == expected


def test_precedence_is_the_documented_one() -> None:
    assert EXIT_PRECEDENCE == (130, 1, 2, 5, 4, 9, 6, 7, 3, 8, 0)
