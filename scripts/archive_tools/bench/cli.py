"""The ``scripts/bench`` command: run the scenarios, write the results, print the table.

Run it through ``scripts/bench``, which puts it in a private network namespace with only
loopback (Orthanc 1.10 cannot bind 127.0.0.1 alone). Every process it starts is stopped when it
ends, also on error, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import shutil
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Final

import requests

from testkit.devtools import Chromium, DevToolsError
from testkit.orthanc_process import REPO, StartupFailed
from testkit.stack import Stack
from . import dicomweb, ingest, machine, plan as plans, profiling, report, viewer
from . import data as bench_data
from .data import DataCache, DataSet, describe
from .fleet import FleetFailed
from .results import (SECURITY_RATIO, SLOWER_THAN, MetricResult, build_document, results_table,
                      validate_document)
from .runner import Case, CaseFailed, Runner
from .servers import (DIRECT, DOOR, OPEN, OURS, SECURED, STORES, VANILLA, Server, ServerError,
                      door_and_direct, open_stack, ours_stack, start_ours, start_vanilla)
from .servers import vanilla as vanilla_process

log = logging.getLogger(__name__)

PROG: Final = "bench"
BENCHMARKS: Final = REPO / "benchmarks"
RESULTS: Final = BENCHMARKS / "results"
QUICK_RESULTS: Final = BENCHMARKS / "tmp" / "results-quick"
CACHE: Final = BENCHMARKS / "tmp" / "data"
RUNS: Final = BENCHMARKS / "tmp"
OHIF_DIST: Final = REPO / ".cache" / "ohif" / "dist"
OHIF_VERSION: Final = REPO / "ohif-config" / "OHIF_VERSION"
#: Failures that void a scenario but not the run: the others still run and are reported.
#: Profiles cover at least this many seconds of the case (run again and again).
PROFILE_SECONDS: Final = 8.0
SCENARIO_ERRORS: Final = (CaseFailed, ServerError, FleetFailed, DevToolsError, StartupFailed,
                          requests.RequestException, OSError, TimeoutError)


class Interrupted(BaseException):
    """SIGTERM or SIGHUP: unwind like Ctrl-C, stopping every server."""


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    raise Interrupted(signal.Signals(signum).name)


def _scenarios(text: str) -> list[str]:
    names = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [n for n in names if n not in plans.SCENARIOS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown scenario(s) {', '.join(unknown)}; "
                                         f"choose from {', '.join(plans.SCENARIOS)}")
    return names


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Benchmark our archive against vanilla Orthanc, side by side: "
        "DIMSE and STOW-RS ingest, WADO-RS, QIDO-RS and the OHIF viewer; and ours against "
        "itself: through the door against direct, security on against off. Writes "
        "benchmarks/results/<time>.json, latest.json and latest.md, and prints a table.")
    parser.add_argument("--quick", action="store_true",
                        help="small sizes and one repetition: a smoke run of a few minutes "
                        f"(results go to {QUICK_RESULTS.relative_to(REPO)} unless --results)")
    parser.add_argument("--only", type=_scenarios, metavar="LIST",
                        help=f"comma-separated scenarios to run ({','.join(plans.SCENARIOS)})")
    parser.add_argument("--skip", type=_scenarios, default=[], metavar="LIST",
                        help="comma-separated scenarios to leave out")
    parser.add_argument("--reps", type=int, metavar="N",
                        help="A/B repetitions of every case (default: per scenario, see plan.py)")
    parser.add_argument("--results", type=Path, metavar="DIR",
                        help=f"results folder (default: {RESULTS.relative_to(REPO)})")
    parser.add_argument("--cache", type=Path, default=CACHE, metavar="DIR",
                        help="where generated instances are kept between runs "
                        "(default: %(default)s)")
    parser.add_argument("--profile", choices=("auto", "always", "never"), default="auto",
                        help="py-spy our Orthanc during the worst case: when ours is >10%% "
                        "slower (auto, default), always, or never")
    parser.add_argument("--no-recheck", action="store_true",
                        help="do not measure again the cases where ours looks >10%% slower")
    parser.add_argument("--keep-data", action="store_true",
                        help="keep both servers' data folders after the run")
    parser.add_argument("--note", action="append", default=[], metavar="TEXT",
                        help="a note for the results (e.g. what else ran on the machine)")
    parser.add_argument("--report", type=Path, metavar="JSON",
                        help="run nothing: print the table and write the .md of a results file")
    parser.add_argument("--explain", type=Path, metavar="MD",
                        help="a Markdown file explaining the results (slow spots, profiles), "
                        "kept in the results as 'analysis'; with --report, added to that file")
    parser.add_argument("--without-dicom-audit", action="store_true",
                        help="run ours with Archive.Dicom.Audit.Enabled false (no verbose Orthanc "
                             "log): what authentication alone costs, against the shipped default")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    if args.reps is not None and args.reps < 1:
        parser.error("--reps must be at least 1")
    return args


@dataclass
class Run:
    """Everything one benchmark run holds, passed to each scenario."""

    plan: plans.Plan
    workdir: Path
    results_dir: Path
    stamp: str
    cache: DataCache
    stack: ExitStack
    servers: dict[str, Server] = field(default_factory=dict)
    #: The archives of ours, by server name (ours; open when the security cases run).
    stacks: dict[str, Stack] = field(default_factory=dict)
    runner: Runner | None = None
    sets: dict[str, DataSet] = field(default_factory=dict)
    loaded: dict[str, set[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    _chromium: Chromium | None = field(default=None, init=False)

    @property
    def measure(self) -> Runner:
        assert self.runner is not None
        return self.runner

    def chromium(self) -> Chromium:
        """The run's one headless Chromium (the viewer and the security cases share it)."""
        if self._chromium is None:
            self._chromium = self.stack.enter_context(
                Chromium(self.workdir / "chromium-profile", self.workdir / "chromium.log"))
        return self._chromium

    def load(self, data: DataSet, stores: Sequence[str] = STORES) -> None:
        """Store ``data`` into these archives (ours and vanilla) unless it is there already."""
        for name in stores:
            if data.name in self.loaded.setdefault(name, set()):
                continue
            seconds = ingest.load(self.servers[name], data)
            log.info("loaded %s into %s: %d instances in %.1f s", data.name, name, data.count,
                     seconds)
            self.loaded[name].add(data.name)

    def unload(self, data: DataSet) -> None:
        for name in STORES:
            self.servers[name].delete_studies(data.study_uids)
            self.loaded.setdefault(name, set()).discard(data.name)


