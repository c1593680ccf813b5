"""WADO-RS and QIDO-RS (DICOM PS3.18 10.4 and 10.6): latency percentiles and throughput.

WADO-RS: study metadata, series metadata of a 1000-instance series, single frames (native,
as stored) and rendered frames (JPEG), each with 1 client and with several concurrent ones.
QIDO-RS: typical searches of a study list, run one after another on an index of 1,000 and then
10,000 studies. Every request of a run is timed from its start to the last byte of its answer.

Query values are kept to characters that reach Orthanc 1.10 unchanged (no ``^``, no
percent-encoding): that version hands them to the DICOMweb plugin still encoded, which is why
our archive's API service has a decoding QIDO route for the viewer (``/api/dicom-web``).

Ours vs vanilla goes through our door. What the door and the API service cost is measured on
our archive alone (issue 6), *door* against *direct* (its Orthanc's internal port with the
internal credential): WADO-RS series metadata and single frames (target ≤ 1.05× direct), and
QIDO-RS through the API's decoding route against DICOMweb direct (≤ 1.2×); a search by a
Chinese patient name, which only the API's route can answer, is compared with the direct ASCII
search by PatientID that finds as many studies (two).

What authentication and authorization cost (issue 8) is measured the same way, *secured*
(ours as shipped, every request with the administrator's API key) against *open* (a second
archive with ``Archive.Security.Enabled`` false): single frames with 1 and 8 clients and series
metadata with 1 (target ≤ 1.05× open, throughput ≥ 1/1.05).
"""

from __future__ import annotations

import calendar
import random
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final, Literal

from . import data as bench_data
from .fleet import FleetFailed, run_workers, split
from .ingest import load
from .results import (API_QIDO_RATIO, DOOR_RATE_RATIO, DOOR_RATIO, SECURITY_RATE_RATIO,
                      SECURITY_RATIO, Better, MetricSpec, Target)
from .runner import CaseFailed
from .servers import DIRECT, DOOR, OPEN, OURS, SECURED, VANILLA, Server

DICOMWEB: Final = "/dicom-web"
VIEWER_QIDO: Final = "/api/dicom-web"
TIMEOUT: Final = 600.0

Route = Literal["dicom-web", "viewer"]

METADATA: Final = "application/dicom+json"
FRAME: Final = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'
RENDERED: Final = "image/jpeg"


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _latency_specs(throughput: bool, p95: bool = True, ratio: Target | None = None,
                   rate_ratio: Target | None = None) -> tuple[MetricSpec, ...]:
    specs = [MetricSpec("latency p50", "ms", Better.LOWER, "median", ratio_target=ratio)]
    if p95:
        specs.append(MetricSpec("latency p95", "ms", Better.LOWER, "p95"))
    if throughput:
        specs.append(MetricSpec("throughput", "req/s", Better.HIGHER, ratio_target=rate_ratio))
    return tuple(specs)


@dataclass(frozen=True)
class Get:
    """One request: a path below the server's URL, its Accept, and Accept-Encoding if not
    the client's default (``gzip, deflate``, as browsers and dicomweb-client send)."""

    path: str
    accept: str
    encoding: str | None = None


def _timed_gets(server: Server, requests: Sequence[Get],
                clients: int) -> Mapping[str, Sequence[float]]:
    jobs = [{"kind": "get", "timeout": TIMEOUT, **server.client_job(),
             "requests": [{"url": server.url + g.path, "accept": g.accept,
                           "encoding": g.encoding} for g in part]}
            for part in split(list(requests), clients)]
    try:
        outcome = run_workers(jobs, timeout=TIMEOUT)
    except FleetFailed as error:
        raise CaseFailed(str(error)) from error
    return {"latency p50": [v * 1000 for v in outcome.latencies],
            "latency p95": [v * 1000 for v in outcome.latencies],
            "throughput": [outcome.count / outcome.elapsed]}


# --- WADO-RS --------------------------------------------------------------------------------


DOOR_WADO: Final = "Door overhead (WADO-RS)"
DOOR_QIDO: Final = "QIDO-RS through the API service"
SECURITY: Final = "Security: authentication on against off"


