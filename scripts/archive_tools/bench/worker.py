"""One benchmark client, run as its own process: ``python -m archive_tools.bench.worker``.

Python clients run in separate processes so that N parallel associations or N concurrent HTTP
clients are N interpreters, not N threads sharing one GIL (and so that the benchmark's own
polling never slows them). The protocol on stdin/stdout, one line each:

1. the parent writes the job as JSON;
2. the worker prepares (imports, AE set-up), then writes ``READY``;
3. the parent writes ``GO`` to every worker at once; the worker does the job and writes its
   result as JSON (:class:`Outcome`), then exits.

Jobs: ``cstore`` (pynetdicom C-STORE of files over one association, PS3.4 B.2), ``stow``
(STOW-RS POSTs of multipart/related bodies, PS3.18 10.5), ``get`` (HTTP GETs, one after another,
each timed: WADO-RS, QIDO-RS). ``stow`` and ``get`` send HTTP basic authentication when the job
has ``auth`` ([user, password]: Orthanc's internal port, the door-overhead cases) and the job's
``headers`` with every request (``Authorization: Bearer`` with an API key: our door with security
on; one credential for the whole job, as a real client holds one). Times are
``time.monotonic()``, which is the same clock in every process of the machine
(CLOCK_MONOTONIC), so the parent can compare them with its own.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

READY = "READY"
GO = "GO"
#: C-STORE statuses that mean "stored" (PS3.4 B.2.3): success and the warnings.
STORED = frozenset({0x0000, 0xB000, 0xB007, 0xB006})


class JobFailed(RuntimeError):
    pass


@dataclass
class Outcome:
    started: float = 0.0
    first_done: float | None = None
    finished: float = 0.0
    count: int = 0
    bytes: int = 0
    latencies: list[float] = field(default_factory=list)
    error: str | None = None


def multipart_related(parts: Sequence[bytes], boundary: str | None = None) -> tuple[bytes, str]:
    """A multipart/related body of DICOM parts and its Content-Type (PS3.18 8.6.1.2)."""
    boundary = boundary or uuid.uuid4().hex
    chunks: list[bytes] = []
    for part in parts:
        chunks += [f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode(), part,
                   b"\r\n"]
    chunks.append(f"--{boundary}--\r\n".encode())
    content_type = f'multipart/related; type="application/dicom"; boundary={boundary}'
    return b"".join(chunks), content_type


def batches(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def stow_failures(body: Any) -> int:
    """How many instances a STOW-RS response lists in FailedSOPSequence (0008,1198)."""
    if not isinstance(body, dict):
        return 0
    failed = body.get("00081198", {})
    return len(failed.get("Value", [])) if isinstance(failed, dict) else 0


# --- the jobs ------------------------------------------------------------------------------


Runner = Callable[[Outcome], None]


def prepare_cstore(job: Mapping[str, Any]) -> Runner:
    from pydicom.uid import ExplicitVRLittleEndian
    from pynetdicom import AE

    ae = AE(ae_title=job.get("calling_aet", "BENCH"))
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = float(job.get("timeout", 120))
    for sop_class in job["sop_classes"]:
        ae.add_requested_context(sop_class, [ExplicitVRLittleEndian])
    files = [Path(f) for f in job["files"]]

    def run(out: Outcome) -> None:
        association = ae.associate(job["host"], int(job["port"]), ae_title=job["called_aet"])
        if not association.is_established:
            raise JobFailed(f"no association with {job['called_aet']}@{job['port']}")
        try:
            for path in files:
                status = association.send_c_store(path)
                if "Status" not in status:
                    state = "aborted" if association.is_aborted else "timed out or closed"
                    raise JobFailed(f"C-STORE of {path.name}: no response, association {state}")
                code = int(status.Status)
                if code not in STORED:
                    raise JobFailed(f"C-STORE of {path.name}: status 0x{code:04X}")
                out.count += 1
                out.bytes += path.stat().st_size
                if out.first_done is None:
                    out.first_done = time.monotonic()
        finally:
            if association.is_established:
                association.release()

    return run


def _session(job: Mapping[str, Any]) -> Any:
    import requests

    session = requests.Session()
    auth = job.get("auth")
    if auth:
        session.auth = (str(auth[0]), str(auth[1]))
    session.headers.update({str(k): str(v) for k, v in (job.get("headers") or {}).items()})
    return session


def prepare_stow(job: Mapping[str, Any]) -> Runner:
    session = _session(job)
    url = job["url"].rstrip("/") + "/studies"
    files = list(job["files"])
    size = int(job.get("batch", 1))
    timeout = float(job.get("timeout", 300))

    def run(out: Outcome) -> None:
        for batch in batches(files, size):
            parts = [Path(f).read_bytes() for f in batch]
            body, content_type = multipart_related(parts)
            response = session.post(url, data=body, timeout=timeout,
                                    headers={"Content-Type": content_type,
                                             "Accept": "application/dicom+json"})
            if response.status_code != 200:
                raise JobFailed(f"STOW-RS answered {response.status_code}: {response.text[:200]}")
            failed = stow_failures(response.json())
            if failed:
                raise JobFailed(f"STOW-RS refused {failed} of {len(batch)} instances")
            out.count += len(batch)
            out.bytes += sum(len(p) for p in parts)
            if out.first_done is None:
                out.first_done = time.monotonic()

    return run


def prepare_get(job: Mapping[str, Any]) -> Runner:
    session = _session(job)
    timeout = float(job.get("timeout", 300))
    wanted = list(job["requests"])

    def run(out: Outcome) -> None:
        for request in wanted:
            headers = {"Accept": request["accept"]} if request.get("accept") else {}
            if request.get("encoding"):
                headers["Accept-Encoding"] = request["encoding"]
            started = time.monotonic()
            response = session.get(request["url"], headers=headers, timeout=timeout)
            content = response.content
            done = time.monotonic()
            if response.status_code != 200:
                raise JobFailed(f"GET {request['url']} answered {response.status_code}: "
                                f"{response.text[:200]}")
            out.latencies.append(done - started)
            out.count += 1
            out.bytes += len(content)
            if out.first_done is None:
                out.first_done = done

    return run


PREPARE: dict[str, Callable[[Mapping[str, Any]], Runner]] = {
    "cstore": prepare_cstore,
    "stow": prepare_stow,
    "get": prepare_get,
}


def serve(stdin: TextIO, stdout: TextIO) -> int:
    """Read the job, prepare, say READY, wait for GO, run, write the outcome."""
    job = json.loads(stdin.readline())
    out = Outcome()
    try:
        run = PREPARE[job["kind"]](job)
    except Exception as error:  # reported to the parent, which fails the case
        out.error = f"preparing {job.get('kind')}: {type(error).__name__}: {error}"
        stdout.write(json.dumps(asdict(out)) + "\n")
        stdout.flush()
        return 1
    stdout.write(READY + "\n")
    stdout.flush()
    if stdin.readline().strip() != GO:
        return 1
    out.started = time.monotonic()
    try:
        run(out)
    except Exception as error:  # one boundary: any failure becomes the outcome's error
        out.error = f"{type(error).__name__}: {error}"
    out.finished = time.monotonic()
    stdout.write(json.dumps(asdict(out)) + "\n")
    stdout.flush()
    return 0 if out.error is None else 1


def main() -> int:
    """Entry point; ``BENCH_WORKER_LOG=/path/prefix`` writes a debug log per worker process."""
    import logging
    import os

    prefix = os.environ.get("BENCH_WORKER_LOG")
    if prefix:
        logging.basicConfig(level=logging.DEBUG, filename=f"{prefix}-{os.getpid()}.log",
                            format="%(asctime)s %(name)s %(levelname)s %(message)s")
    else:
        logging.basicConfig(level=logging.WARNING)
        logging.getLogger("pynetdicom").setLevel(logging.CRITICAL)
    return serve(sys.stdin, sys.stdout)


if __name__ == "__main__":
    sys.exit(main())
