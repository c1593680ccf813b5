"""STOW-RS (``POST {DicomWeb.Root}/studies[/{study}]``, PS3.18 §10.5): each part its own outcome.

Why here and not in Orthanc's DICOMweb plugin: on bookworm (DICOMweb 1.7) a batch whose second
instance Orthanc refuses answers 200, lists no failure and silently drops the instances after it;
empty bodies and broken framing also answer 200 (docs/decisions.md, "STOW-RS in the API
service"). So the door sends STOW-RS here, and this module:

1. checks the request (``multipart/related``, ``type=application/dicom``, a boundary: else 415 or
   400; an Accept that allows neither DICOM JSON nor XML: 406), before reading the body;
2. reads the body as it arrives (:mod:`.multipart`); each part is kept in memory up to
   :data:`MEMORY_LIMIT`, past that in a temp file (mode 0600, unlinked at once, so it goes away
   with the process whatever happens) in the temp folder;
3. sends each complete part to Orthanc with ``POST /instances`` (internal credential, keep-alive
   pool of :class:`~archive_api.orthanc.AsyncOrthanc`), while the next parts are being received
   (at most :data:`IN_FLIGHT` stores per request, so memory stays bounded);
4. turns Orthanc's answer into the part's outcome: ``Success``/``AlreadyStored`` → stored (with
   warning 0xB000 when the ingest gate wrote ``<StateDirectory>/gate/repaired/<sha>.json``);
   a quarantine entry ``<StateDirectory>/quarantine/<sha>.json`` after the answer, be it
   ``{}`` or an error status (bookworm's Orthanc answered 400 in our runs) → quarantined, failure 0xA900 (0xC000 when the
   gate found no DICOM at all) with the gate's reasons; Orthanc refusing the bytes with no
   entry (the gate off) → 0xC000, and the bytes are kept in the quarantine by us, so nothing
   sent vanishes; Orthanc failing (5xx, unreachable) → 0xA700 (try again later); another 4xx →
   0x0110;
5. answers per :mod:`.stow_response` and logs one line per failed or warned part;
6. records the request in the audit trail: one ``upload`` row per study and outcome, with who
   sent it (:mod:`.stow_audit`).

``<sha>`` is the SHA-256 of the part's bytes as received, computed only when it is needed: the
part was not stored, or the repair folder changed while it was being stored.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import re
import secrets
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import APIRouter, Request, Response

from archive_audit.door_log import Patient
from archive_audit.events import Recorder
from archive_auth.principal import Principal
from archive_state import quarantine_spool as spool
from archive_state.quarantine import QuarantineIndex

from . import multipart, stow_audit, stow_response
from .dicom_header import Identifiers, read_identifiers
from .errors import BadRequest, NotAcceptable, UnsupportedMediaType
from .orthanc import AsyncOrthanc, OrthancError, OrthancHttpError, OrthancUnreachable
from .stow_response import PartOutcome

log = logging.getLogger(__name__)

#: A part up to this size stays in memory (while :data:`MEMORY_BUDGET` allows); a larger one
#: goes to a temp file. Measured: writing DX parts of 10-50 MB to the temp file and reading them
#: back was 15 % of the API's CPU.
MEMORY_LIMIT = 64 << 20
#: The most bytes of parts all requests of one API process hold in memory; past it, parts go
#: to temp files.
MEMORY_BUDGET = 512 << 20
#: How much of a part's beginning is kept in memory to read its UIDs from.
PREFIX_LIMIT = 1 << 20
#: Parts of one request being stored at once while the next ones are received: Orthanc stores
#: them in parallel on its HTTP threads; memory stays bounded (MEMORY_BUDGET).
IN_FLIGHT = 4
#: Stores of all requests of one API process at once. Orthanc on a few cores gains nothing from
#: more, and httpx's pool grows costly past its keep-alive size: measured at 8 clients × 4 parts
#: in flight, a tenth of the API's CPU went to the pool's bookkeeping and reconnects.
STORES_AT_ONCE = 8
#: Chunks read back from a temp file when streaming a large part to Orthanc.
READ_CHUNK = 1 << 20
#: Seconds a repair record's folder time may lag the clock (coarse kernel timestamps).
REPAIR_CLOCK_SLACK = 1.0
#: Warning headers per answer (every failed or warned part is logged; the door's buffer for an
#: upstream's headers is 64 KiB): past this many, one more header says how many were left out.
MAX_WARNINGS = 50
#: Longest message in one Warning header.
MAX_WARNING_TEXT = 600
#: The largest part copied into the quarantine when Orthanc cannot parse it.
QUARANTINE_COPY_LIMIT = 256 << 20
DICOM = "application/dicom"
_UID = re.compile(r"[0-9]+(\.[0-9]+)*")
#: Orthanc's ``ErrorCode_BadFileFormat``: the bytes are not DICOM Orthanc can read.
ORTHANC_BAD_FILE_FORMAT = 15
#: Reason codes when the API itself keeps what Orthanc refused (the gate's own codes where they
#: exist: archive_gate.codes).
REASON_NOT_DICOM = "NOT_DICOM"
REASON_REFUSED = "ORTHANC_REFUSED"
#: Gate reasons that mean "not a DICOM data set at all": failure 0xC000 rather than 0xA900.
_NOT_A_DATA_SET = frozenset({"NOT_DICOM", "EMPTY"})


class MemoryBudget:
    """The bytes of parts held in memory by all STOW-RS requests of this process.

    One event loop per process, so no lock: :meth:`take` and :meth:`give` never interleave.
    """

    def __init__(self, limit: int = MEMORY_BUDGET) -> None:
        self.limit = limit
        self.used = 0

    def take(self, size: int) -> bool:
        if self.used + size > self.limit:
            return False
        self.used += size
        return True

    def give(self, size: int) -> None:
        self.used -= size


class PartBuffer:
    """One part's bytes as they arrive: size, the first :data:`PREFIX_LIMIT` bytes, and the
    bytes themselves: in memory (the chunks as received, no copy) while the part is at most
    ``memory_limit`` and the process's :class:`MemoryBudget` allows, else in an unlinked temp
    file. The SHA-256 is computed only when asked for (:attr:`sha256`): a stored part that
    the gate did not touch never needs it (measured: hashing every part was 12-18 % of the
    API's CPU in STOW-RS)."""

    def __init__(self, temp_folder: Path, memory_limit: int = MEMORY_LIMIT,
                 budget: MemoryBudget | None = None) -> None:
        self._folder = temp_folder
        self._limit = memory_limit
        self._budget = budget if budget is not None else MemoryBudget()
        self._chunks: list[bytes | memoryview] = []
        self._held = 0
        self._fd: int | None = None
        self._prefix = bytearray()
        self._sha256: str | None = None
        self.size = 0

    @property
    def in_file(self) -> bool:
        return self._fd is not None

    @property
    def prefix(self) -> bytes:
        """The first :data:`PREFIX_LIMIT` bytes (in memory: taken from the joined bytes, which
        the store needs anyway, rather than copied as they arrive)."""
        if self._fd is None:
            joined = self._joined()
            return joined if len(joined) <= PREFIX_LIMIT else joined[:PREFIX_LIMIT]
        return bytes(self._prefix)

    @property
    def sha256(self) -> str:
        """The SHA-256 of the bytes (the quarantine's and the repair record's id)."""
        if self._sha256 is None:
            digest = hashlib.sha256()
            if self._fd is None:
                for chunk in self._chunks:
                    digest.update(chunk)
            else:
                offset = 0
                while offset < self.size:
                    chunk = os.pread(self._fd, min(READ_CHUNK, self.size - offset), offset)
                    if not chunk:
                        raise OSError("the STOW temp file is shorter than what was written")
                    digest.update(chunk)
                    offset += len(chunk)
            self._sha256 = digest.hexdigest()
        return self._sha256

    def write(self, data: bytes | memoryview) -> None:
        self._sha256 = None
        self.size += len(data)
        if self._fd is None:
            if self.size <= self._limit and self._budget.take(len(data)):
                self._chunks.append(data)
                self._held += len(data)
                return
            self._fd = self._open_temp()
            for chunk in self._chunks:
                self._keep_prefix(chunk)
                self._write_fd(chunk)
            self._release()
        self._keep_prefix(data)
        self._write_fd(data)

    def _keep_prefix(self, data: bytes | memoryview) -> None:
        if len(self._prefix) < PREFIX_LIMIT:
            self._prefix += data[:PREFIX_LIMIT - len(self._prefix)]

    def _release(self) -> None:
        self._chunks = []
        self._budget.give(self._held)
        self._held = 0

    def _open_temp(self) -> int:
        self._folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self._folder / f".stow-{os.getpid()}-{secrets.token_hex(8)}.part"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        os.unlink(path)  # gone from the folder now; the bytes live until the fd is closed
        return fd

    def _write_fd(self, data: bytes | memoryview) -> None:
        assert self._fd is not None
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view):]

    def _joined(self) -> bytes:
        """The bytes in memory as one ``bytes`` (joined once; the chunks are views)."""
        first = self._chunks[0] if len(self._chunks) == 1 else None
        if isinstance(first, bytes):
            return first
        joined = b"".join(self._chunks)
        self._chunks = [joined]
        return joined

    def body(self) -> bytes | Callable[[], AsyncIterator[bytes]]:
        """The bytes, or (from a temp file) a factory of chunk iterators for streaming."""
        if self._fd is None:
            return self._joined()
        fd, size = self._fd, self.size

        async def chunks() -> AsyncIterator[bytes]:
            offset = 0
            while offset < size:
                chunk = os.pread(fd, min(READ_CHUNK, size - offset), offset)
                if not chunk:
                    raise OSError("the STOW temp file is shorter than what was written")
                offset += len(chunk)
                yield chunk
        return chunks

    def read_all(self) -> bytes:
        if self._fd is None:
            return self._joined()
        return os.pread(self._fd, self.size, 0)

    def discard(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._release()


@dataclass
class _Part:
    index: int
    content_type: str | None
    buffer: PartBuffer
    accepted: bool


@dataclass(frozen=True)
class _Run:
    outcomes: list[PartOutcome]
    framing: str | None
    completed: int       # parts whose delimiter was seen
    refused_types: int   # of those, parts not of type application/dicom


@dataclass(frozen=True)
class StowRequest:
    """What one request brings besides its body."""

    study: str | None
    base_url: str
    client_ip: str | None


def base_url(headers: Mapping[str, str], scheme: str, root: str) -> str:
    """The DICOMweb root as the client reached it: RFC 7239 ``Forwarded``, else
    ``X-Forwarded-Proto``/``-Host`` (what the door sends), else ``Host``."""
    proto = host = None
    forwarded = headers.get("forwarded")
    if forwarded:
        first = forwarded.split(",")[0]
        for pair in first.split(";"):
            name, _, value = pair.strip().partition("=")
            value = value.strip().strip('"')
            if name.lower() == "proto" and value:
                proto = value
            elif name.lower() == "host" and value:
                host = value
    proto = proto or (headers.get("x-forwarded-proto") or "").split(",")[0].strip() or scheme
    host = host or (headers.get("x-forwarded-host") or "").split(",")[0].strip() or \
        headers.get("host") or "localhost"
    return f"{proto}://{host}{root}"


def client_address(headers: Mapping[str, str], peer: str | None) -> str | None:
    """The address the door saw: the last of ``X-Forwarded-For`` (nginx appends it)."""
    forwarded_for = headers.get("x-forwarded-for")
    if forwarded_for:
        last = forwarded_for.split(",")[-1].strip()
        if last:
            return last
    return peer


def check_request(content_type: str | None) -> bytes:
    """The boundary of a STOW-RS request body, or the error to answer (415, 400)."""
    if not content_type:
        raise UnsupportedMediaType("STOW-RS needs Content-Type: multipart/related; "
                                   "type=\"application/dicom\"; boundary=...")
    try:
        media = multipart.parse_media_type(content_type)
    except multipart.MediaTypeError as exc:
        raise BadRequest(f"Content-Type cannot be read: {exc}") from None
    if media.type != "multipart/related":
        raise UnsupportedMediaType(f"STOW-RS takes multipart/related, not {media.type}")
    part_type = (media.param("type") or DICOM).lower()
    if part_type != DICOM:
        raise UnsupportedMediaType(
            f"this archive takes STOW-RS parts of type application/dicom, not {part_type}")
    boundary = media.param("boundary")
    if not boundary:
        raise BadRequest("the multipart/related Content-Type has no boundary")
    try:
        return multipart.check_boundary(boundary)
    except multipart.MediaTypeError as exc:
        raise BadRequest(str(exc)) from None


def _accepted(content_type: str | None) -> bool:
    """A part without Content-Type is the root type (application/dicom, RFC 2387)."""
    if content_type is None:
        return True
    try:
        return multipart.parse_media_type(content_type).type == DICOM
    except multipart.MediaTypeError:
        return False


def _reasons_text(reasons: Any) -> str:
    words: list[str] = []
    for reason in reasons if isinstance(reasons, list) else []:
        if isinstance(reason, Mapping):
            tag = f" {reason['tag']}" if reason.get("tag") else ""
            words.append(f"{reason.get('code')}{tag}: {reason.get('message') or ''}".strip())
    return "; ".join(words) or "no reason recorded"


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("%s cannot be read: %s", path, exc)
        return {}
    return value if isinstance(value, dict) else {}


class StowService:
    """Runs STOW-RS requests against one Orthanc; one per process."""

    def __init__(self, orthanc: AsyncOrthanc, root: str, state_directory: Path,
                 temp_folder: Path, *, tenant: str = "default",
                 memory_limit: int = MEMORY_LIMIT, in_flight: int = IN_FLIGHT,
                 memory_budget: int = MEMORY_BUDGET, stores_at_once: int = STORES_AT_ONCE,
                 quarantine: QuarantineIndex | None = None,
                 recorder: Recorder | None = None) -> None:
        self.orthanc = orthanc
        #: Where each request's ``upload`` rows go (None: not recorded, for some tests).
        self.recorder = recorder
        #: The quarantine index, told that an entry the gate recorded as "rest" came by STOW-RS.
        self.quarantine = quarantine
        self.root = root
        self.state_directory = state_directory
        self.temp_folder = temp_folder
        self.tenant = tenant
        self.memory_limit = memory_limit
        self.in_flight = in_flight
        self.budget = MemoryBudget(memory_budget)
        self.stores_at_once = stores_at_once
        self._stores: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None

    def record_origins(self, entries: list[str], client_ip: str | None) -> None:
        """The gate inside Orthanc sees every part as a REST upload ("rest"); these entries
        really came by STOW-RS from ``client_ip``. Best effort: the answer is the same."""
        log.info("quarantine entries %s came by STOW-RS from %s", ", ".join(entries),
                 client_ip or "unknown")
        if self.quarantine is None:
            return
        try:
            self.quarantine.sync()
            for entry in entries:
                self.quarantine.set_origin(entry, "stow",
                                           {} if client_ip is None else {"ip": client_ip})
        except Exception:
            log.exception("quarantine entries %s: origin not recorded", ", ".join(entries))

    def _store_slots(self) -> asyncio.Semaphore:
        """The process's store slots (one semaphore per event loop: tests run several)."""
        loop = asyncio.get_running_loop()
        if self._stores is None or self._stores[0] is not loop:
            self._stores = (loop, asyncio.Semaphore(self.stores_at_once))
        return self._stores[1]

    @property
    def quarantine_folder(self) -> Path:
        return spool.folder_of(self.state_directory)

    @property
    def repaired_folder(self) -> Path:
        return self.state_directory / "gate" / "repaired"

    async def handle(self, request: Request, study: str | None,
                     principal: Principal | None = None) -> Response:
        """One request; ``principal`` is who sent it, for the audit trail."""
        if study is not None and (len(study) > 64 or not _UID.fullmatch(study)):
            raise BadRequest("the study in the URL is not a DICOM UID", parameter="study")
        answer_format = stow_response.choose_format(request.headers.get("accept"))
        if answer_format is None:
            raise NotAcceptable("STOW-RS answers application/dicom+json or "
                                "application/dicom+xml; the Accept header allows neither")
        boundary = check_request(request.headers.get("content-type"))
        peer = request.client.host if request.client else None
        context = StowRequest(study, base_url(request.headers, request.url.scheme, self.root),
                              client_address(request.headers, peer))
        run = await self._run(request.stream(), boundary, context)
        if run.completed == 0:
            raise BadRequest(run.framing or "the body holds no part")
        if run.refused_types == run.completed:
            raise UnsupportedMediaType("no part is application/dicom; this archive takes "
                                       "STOW-RS parts of type application/dicom only")
        response, origins = self._response(run, context, answer_format)
        if origins:
            await asyncio.to_thread(self.record_origins, origins, context.client_ip)
        await self._audit(run.outcomes, context, principal, f"POST {request.url.path}")
        return response

    async def _audit(self, outcomes: list[PartOutcome], context: StowRequest,
                     principal: Principal | None, resource: str) -> None:
        """The request's ``upload`` rows; a failure to record is logged, the answer stands
        (every part was already stored or refused)."""
        if self.recorder is None:
            return
        patients = {uid: await self._patient(uid) for uid in stow_audit.stored_studies(outcomes)}
        events = stow_audit.upload_events(outcomes, principal, tenant=self.tenant,
                                          client_ip=context.client_ip, resource=resource,
                                          patients=patients)
        try:
            for event in events:
                await asyncio.to_thread(self.recorder.record, event)
        except Exception:
            log.exception("STOW-RS from %s: the upload was not recorded in the audit trail",
                          context.client_ip or "?")

    async def _patient(self, study: str) -> Patient | None:
        """The study's patient as Orthanc indexed it (None when it cannot say)."""
        try:
            found = await self.orthanc.post_json("/tools/find", {
                "Level": "Study", "Query": {"StudyInstanceUID": study}, "Expand": True})
        except OrthancError as exc:
            log.warning("STOW-RS: the patient of study %s is unknown: %s", study, exc)
            return None
        for item in found if isinstance(found, list) else []:
            if isinstance(item, dict):
                tags = item.get("PatientMainDicomTags") or {}
                return Patient(tags.get("PatientID"), tags.get("PatientName"))
        return None

    async def _run(self, stream: AsyncIterator[bytes], boundary: bytes,
                   context: StowRequest) -> _Run:
        """Every part's outcome in order, and what was wrong with the framing (or None)."""
        parser = multipart.MultipartParser(boundary)
        outcomes: list[PartOutcome] = []
        completed = refused_types = 0
        pending: list[asyncio.Task[PartOutcome]] = []
        current: _Part | None = None
        received = 0
        framing: str | None = None

        async def finish_part(part: _Part) -> None:
            nonlocal completed, refused_types
            completed += 1
            refused_types += 0 if part.accepted else 1
            if len(pending) >= self.in_flight:
                outcomes.append(await pending.pop(0))
            pending.append(asyncio.create_task(self._store(part, context)))

        def on_events(events: list[multipart.Event]) -> list[_Part]:
            nonlocal current
            done: list[_Part] = []
            for event in events:
                if isinstance(event, multipart.PartStart):
                    content_type = event.headers.get("content-type")
                    current = _Part(event.index, content_type,
                                    PartBuffer(self.temp_folder, self.memory_limit,
                                               self.budget),
                                    _accepted(content_type))
                elif isinstance(event, multipart.PartData):
                    assert current is not None
                    if current.accepted:
                        current.buffer.write(event.data)
                    else:
                        current.buffer.size += len(event.data)
                elif isinstance(event, multipart.PartEnd):
                    assert current is not None
                    done.append(current)
                    current = None
            return done

        try:
            try:
                async for chunk in stream:
                    received += len(chunk)
                    for part in on_events(parser.feed(chunk)):
                        await finish_part(part)
                events, ending = parser.finish()
                for part in on_events(events):
                    await finish_part(part)
            except multipart.FramingError as exc:
                ending, framing = multipart.Ending.TRUNCATED, str(exc)
            if ending is multipart.Ending.NO_PARTS:
                framing = ("the body is empty" if received == 0 else
                           "the body holds no part delimited by the Content-Type's boundary")
            elif ending is multipart.Ending.TRUNCATED:
                framing = framing or "the body ends inside a part (no delimiter after it)"
                if current is not None:
                    ids = read_identifiers(current.buffer.prefix)
                    current.buffer.discard()
                    outcomes.append(self._failed(current.index, ids,
                                                 stow_response.CANNOT_UNDERSTAND,
                                                 f"incomplete part, not stored: {framing}"))
                    current = None
            elif ending is multipart.Ending.UNCLOSED:
                log.info("STOW-RS body without its close delimiter; its parts were complete")
            while pending:
                outcomes.append(await pending.pop(0))
        finally:
            if current is not None:
                current.buffer.discard()
            if pending:  # the client went away: let the stores finish, then drop them
                await asyncio.wait(pending)
        outcomes.sort(key=lambda o: o.index)
        return _Run(outcomes, framing, completed, refused_types)

    # --- one part --------------------------------------------------------------------------

    @staticmethod
    def _failed(index: int, ids: Identifiers, reason: int, message: str,
                quarantine_id: str | None = None) -> PartOutcome:
        return PartOutcome(index, False, ids.sop_class_uid, ids.sop_instance_uid,
                           ids.study_instance_uid, ids.series_instance_uid,
                           failure_reason=reason, message=message, quarantine_id=quarantine_id)

    async def _store(self, part: _Part, context: StowRequest) -> PartOutcome:
        try:
            return await self._store_part(part, context)
        except Exception:  # one part's surprise must not cost the others their outcome
            log.exception("STOW-RS part %d: unexpected error", part.index + 1)
            return self._failed(part.index, Identifiers(), stow_response.PROCESSING_FAILURE,
                                "an unexpected error in the archive (see the API's log)")
        finally:
            part.buffer.discard()

    async def _store_part(self, part: _Part, context: StowRequest) -> PartOutcome:
        buffer = part.buffer
        if not part.accepted:
            return self._failed(part.index, Identifiers(), stow_response.CANNOT_UNDERSTAND,
                                f"part type {part.content_type} not accepted: only "
                                "application/dicom")
        ids = read_identifiers(buffer.prefix)
        if buffer.size == 0:
            return self._failed(part.index, ids, stow_response.CANNOT_UNDERSTAND,
                                "the part is empty")
        if context.study is not None and ids.study_instance_uid != context.study:
            found = ids.study_instance_uid or "none could be read"
            return self._failed(part.index, ids, stow_response.DATASET_MISMATCH,
                                f"Study Instance UID {found} is not the study of the URL "
                                f"({context.study}); not stored")
        try:
            async with self._store_slots():
                started = time.time()
                answer = await self.orthanc.store_instance(buffer.body(), buffer.size)
        except OrthancUnreachable as exc:
            log.warning("STOW-RS part %d: %s", part.index + 1, exc)
            return self._failed(part.index, ids, stow_response.OUT_OF_RESOURCES,
                                "Orthanc is not reachable right now; send it again later")
        except OrthancHttpError as exc:
            # The gate may refuse with an error answer (bookworm: 400) after quarantining.
            return self._quarantined(part, ids) or self._refused(part, ids, exc, context)
        return self._answered(part, ids, answer, started)

    def _quarantined(self, part: _Part, ids: Identifiers) -> PartOutcome | None:
        """The part's outcome when the gate put its bytes in the quarantine, else None."""
        sha = part.buffer.sha256
        try:
            entry = spool.read_entry(self.quarantine_folder, sha)
        except (ValueError, OSError) as exc:
            log.warning("quarantine entry %s cannot be read: %s", sha, exc)
            return None
        if entry is None:
            return None
        reasons = entry.meta.get("reasons")
        codes = {r.get("code") for r in reasons if isinstance(r, Mapping)} \
            if isinstance(reasons, list) else set()
        failure = (stow_response.CANNOT_UNDERSTAND if codes & _NOT_A_DATA_SET
                   else stow_response.DATASET_MISMATCH)
        return self._failed(part.index, ids, failure,
                            f"quarantined as {sha[:12]}: {_reasons_text(reasons)}",
                            quarantine_id=sha)

    def _maybe_repaired(self, started: float) -> bool:
        """Whether the gate may have written a repair record since ``started``: it writes each
        by a rename into :attr:`repaired_folder`, which sets the folder's mtime. One stat
        instead of hashing every stored part; the kernel's file times lag the clock by a
        tick at most, :data:`REPAIR_CLOCK_SLACK` covers that."""
        try:
            changed = os.stat(self.repaired_folder).st_mtime
        except FileNotFoundError:
            return False
        except OSError:
            return True
        return changed >= started - REPAIR_CLOCK_SLACK

    def _answered(self, part: _Part, ids: Identifiers, answer: httpx.Response,
                  started: float) -> PartOutcome:
        try:
            body = answer.json() if answer.content else {}
        except ValueError:
            body = None
        status = body.get("Status") if isinstance(body, dict) else None
        if status in ("Success", "AlreadyStored"):
            repaired = _read_json(self.repaired_folder / f"{part.buffer.sha256}.json") \
                if self._maybe_repaired(started) else None
            if repaired is not None:
                return PartOutcome(part.index, True, ids.sop_class_uid, ids.sop_instance_uid,
                                   ids.study_instance_uid, ids.series_instance_uid,
                                   warning_reason=stow_response.COERCED,
                                   message="stored after a lossless repair: "
                                           + _reasons_text(repaired.get("reasons")))
            return PartOutcome(part.index, True, ids.sop_class_uid, ids.sop_instance_uid,
                               ids.study_instance_uid, ids.series_instance_uid,
                               message="already stored" if status == "AlreadyStored" else "")
        if body == {}:  # the gate quarantined it (both platforms answer an empty object)
            sha = part.buffer.sha256
            return self._quarantined(part, ids) or self._failed(
                part.index, ids, stow_response.DATASET_MISMATCH,
                f"refused by the ingest gate, but its quarantine entry {sha[:12]} is not there")
        log.error("STOW-RS part %d: Orthanc answered %s", part.index + 1, answer.text[:300])
        return self._failed(part.index, ids, stow_response.PROCESSING_FAILURE,
                            "Orthanc gave an answer the archive does not understand")

    def _refused(self, part: _Part, ids: Identifiers, exc: OrthancHttpError,
                 context: StowRequest) -> PartOutcome:
        if exc.status >= 500:
            log.warning("STOW-RS part %d: %s", part.index + 1, exc)
            return self._failed(part.index, ids, stow_response.OUT_OF_RESOURCES,
                                "the archive could not store it right now (Orthanc failed); "
                                "send it again later")
        if exc.status == 400 or exc.orthanc_status == ORTHANC_BAD_FILE_FORMAT:
            code = REASON_REFUSED if ids.looks_like_dicom else REASON_NOT_DICOM
            words = (f"Orthanc cannot read it as DICOM: {exc.message}" if ids.looks_like_dicom
                     else "not a DICOM instance")
            kept = self._keep(part, ids, code, words, context)
            return self._failed(part.index, ids, stow_response.CANNOT_UNDERSTAND,
                                words + (f"; kept in the quarantine as {kept[:12]}" if kept
                                         else ""), quarantine_id=kept)
        log.warning("STOW-RS part %d: %s", part.index + 1, exc)
        return self._failed(part.index, ids, stow_response.PROCESSING_FAILURE,
                            f"Orthanc refused it ({exc.status})")

    def _keep(self, part: _Part, ids: Identifiers, code: str, message: str,
              context: StowRequest) -> str | None:
        """What Orthanc cannot parse never reaches the gate: keep it in the quarantine here."""
        if part.buffer.size > QUARANTINE_COPY_LIMIT:
            log.error("STOW-RS part %d: %d bytes Orthanc cannot read, too large to quarantine",
                      part.index + 1, part.buffer.size)
            return None
        meta = {"tenant": self.tenant, "transport": "stow",
                "remote": {"ip": context.client_ip} if context.client_ip else {},
                "reasons": [{"code": code, "tag": None, "message": message}],
                "sop_class_uid": ids.sop_class_uid, "sop_instance_uid": ids.sop_instance_uid,
                "study_instance_uid": ids.study_instance_uid,
                "series_instance_uid": ids.series_instance_uid,
                "transfer_syntax": ids.transfer_syntax}
        try:
            return spool.write(self.quarantine_folder, part.buffer.read_all(), meta)
        except (OSError, ValueError) as exc:
            log.error("STOW-RS part %d: could not be quarantined: %s", part.index + 1, exc)
            return None

    # --- the answer ------------------------------------------------------------------------

    def _response(self, run: _Run, context: StowRequest,
                  answer_format: stow_response.Format) -> tuple[Response, list[str]]:
        """The answer, and the quarantine entries whose origin is to be recorded."""
        outcomes, framing = run.outcomes, run.framing
        dataset = stow_response.response_dataset(outcomes, context.base_url, context.study)
        status = stow_response.status_of(outcomes)
        if answer_format == "xml":
            response = Response(stow_response.to_xml(dataset), status_code=status,
                                media_type=stow_response.DICOM_XML)
        else:
            body = json.dumps(dataset, ensure_ascii=False, separators=(",", ":"))
            response = Response(body.encode("utf-8"), status_code=status,
                                media_type=stow_response.DICOM_JSON)
        noted = [o for o in outcomes if not o.stored or o.warned]
        origins: list[str] = []
        for n, outcome in enumerate(noted):
            if outcome.quarantine_id is not None:
                origins.append(outcome.quarantine_id)
            header = stow_response.warning_header(outcome)
            log.warning("STOW-RS from %s: %s", context.client_ip or "?", header)
            if n < MAX_WARNINGS:
                if len(header) > MAX_WARNING_TEXT:
                    header = header[:MAX_WARNING_TEXT - 4].rstrip("\\") + '..."'
                response.headers.append("Warning", header)
        if len(noted) > MAX_WARNINGS:
            response.headers.append("Warning", stow_response.warning_text(
                f"{len(noted) - MAX_WARNINGS} more parts failed or were stored with a warning: "
                "see FailedSOPSequence and ReferencedSOPSequence"))
        if framing:
            response.headers.append("Warning", stow_response.warning_text(framing))
            log.warning("STOW-RS from %s: %s", context.client_ip or "?", framing)
        stored = sum(1 for o in outcomes if o.stored)
        log.info("STOW-RS from %s: %d part(s), %d stored, answered %d",
                 context.client_ip or "?", len(outcomes), stored, status)
        return response, origins


def router(service: StowService,
           identify: Callable[[Request], Principal | None] | None = None) -> APIRouter:
    """``POST {root}/studies`` and ``POST {root}/studies/{study}`` (the door routes them here,
    after its check); ``identify`` says who sent a request, for its audit rows."""
    api = APIRouter(prefix=service.root, tags=["dicom-web"])
    responses: dict[int | str, dict[str, Any]] = {
        200: {"description": "Every instance stored (PS3.18 10.5.3)",
              "content": {stow_response.DICOM_JSON: {}, stow_response.DICOM_XML: {}}},
        202: {"description": "Some stored, some failed or stored with a warning; a `Warning` "
                             "header per such part says why"},
        400: {"description": "Empty body, broken multipart framing, no part, bad study UID"},
        406: {"description": "The Accept header allows neither DICOM JSON nor DICOM XML"},
        409: {"description": "Nothing stored; FailedSOPSequence says why for each part"},
        415: {"description": "Not multipart/related of application/dicom parts"},
    }
    extra = {"requestBody": {"required": True, "content": {
        "multipart/related": {"schema": {"type": "string", "format": "binary"}}}}}

    async def sender(request: Request) -> Principal | None:
        return None if identify is None else await asyncio.to_thread(identify, request)

    @api.post("/studies", responses=responses, response_class=Response, openapi_extra=extra,
              summary="STOW-RS: store instances (multipart/related; type=application/dicom)")
    async def store(request: Request) -> Response:
        return await service.handle(request, None, await sender(request))

    @api.post("/studies/{study}", responses=responses, response_class=Response,
              openapi_extra=extra,
              summary="STOW-RS: store instances of one study; others fail with 0xA900")
    async def store_study(request: Request, study: str) -> Response:
        return await service.handle(request, study, await sender(request))

    return api