@dataclass(frozen=True)
class SelfComparison:
    """Ours against another view or build of ours: its case keys' prefix, its scenario and the
    ratio targets of latency p50 and of throughput."""

    prefix: str
    scenario: str
    ratio: Target
    rate_ratio: Target


SELF_COMPARISONS: Final[Mapping[tuple[str, str], SelfComparison]] = {
    (DOOR, DIRECT): SelfComparison("door", DOOR_WADO, DOOR_RATIO, DOOR_RATE_RATIO),
    (SECURED, OPEN): SelfComparison("security", SECURITY, SECURITY_RATIO, SECURITY_RATE_RATIO),
}


@dataclass(frozen=True)
class WadoCase:
    kind: str
    what: str
    clients: int
    requests: tuple[Get, ...]
    scenario: str = "WADO-RS"
    repeatable: bool = True
    warmup: bool = True
    sides: tuple[str, str] = (OURS, VANILLA)

    @property
    def key(self) -> str:
        comparison = SELF_COMPARISONS.get(self.sides)
        prefix = "wado" if comparison is None else comparison.prefix
        return f"{prefix}/{slug(self.kind)}/c{self.clients}"

    @property
    def label(self) -> str:
        who = "1 client" if self.clients == 1 else f"{self.clients} clients"
        return f"{self.kind}, {who} ({self.what}; {len(self.requests)} req/run)"

    @property
    def specs(self) -> Sequence[MetricSpec]:
        comparison = SELF_COMPARISONS.get(self.sides)
        if comparison is not None:
            return _latency_specs(throughput=True, ratio=comparison.ratio,
                                  rate_ratio=comparison.rate_ratio)
        return _latency_specs(throughput=True)

    def run(self, server: Server) -> Mapping[str, Sequence[float]]:
        return _timed_gets(server, self.requests, self.clients)


def wado_cases(study: bench_data.DataSet, series: bench_data.DataSet, *, metadata_requests: int,
               frame_requests: int, rendered_requests: int,
               metadata_clients: Sequence[int], frame_clients: Sequence[int],
               seed: int = 7, door: bool = False) -> list[WadoCase]:
    """Cases over ``study`` (its study metadata) and ``series`` (a long series).

    ``door``: the door-overhead cases instead (series metadata and native frames, door against
    direct), with the same requests as the ours/vanilla ones."""
    if door:
        return self_cases(series, (DOOR, DIRECT), metadata_requests=metadata_requests,
                          frame_requests=frame_requests, metadata_clients=metadata_clients,
                          frame_clients=frame_clients, seed=seed)
    rng = random.Random(seed)
    series_root = _series_root(series)
    study_meta = Get(f"{DICOMWEB}/studies/{study.study_uids[0]}/metadata", METADATA)
    series_meta = Get(f"{series_root}/metadata", METADATA)

    def frames(count: int, suffix: str, accept: str,
               encoding: str | None = None) -> tuple[Get, ...]:
        return _frames(rng, series, count, suffix, accept, encoding)

    out = []
    for clients in metadata_clients:
        out.append(WadoCase("study metadata", f"{study.count} instances", clients,
                            (study_meta,) * metadata_requests))
        out.append(WadoCase("series metadata", f"{series.count}-instance series", clients,
                            (series_meta,) * metadata_requests))
    for clients in frame_clients:
        out.append(WadoCase("frame", "native 512² 16-bit, gzip", clients,
                            frames(frame_requests, "", FRAME)))
        out.append(WadoCase("frame, no gzip", "native 512² 16-bit, Accept-Encoding: identity",
                            clients, frames(frame_requests, "", FRAME, "identity")))
        out.append(WadoCase("rendered frame", "JPEG of 512² 16-bit", clients,
                            frames(rendered_requests, "/rendered", RENDERED)))
    return out


def _series_root(series: bench_data.DataSet) -> str:
    return f"{DICOMWEB}/studies/{series.study_uids[0]}/series/{series.series_uids[0]}"


