"""``/api/jobs``: the durable job queue (:mod:`archive_state.jobs`) as JSON, camelCase.

Listing filters by state, kind and tenant and pages with limit/offset (newest first). Retry and
cancel answer 409 when the job's state does not allow them (the queue raises ``JobConflict``,
translated once in :mod:`archive_api.errors`). ``POST /api/jobs`` enqueues only kinds a worker
runs (:mod:`archive_worker.kinds`), with their params checked first; an idempotency key makes a
repeated request return the job it made the first time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from archive_state.jobs import Job, JobQueue, JobState
from archive_worker.kinds import KindInfo

from .errors import Unprocessable
from .camel import CamelModel, StrictCamelModel




class Progress(CamelModel):
    done: int | None = None
    total: int | None = None
    message: str | None = None


class JobOut(CamelModel):
    id: int
    tenant: str
    kind: str
    state: JobState
    params: dict[str, Any]
    attempts: int
    max_attempts: int
    progress: Progress
    last_error: str | None
    result: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    run_after: datetime
    lease_owner: str | None

    @classmethod
    def of(cls, job: Job) -> "JobOut":
        return cls(
            id=job.id, tenant=job.tenant, kind=job.kind, state=job.state, params=job.params,
            attempts=job.attempts, max_attempts=job.max_attempts,
            progress=Progress(done=job.progress_done, total=job.progress_total,
                              message=job.progress_message),
            last_error=job.last_error, result=job.result, created_at=job.created_at,
            updated_at=job.updated_at, started_at=job.started_at, finished_at=job.finished_at,
            run_after=job.run_after, lease_owner=job.lease_owner,
        )


class JobPage(CamelModel):
    items: list[JobOut]
    total: int
    limit: int
    offset: int


class KindOut(CamelModel):
    name: str
    description: str


class JobCreate(StrictCamelModel):
    kind: str = Field(min_length=1, max_length=100)
    params: dict[str, Any] = Field(default_factory=dict)
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=200)


def router(queue: JobQueue, kinds: Mapping[str, KindInfo]) -> APIRouter:
    """The routes over ``queue``; ``kinds`` are those the workers run (name → info)."""
    api = APIRouter(prefix="/api/jobs", tags=["jobs"])

    @api.get("", response_model=JobPage, response_model_by_alias=True,
             summary="List jobs, newest first")
    async def list_jobs(
        state: JobState | None = None,
        kind: str | None = Query(default=None, max_length=100),
        tenant: str | None = Query(default=None, max_length=32),
        limit: int = Query(default=50, ge=1, le=1000),
        offset: int = Query(default=0, ge=0),
    ) -> JobPage:
        items, total = await asyncio.to_thread(
            queue.list, state=state, kind=kind, tenant=tenant, limit=limit, offset=offset)
        return JobPage(items=[JobOut.of(j) for j in items], total=total, limit=limit,
                       offset=offset)

    @api.get("/kinds", response_model=list[KindOut], summary="The kinds of job workers run")
    async def list_kinds() -> list[KindOut]:
        return [KindOut(name=n, description=i.description) for n, i in sorted(kinds.items())]

    @api.post("", response_model=JobOut, status_code=201, response_model_by_alias=True,
              summary="Enqueue a job (idempotent with idempotencyKey)")
    async def create_job(body: JobCreate) -> JobOut:
        info = kinds.get(body.kind)
        if info is None:
            raise Unprocessable(f"no worker runs jobs of kind {body.kind!r}", field="kind",
                                known=sorted(kinds))
        problem = info.check_params(body.params)
        if problem:
            raise Unprocessable(f"params: {problem}", field="params")
        job = await asyncio.to_thread(queue.enqueue, body.kind, body.params,
                                      idempotency_key=body.idempotency_key)
        return JobOut.of(job)

    @api.get("/{job_id}", response_model=JobOut, response_model_by_alias=True,
             summary="One job")
    async def get_job(job_id: int) -> JobOut:
        return JobOut.of(await asyncio.to_thread(queue.get, job_id))

    @api.post("/{job_id}/retry", response_model=JobOut, response_model_by_alias=True,
              summary="Queue a failed or cancelled job again (409 otherwise)")
    async def retry_job(job_id: int) -> JobOut:
        return JobOut.of(await asyncio.to_thread(queue.retry, job_id))

    @api.post("/{job_id}/cancel", response_model=JobOut, response_model_by_alias=True,
              summary="Cancel a queued job, or ask a running one to stop (409 when finished)")
    async def cancel_job(job_id: int) -> JobOut:
        return JobOut.of(await asyncio.to_thread(queue.cancel, job_id))

    return api