# --- data ---------------------------------------------------------------------------------


def make_data(run: Run, scenarios: Sequence[str]) -> None:
    """Generate (or find in the cache) every set the chosen scenarios need, before any server
    runs, so generating never competes with a measurement."""
    p, cache = run.plan, run.cache
    if {"dimse", "stow", "wado", "viewer", "security"} & set(scenarios):
        run.sets["ct"] = cache.ct(f"ct-{p.ct_slices}", p.ct_slices)
    if {"dimse", "stow"} & set(scenarios):
        run.sets["dx"] = cache.dx(f"dx-{p.dx_count}", p.dx_count)
    if {"wado", "door", "security"} & set(scenarios):
        run.sets["series"] = cache.ct(f"ct-{p.series_slices}-series", p.series_slices, seed=5)
    if "qido" in scenarios:
        low, high = p.tiny_levels
        run.sets["tiny-low"] = cache.tiny(f"tiny-0-{low}", 0, low)
        run.sets["tiny-high"] = cache.tiny(f"tiny-{low}-{high - low}", low, high - low)
        run.sets["tiny-zh"] = cache.tiny_zh(f"tiny-zh-{p.zh_patients}", p.zh_patients)


# --- scenarios ----------------------------------------------------------------------------


def run_ingest(run: Run, tools: Sequence[ingest.Tool]) -> None:
    small, large = run.sets["ct"], run.sets["dx"]
    run.unload(small)
    try:
        for case in ingest.cases(small, large, run.plan.parallel, tools, run.plan.stow_batch):
            reps = run.plan.reps_small if case.size == "small" else run.plan.reps_large
            run.measure.measure(case, reps)
    finally:
        run.unload(small)
        run.unload(large)