def _frames(rng: random.Random, series: bench_data.DataSet, count: int, suffix: str,
            accept: str, encoding: str | None = None) -> tuple[Get, ...]:
    """``count`` first frames of instances of ``series`` picked at random (with repeats)."""
    root = _series_root(series)
    picks = [rng.choice(series.sop_uids) for _ in range(count)]
    return tuple(Get(f"{root}/instances/{uid}/frames/1{suffix}", accept, encoding)
                 for uid in picks)


def self_cases(series: bench_data.DataSet, sides: tuple[str, str], *, metadata_requests: int,
               frame_requests: int, metadata_clients: Sequence[int],
               frame_clients: Sequence[int], seed: int = 7) -> list[WadoCase]:
    """Ours against itself (:data:`SELF_COMPARISONS`: door against direct, security on against
    off): series metadata of ``series`` and its native frames, the ratio targets on each."""
    comparison = SELF_COMPARISONS[sides]
    rng = random.Random(seed)
    series_meta = Get(f"{_series_root(series)}/metadata", METADATA)
    out = [WadoCase("series metadata", f"{series.count}-instance series", clients,
                    (series_meta,) * metadata_requests, comparison.scenario, sides=sides)
           for clients in metadata_clients]
    for clients in frame_clients:
        out.append(WadoCase("frame", "native 512² 16-bit", clients,
                            _frames(rng, series, frame_requests, "", FRAME),
                            comparison.scenario, sides=sides))
    return out


# --- QIDO-RS --------------------------------------------------------------------------------


@dataclass(frozen=True)
class QidoCase:
    """Searches of one kind on an index of ``level`` studies.

    ``route`` ``viewer``: the first side asks our API's decoding route (``/api/dicom-web``),
    the second plain DICOMweb. ``baseline_paths``, when given, are what the second side asks
    instead of ``paths`` (the Chinese-name search against an ASCII one with as many answers).
    """

    query: str
    level: int
    paths: tuple[str, ...]  # below the QIDO-RS root
    route: Route = "dicom-web"
    scenario: str = "QIDO-RS"
    repeatable: bool = True
    warmup: bool = True
    sides: tuple[str, str] = (OURS, VANILLA)
    baseline_paths: tuple[str, ...] | None = None
    ratio_target: Target | None = None
    extra: str = ""

    @property
    def comparable(self) -> bool:
        """Both sides run the same searches (not so for the Chinese-name case)."""
        return self.baseline_paths is None

    @property
    def key(self) -> str:
        suffix = "/viewer-route" if self.route == "viewer" else ""
        if self.sides == (DOOR, DIRECT):
            suffix = "/api-vs-direct"
        return f"qido/{self.level}/{slug(self.query)}{suffix}"

    @property
    def label(self) -> str:
        via = f", {self.sides[0]} via /api/dicom-web" if self.route == "viewer" else ""
        return f"{self.query} @ {self.level:,} studies{via}{self.extra}"

    @property
    def specs(self) -> Sequence[MetricSpec]:
        specs = _latency_specs(throughput=False, p95=True, ratio=self.ratio_target)
        return specs if self.comparable else tuple(replace(s, comparable=False) for s in specs)

    def root(self, server: Server) -> str:
        first = server.name == self.sides[0]
        return VIEWER_QIDO if self.route == "viewer" and first else DICOMWEB

    def paths_for(self, server: Server) -> tuple[str, ...]:
        if self.baseline_paths is not None and server.name == self.sides[1]:
            return self.baseline_paths
        return self.paths

    def run(self, server: Server) -> Mapping[str, Sequence[float]]:
        root = self.root(server)
        samples = _timed_gets(server, [Get(root + p, METADATA) for p in self.paths_for(server)],
                              1)
        return {k: v for k, v in samples.items() if k != "throughput"}


