"""How much the benchmark does: the full run (≈25 min here) or ``--quick`` (a smoke run)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final, Literal

SCENARIOS: Final = ("dimse", "stow", "wado", "door", "qido", "viewer", "security")


@dataclass(frozen=True)
class Plan:
    mode: Literal["full", "quick"]
    reps_small: int  # A/B repetitions of each small-instance ingest case
    reps_large: int  # … of each large-instance ingest case
    reps_read: int  # … of each WADO-RS, QIDO-RS and viewer case
    parallel: tuple[int, ...]  # associations / STOW-RS clients at once
    ct_slices: int  # the small-instance set, also the viewer's study (512×512 CT)
    dx_count: int  # the large-instance set (10-50 MB each)
    series_slices: int  # the long series of WADO-RS series metadata
    stow_batch: int  # small instances per STOW-RS request
    tiny_levels: tuple[int, int]  # index sizes (studies) for QIDO-RS
    metadata_requests: int
    frame_requests: int
    rendered_requests: int
    metadata_clients: tuple[int, ...]
    frame_clients: tuple[int, ...]
    door_clients: tuple[int, ...]  # concurrent clients of the door-overhead cases
    security_metadata_clients: tuple[int, ...]  # … of the security on/off series metadata
    security_frame_clients: tuple[int, ...]  # … of the security on/off frames
    qido_queries: int  # searches per QIDO-RS case and run
    zh_patients: int  # Chinese-named patients (two studies each) added to the QIDO index
    recheck_reps: int
    recheck_budget_s: float

    def with_reps(self, reps: int) -> "Plan":
        return replace(self, reps_small=reps, reps_large=reps, reps_read=reps)


FULL: Final = Plan(
    mode="full", reps_small=5, reps_large=3, reps_read=3, parallel=(1, 4, 8), ct_slices=500,
    dx_count=20, series_slices=1000, stow_batch=10, tiny_levels=(1000, 10000),
    metadata_requests=10, frame_requests=200, rendered_requests=100, metadata_clients=(1, 4),
    frame_clients=(1, 8), door_clients=(1, 4), security_metadata_clients=(1,),
    security_frame_clients=(1, 8), qido_queries=20, zh_patients=20, recheck_reps=4,
    recheck_budget_s=300.0)

QUICK: Final = Plan(
    mode="quick", reps_small=1, reps_large=1, reps_read=1, parallel=(1, 4, 8), ct_slices=60,
    dx_count=4, series_slices=120, stow_batch=10, tiny_levels=(200, 1000),
    metadata_requests=2, frame_requests=40, rendered_requests=20, metadata_clients=(1, 4),
    frame_clients=(1, 8), door_clients=(1, 4), security_metadata_clients=(1,),
    security_frame_clients=(1, 8), qido_queries=5, zh_patients=5, recheck_reps=1,
    recheck_budget_s=20.0)
