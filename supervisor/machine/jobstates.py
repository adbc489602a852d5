"""A job's states, and the named groups beside them."""

from __future__ import annotations

import enum


class JobState(enum.StrEnum):
    """A job's states, as the status document spells them."""

    PENDING = "pending"  # waiting on its dependencies
    RUNNING = "running"
    RETRYING = "retrying"  # waiting before its next attempt
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"  # at head, or ALEMBIC_CMD=true


PENDING, RUNNING, RETRYING = JobState.PENDING, JobState.RUNNING, JobState.RETRYING
SUCCEEDED, FAILED, SKIPPED = JobState.SUCCEEDED, JobState.FAILED, JobState.SKIPPED
# Named groups beside the states: over for this start-up; lets its dependants start (with continue).
FINISHED_STATES = frozenset({SUCCEEDED, FAILED, SKIPPED})