def api_cases(level: int, paths: Mapping[str, tuple[str, ...]],
              zh: Sequence[tuple[str, str]] = ()) -> list[QidoCase]:
    """QIDO-RS through the API service against DICOMweb direct, on our archive alone.

    Every ASCII kind of :func:`qido_paths` (target ≤ 1.2× direct); with ``zh`` (Chinese
    PatientName, the PatientID of the same patient), the search by name through the API against
    the direct search by ID: both find that patient's two studies.
    """
    sides = (DOOR, DIRECT)
    out = [QidoCase(kind, level, paths[kind], "viewer", DOOR_QIDO, sides=sides,
                    ratio_target=API_QIDO_RATIO) for kind in QIDO_KINDS]
    if zh:
        names = tuple(f"/studies?PatientName={urllib.parse.quote(name, safe='')}"
                      for name, _ in zh)
        ids = tuple(f"/studies?PatientID={patient_id}" for _, patient_id in zh)
        out.append(QidoCase("PatientName 中文 (Chinese)", level, names, "viewer", DOOR_QIDO, sides=sides,
                            baseline_paths=ids,
                            extra="; direct: the same patients' PatientID (direct cannot "
                                  "search a Chinese name)"))
    return out


def qido_paths(level: int, study_uids: Sequence[str], count: int,
               seed: int = 11) -> dict[str, tuple[str, ...]]:
    """``count`` searches of each kind over studies 0 … ``level``-1 of the tiny population."""
    rng = random.Random(seed * 100003 + level)
    patients = max(1, level // 2)

    def month() -> str:
        year, mon = rng.randint(2015, 2024), rng.randint(1, 12)
        last = calendar.monthrange(year, mon)[1]
        return f"{year}{mon:02d}01-{year}{mon:02d}{last:02d}"

    def one(kind: str) -> str:
        n, p = rng.randrange(level), rng.randrange(patients)
        if kind == "study list page (limit 100)":
            return "/studies?limit=100&offset=0&includefield=00081030,00080060"
        if kind == "PatientID":
            return f"/studies?PatientID={bench_data.tiny_patient(n)[1]}"
        if kind == "PatientName prefix*":
            return f"/studies?PatientName=BENCH*P{p // 10:04d}*"
        if kind == "StudyDate month (limit 100)":
            return f"/studies?StudyDate={month()}&limit=100"
        if kind == "AccessionNumber":
            return f"/studies?AccessionNumber={bench_data.tiny_accession(n)}"
        if kind == "ModalitiesInStudy (limit 100)":
            modality = rng.choice(bench_data.TINY_MODALITIES)
            return f"/studies?ModalitiesInStudy={modality}&limit=100"
        if kind == "series of a study":
            return f"/studies/{study_uids[n]}/series"
        raise ValueError(kind)

    return {kind: tuple(one(kind) for _ in range(count)) for kind in QIDO_KINDS}


QIDO_KINDS: Final = ("study list page (limit 100)", "PatientID", "PatientName prefix*",
                     "StudyDate month (limit 100)", "AccessionNumber",
                     "ModalitiesInStudy (limit 100)", "series of a study")


def answer_counts(case: QidoCase, servers: Mapping[str, Server]) -> dict[str, int]:
    """How many matches the first search of ``case`` finds on each of its sides (a sanity
    check)."""
    out = {}
    for name in case.sides:
        server = servers[name]
        response = server.get(case.root(server) + case.paths_for(server)[0],
                              headers={"Accept": METADATA})
        body: Any = response.json() if response.status_code == 200 and response.content else []
        out[name] = len(body) if isinstance(body, list) else -1
    return out


@dataclass(frozen=True)
class LoadCase:
    """Storing the tiny studies that fill the index (once: it cannot be repeated)."""

    data: bench_data.DataSet
    level: int
    parallel: int = 4
    scenario: str = "QIDO-RS"
    repeatable: bool = False
    warmup: bool = False
    sides: tuple[str, str] = (OURS, VANILLA)

    @property
    def key(self) -> str:
        return f"qido/{self.level}/load"

    @property
    def label(self) -> str:
        return (f"store {self.data.count:,} tiny studies (storescu ×{self.parallel}) "
                f"→ {self.level:,} studies")

    @property
    def specs(self) -> Sequence[MetricSpec]:
        return (MetricSpec("ingest time", "s", Better.LOWER),
                MetricSpec("images/s", "images/s", Better.HIGHER))

    def run(self, server: Server) -> Mapping[str, Sequence[float]]:
        seconds = load(server, self.data, self.parallel)
        return {"ingest time": [seconds], "images/s": [self.data.count / seconds]}