def run_dimse(run: Run) -> None:
    run_ingest(run, ("storescu", "storescu-nagle", "pynetdicom"))


def run_stow(run: Run) -> None:
    run_ingest(run, ("stow",))


def run_wado(run: Run) -> None:
    p = run.plan
    study, series = run.sets["ct"], run.sets["series"]
    run.load(study)
    run.load(series)
    for case in dicomweb.wado_cases(study, series, metadata_requests=p.metadata_requests,
                                    frame_requests=p.frame_requests,
                                    rendered_requests=p.rendered_requests,
                                    metadata_clients=p.metadata_clients,
                                    frame_clients=p.frame_clients):
        run.measure.measure(case, p.reps_read)


def run_door(run: Run) -> None:
    """What the door costs: WADO-RS on our archive through the door and direct (issue 6)."""
    p = run.plan
    series = run.sets["series"]
    run.load(series)
    for case in dicomweb.wado_cases(series, series, metadata_requests=p.metadata_requests,
                                    frame_requests=p.frame_requests,
                                    rendered_requests=p.rendered_requests,
                                    metadata_clients=p.door_clients,
                                    frame_clients=p.door_clients, door=True):
        run.measure.measure(case, p.reps_read)


def _measure_qido(run: Run, case: dicomweb.QidoCase) -> None:
    counts = dicomweb.answer_counts(case, run.servers)
    results = run.measure.measure(case, run.plan.reps_read)
    if len(set(counts.values())) > 1:
        text = ("answers differ on the first search: " +
                ", ".join(f"{k} {v} matches" for k, v in counts.items()))
        for result in results:
            result.notes.append(text)


