"""Test-only job kinds, loaded by a worker with ``--kinds-module tests.integration.slow_kinds``.

``test.slow`` takes ``steps`` × ``delay`` seconds, reporting progress at each step, and appends
one line to ``params["ledger"]`` when it completes, so a test can count completions across
worker crashes. Never part of the shipped kinds table.
"""

from __future__ import annotations

import os
import time
from typing import Any

from archive_state.jobs import Job
from archive_worker.context import Handler, JobContext


def slow(job: Job, context: JobContext) -> dict[str, Any]:
    steps = int(job.params.get("steps", 20))
    delay = float(job.params.get("delay", 0.2))
    for step in range(1, steps + 1):
        time.sleep(delay)
        context.progress(step, steps, f"step {step}")
    with open(job.params["ledger"], "a", encoding="utf-8") as ledger:
        ledger.write(f"{job.id} {os.getpid()} attempt {job.attempts}\n")
    return {"steps": steps, "pid": os.getpid()}


KINDS: dict[str, Handler] = {"test.slow": slow}
