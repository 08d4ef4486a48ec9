"""A search candidate's outcome is a value (report.json's ``outcome``), its ``status``
line is derived from it, and files written before ``outcome`` existed still read."""

from __future__ import annotations

import pytest

from compressor.reports.report_model import Outcome, candidate_outcome, outcome_text

pytestmark = pytest.mark.fast


@pytest.mark.parametrize(
    ("outcome", "reason", "status"),
    [
        (Outcome.CHOSEN, "meets every constraint", "chosen: meets every constraint"),
        (Outcome.MISSES, "fidelity 0.9 < 0.99", "misses: fidelity 0.9 < 0.99"),
        (Outcome.MEETS, "", "meets every constraint"),
        (Outcome.NOT_TRIED, "", "not tried"),
        (
            Outcome.FAILED,
            "LiteRT crashed running it: SIGFPE",
            "failed: LiteRT crashed running it: SIGFPE",
        ),
    ],
)
def test_the_status_line_is_the_outcome_and_its_reason(outcome, reason, status):
    assert outcome_text(outcome, reason) == status
    assert candidate_outcome({"outcome": outcome.value, "status": status}) is outcome
    assert candidate_outcome({"status": status}) is outcome  # a report from before