def run_qido(run: Run) -> None:
    p = run.plan
    low, high, zh = run.sets["tiny-low"], run.sets["tiny-high"], run.sets["tiny-zh"]
    api_route = run.servers[DOOR].answers(f"{dicomweb.VIEWER_QIDO}/studies?limit=1")
    if not api_route:
        run.errors.append("qido: ours answers no /api/dicom-web QIDO-RS (the API service's "
                          "decoding route): QIDO through the API is not measured")
    uids: list[str] = []
    for index, (level, data) in enumerate(zip(p.tiny_levels, (low, high))):
        run.measure.measure(dicomweb.LoadCase(data, level), 1)
        for name in STORES:
            run.loaded.setdefault(name, set()).add(data.name)
        if index == 0:
            run.load(zh)  # the Chinese-named patients, on top of the population
            run.notes.append(f"QIDO-RS: each index also holds {zh.count} studies of "
                             f"{zh.count // 2} Chinese-named patients ({zh.name})")
        uids += data.study_uids
        paths = dicomweb.qido_paths(level, uids, p.qido_queries)
        for kind in dicomweb.QIDO_KINDS:
            _measure_qido(run, dicomweb.QidoCase(kind, level, paths[kind]))
        if api_route:
            patients = [bench_data.zh_patient(k) for k in range(zh.count // 2)]
            for case in dicomweb.api_cases(level, paths, patients[:p.qido_queries]):
                _measure_qido(run, case)


def browser_cookies(stacks: Mapping[str, Stack], sides: Mapping[str, str]) -> viewer.Cookies:
    """A fresh session cookie of the test administrator for each side (side name → the name
    of the archive it is a view of) whose archive has security on; none for the others."""
    return {side: {viewer.SESSION_COOKIE: stacks[archive].session_cookie()}
            for side, archive in sides.items()
            if archive in stacks and stacks[archive].security_enabled}


def run_viewer(run: Run) -> None:
    ours = run.servers[OURS]
    if not ours.answers(viewer.ROOT + "index.html"):
        raise ServerError("ours does not serve the viewer (is OHIF installed? scripts/setup)")
    study = run.sets["ct"]
    run.load(study)
    folder = run.workdir / "ohif-vanilla"
    run.notes += viewer.publish_for_vanilla(ours, folder)
    case = viewer.ViewerCase(run.chromium(), study.study_uids[0], study.count,
                             screenshots=run.workdir,
                             cookies=browser_cookies(run.stacks, {OURS: OURS}))
    run.measure.measure(case, run.plan.reps_read)


def check_security(secured: Server, open_: Server, path: str) -> None:
    """Before measuring: ``path`` must be refused to a client without a credential on the
    secured side and answered on the open one, or the comparison would measure nothing."""
    for server, wanted in ((secured, (401,)), (open_, (200,))):
        status = requests.get(server.url + path, timeout=60).status_code
        if status not in wanted:
            raise ServerError(f"{server.name}: GET {path} without a credential answered "
                              f"{status}, not {' or '.join(map(str, wanted))}: is "
                              "Archive.Security.Enabled as the case needs it?")


def run_security(run: Run) -> None:
    """What authentication and authorization cost (issue 8): ours as shipped, every request
    with a credential, against a second archive of ours with security off; WADO-RS and the
    viewer's first image, the same data in both."""
    p = run.plan
    series, study = run.sets["series"], run.sets["ct"]
    run.load(series, (OURS, OPEN))
    cases = dicomweb.self_cases(series, (SECURED, OPEN), metadata_requests=p.metadata_requests,
                                frame_requests=p.frame_requests,
                                metadata_clients=p.security_metadata_clients,
                                frame_clients=p.security_frame_clients)
    check_security(run.servers[SECURED], run.servers[OPEN], cases[0].requests[0].path)
    for case in cases:
        run.measure.measure(case, p.reps_read)
    if not OHIF_DIST.is_dir():
        run.errors.append(f"security: the viewer's first image is not measured: no OHIF build "
                          f"at {OHIF_DIST} (scripts/setup installs it)")
        return
    for name in (SECURED, OPEN):
        if not run.servers[name].answers(viewer.ROOT + "index.html"):
            raise ServerError(f"{name} does not serve the viewer")
    run.load(study, (OURS, OPEN))
    first = viewer.ViewerCase(
        run.chromium(), study.study_uids[0], study.count, screenshots=run.workdir,
        scenario=dicomweb.SECURITY, sides=(SECURED, OPEN), prefix="security/viewer",
        ratio_target=SECURITY_RATIO,
        cookies=browser_cookies(run.stacks, {SECURED: OURS, OPEN: OPEN}))
    run.measure.measure(first, p.reps_read)


SCENARIO_FUNCTIONS: Final[dict[str, Callable[[Run], None]]] = {
    "dimse": run_dimse, "stow": run_stow, "wado": run_wado, "door": run_door, "qido": run_qido,
    "viewer": run_viewer, "security": run_security,
}


# --- profiling ------------------------------------------------------------------------------


def consistent(result: MetricResult) -> bool:
    """Ours worse in at least 3 of 4 paired runs (or in the only one): likely not noise."""
    worse, pairs = result.paired_worse()
    return pairs > 0 and worse / pairs >= 0.75


def _repeat(case: Case, server: Server) -> int:
    """Run ``case`` on ``server`` for about :data:`PROFILE_SECONDS` (at least once): how often."""
    runs = 0
    deadline = time.monotonic() + PROFILE_SECONDS
    while runs == 0 or (time.monotonic() < deadline and runs < 50):
        case.run(server)
        runs += 1
    return runs


def profile(run: Run, mode: str, limit: int = 2) -> list[dict[str, Any]]:
    runner = run.measure
    if mode == "never":
        return []
    comparable = [r for r in runner.results() if r.slowdown is not None
                  and (case := runner.case(r.case)) is not None and case.repeatable]
    comparable.sort(key=lambda r: -(r.slowdown or 0.0))
    chosen: list[tuple[MetricResult, str]] = []
    for r in comparable:
        if r.verdict == "slower" and r.case not in {c.case for c, _ in chosen}:
            worse, pairs = r.paired_worse()
            how = "consistently" if consistent(r) else "not consistently"
            chosen.append((r, f"{r.sides[0]} {((r.slowdown or 1) - 1) * 100:.0f}% slower on "
                              f"{r.spec.name}, {how}: worse in {worse} of {pairs} paired runs"))
    if mode == "always" and not chosen and comparable:
        chosen.append((comparable[0], "forced by --profile always"))
    profiles = []
    for result, reason in chosen[:limit]:
        case = runner.case(result.case)
        assert case is not None
        for program in profiled_programs(case):
            profiles.append(_profile_one(run, case, result, reason, program))
    return profiles


def profiled_programs(case: Case) -> tuple[str, ...]:
    """Our processes worth sampling for ``case``: Orthanc always; the API service too where
    the case goes through it (QIDO via /api/dicom-web; the authorization check of the security
    cases)."""
    through_api = case.scenario in (dicomweb.DOOR_QIDO, dicomweb.SECURITY)
    return ("orthanc", "api") if through_api else ("orthanc",)


def _profile_one(run: Run, case: Case, result: MetricResult, reason: str,
                 program: str) -> dict[str, Any]:
    server = run.measure.servers[case.sides[0]]
    base = run.results_dir / "profiles" / f"{run.stamp}-{dicomweb.slug(case.key)}"
    if program != "orthanc":
        base = base.with_name(f"{base.name}-{program}")
    raw, svg = base.with_suffix(".txt"), base.with_suffix(".svg")
    entry: dict[str, Any] = {"case": case.key, "metric": result.spec.name, "reason": reason,
                             "program": program, "svg": f"profiles/{svg.name}",
                             "stacks": f"profiles/{raw.name}", "pid": None,
                             "rate": profiling.RATE}
    runs = 0
    try:
        pid = entry["pid"] = server.pid(program)
        log.info("profiling %s on %s's %s (pid %d) with py-spy (%s)", case.key, server.name,
                 program, pid, reason)
        for output, output_format in ((svg, "flamegraph"), (raw, "raw")):
            with profiling.recording(pid, output, output_format):
                runs = _repeat(case, server)
    except (profiling.ProfilerMissing, CaseFailed, ServerError, OSError) as error:
        entry["note"] = f"profiling failed: {error}"
        return entry
    if not svg.exists():
        entry["svg"] = None  # py-spy writes no flame graph without a sample
    everything = profiling.Profile.parse(raw.read_text(errors="replace") if raw.exists() else "")
    active = everything.active()
    entry.update(runs=runs, samples=everything.total, busy_samples=active.total,
                 python_share=round(active.python_share(), 3),
                 heaviest_python=[vars(w) for w in active.inclusive()],
                 heaviest_self=[vars(w) for w in active.leaves()])
    if active.python_share() < 0.05 and program == "orthanc":
        entry["note"] = ("py-spy saw (almost) no Python at work in our Orthanc during this "
                         "case: the time is spent in Orthanc's C++ threads, not in our "
                         "plugin's code")
    return entry


# --- the run --------------------------------------------------------------------------------


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def software(run: Run) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in STORES:
        server = run.servers[name]
        try:
            out[name] = server.versions()
        except (ServerError, requests.RequestException) as error:
            out[name] = {"error": str(error)}
    out["tools"] = machine.tool_versions()
    out["ohif"] = OHIF_VERSION.read_text().strip() if OHIF_VERSION.exists() else None
    return out


def settings(run: Run, scenarios: Sequence[str]) -> dict[str, Any]:
    p = run.plan
    return {"scenarios": list(scenarios), "plan": {k: v for k, v in vars(p).items()},
            "slower_than": SLOWER_THAN, "servers": {
                OURS: "the whole archive as scripts/serve runs it (python -m archive_door run, "
                      "config/ as shipped: nginx door, Orthanc + DICOMweb + GDCM + Python plugin, "
                      "API service, worker), reached through its door",
                VANILLA: "same config/ and binaries without the Python plugin (and archive.json), "
                         "door or services, on its own HTTP port; ServeFolders serving the same "
                         "OHIF build",
                DOOR: "ours through its door (QIDO-RS through the API service's /api/dicom-web)",
                DIRECT: "ours' Orthanc on its internal loopback port, with the internal "
                        "credential (DICOMweb /dicom-web)",
                SECURED: "ours through its door, Archive.Security.Enabled true as shipped, "
                         "every request with the administrator's API key (Authorization: "
                         "Bearer), the browser with a session cookie",
                OPEN: "a second archive of ours, the same but Archive.Security.Enabled false, "
                      "holding the same data, reached through its door without credential "
                      "(started only for the security cases)"}}


def start_open(run: Run) -> bool:
    """Start the second archive of the security cases (security off) beside ours; on failure
    the security cases are not measured (an error of the run), the others still are."""
    archive = run.stacks[OPEN] = open_stack(run.workdir / OPEN)
    run.stack.callback(archive.stop)
    try:
        run.servers[OPEN] = start_ours(archive, name=OPEN)
    except SCENARIO_ERRORS + (AssertionError,) as error:
        log.error("the open archive did not start: %s", error)
        run.errors.append(f"security: the archive with security off did not start: "
                          f"{type(error).__name__}: {error}")
        return False
    run.stack.callback(run.servers[OPEN].close)
    run.servers[SECURED] = run.servers[OURS].view(SECURED)
    return True


def execute(args: argparse.Namespace) -> tuple[dict[str, Any], Path]:
    plan = plans.QUICK if args.quick else plans.FULL
    if args.reps is not None:
        plan = plan.with_reps(args.reps)
    scenarios = [s for s in (args.only or plans.SCENARIOS) if s not in args.skip]
    started = _now()
    stamp = started.strftime("%Y%m%d-%H%M%S")
    results_dir = args.results or (QUICK_RESULTS if args.quick else RESULTS)
    workdir = RUNS / f"run-{stamp}"
    workdir.mkdir(parents=True, exist_ok=True)
    background = machine.BackgroundLoad()
    background.start()
    errors: list[str] = []
    notes: list[str] = list(args.note)
    clock = time.monotonic()
    with ExitStack() as stack:
        run = Run(plan, workdir, results_dir, stamp, DataCache(args.cache), stack)
        make_data(run, scenarios)
        ohif = OHIF_DIST.is_dir() and "viewer" in scenarios
        if ohif:
            viewer.link_build(OHIF_DIST, workdir / "ohif-vanilla")
        elif "viewer" in scenarios:
            errors.append(f"viewer: no OHIF build at {OHIF_DIST} (scripts/setup installs it)")
            scenarios = [s for s in scenarios if s != "viewer"]
        archive = run.stacks[OURS] = ours_stack(workdir / OURS,
                                                dicom_audit=not args.without_dicom_audit)
        stack.callback(archive.stop)
        run.servers[OURS] = start_ours(archive)
        stack.callback(run.servers[OURS].close)
        process = vanilla_process(workdir / VANILLA, workdir / "ohif-vanilla" if ohif else None)
        stack.callback(process.stop)
        run.servers[VANILLA] = start_vanilla(process)
        stack.callback(run.servers[VANILLA].close)
        run.servers[DOOR], run.servers[DIRECT] = door_and_direct(run.servers[OURS], archive)
        if "security" in scenarios and not start_open(run):
            scenarios = [s for s in scenarios if s != "security"]
        run.runner = Runner(run.servers, plan.reps_read)
        for scenario in scenarios:
            log.info("=== %s ===", scenario)
            try:
                SCENARIO_FUNCTIONS[scenario](run)
            except SCENARIO_ERRORS as error:
                log.error("%s failed: %s", scenario, error)
                errors.append(f"{scenario}: {type(error).__name__}: {error}")
        if not args.no_recheck:
            rechecked = run.measure.recheck(plan.recheck_reps, plan.recheck_budget_s,
                                            SLOWER_THAN)
            if rechecked:
                notes.append(f"rechecked with {plan.recheck_reps} more A/B runs each because "
                             f"ours looked >10% slower: {', '.join(rechecked)}")
        profiles = profile(run, args.profile)
        versions = software(run)
        errors += run.measure.errors + run.errors
        notes += run.notes
    background.stop()
    if not args.keep_data:  # logs, configurations and screenshots stay
        for folder in (workdir / OURS / "data" / "storage", workdir / OURS / "data" / "index",
                       workdir / OPEN / "data" / "storage", workdir / OPEN / "data" / "index",
                       workdir / VANILLA / "data", workdir / "chromium-profile"):
            shutil.rmtree(folder, ignore_errors=True)
    finished = _now()
    doc = build_document(
        started=started.isoformat(), finished=finished.isoformat(),
        duration_s=time.monotonic() - clock, mode=plan.mode, argv=["scripts/bench", *sys.argv[1:]],
        machine=machine.describe(workdir), software=versions, settings=settings(run, scenarios),
        data=describe(list(run.sets.values())), metrics=reportable(run.measure.results()),
        profiles=profiles, background=background.summary(), notes=notes, errors=errors)
    problems = validate_document(doc)
    if problems:
        raise RuntimeError("results document does not follow its schema: " + "; ".join(problems))
    return doc, results_dir


def reportable(results: Sequence[MetricResult]) -> list[MetricResult]:
    """The results with a value of the judged side: where it failed every run there is none
    (its failures are among the run's errors), and the document has no place for that."""
    return [r for r in results if r.ours.pooled]


def write(doc: dict[str, Any], results_dir: Path, stamp: str) -> list[Path]:
    results_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(doc, indent=1, ensure_ascii=False) + "\n"
    paths = [results_dir / f"{stamp}.json", results_dir / "latest.json",
             results_dir / "latest.md"]
    paths[0].write_text(text)
    paths[1].write_text(text)
    paths[2].write_text(report.markdown(doc))
    return paths


def stamp_of(doc: Mapping[str, Any]) -> str:
    """``20250101-120000`` from the document's start time (the name of its file)."""
    return str(doc["started"]).replace("-", "").replace(":", "").replace("T", "-")[:15]


def rereport(path: Path, explain: Path | None) -> int:
    """Print the table of a results file and rewrite its .md (and latest.* if it is the last
    run); with ``explain``, store that analysis in the file first."""
    doc = json.loads(path.read_text())
    problems = validate_document(doc)
    if problems:
        sys.stderr.write(f"{PROG}: {path}: " + "; ".join(problems) + "\n")
        return 1
    if explain is not None:
        doc["analysis"] = explain.read_text()
    latest = path.parent / "latest.json"
    is_latest = path.name == latest.name or (
        latest.exists() and json.loads(latest.read_text()).get("started") == doc["started"])
    if explain is not None:
        text = json.dumps(doc, indent=1, ensure_ascii=False) + "\n"
        for target in {path, latest} if is_latest else {path}:
            target.write_text(text)
    (latest if is_latest else path).with_suffix(".md").write_text(report.markdown(doc))
    show(doc)
    return 0


def show(doc: dict[str, Any]) -> None:
    out = sys.stdout
    out.write(results_table(doc["results"]))
    if doc["errors"]:
        out.write("\nnot measured:\n" + "".join(f"  {e}\n" for e in doc["errors"]))
    out.flush()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format=f"[{PROG}] %(asctime)s %(message)s", datefmt="%H:%M:%S",
                        stream=sys.stderr)
    for noisy in ("urllib3", "pynetdicom", "websocket"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if args.report is not None:
        return rereport(args.report, args.explain)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)
    try:
        doc, results_dir = execute(args)
    except (KeyboardInterrupt, Interrupted) as why:
        sys.stderr.write(f"{PROG}: interrupted ({why or 'Ctrl-C'}); every server stopped, "
                         "no results written\n")
        return 130
    if args.explain is not None:
        doc["analysis"] = args.explain.read_text()
    paths = write(doc, results_dir, stamp_of(doc))
    show(doc)
    sys.stderr.write(f"[{PROG}] results: {', '.join(str(p) for p in paths)}\n")
    return 1 if doc["errors"] else 0
