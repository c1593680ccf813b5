"""The pure parts of the benchmark (scripts/bench): statistics, ratios and verdicts, tables,
the results document and its schema, the A/B runner, the worker protocol, profiles, /proc
parsing. Nothing here is timed and no server is started."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from archive_tools.bench import cli, dicomweb, fleet, ingest, machine, plan, profiling, report, worker
from archive_tools.bench import data as bench_data
from archive_tools.bench.results import (
    API_QIDO_RATIO,
    DOOR_RATIO,
    FIRST_IMAGE,
    IMAGES_PER_S,
    INGEST_RATIO,
    SCHEMA,
    Better,
    MetricResult,
    MetricSpec,
    Samples,
    Target,
    build_document,
    format_markdown_table,
    format_number,
    format_text_table,
    headers,
    metric_entry,
    ratio,
    results_table,
    sides_of,
    slowdown,
    table_rows,
    validate_document,
    verdict,
)
from archive_tools.bench.runner import CaseFailed, Runner, order
from archive_tools.bench.servers import Server, ServerError, serve_folders_config, vanilla
from archive_tools.bench.stats import NoSamples, median, percentile, statistic, summarize
from archive_tools.bench.viewer import link_build, vanilla_app_config
from testkit.orthanc_process import DROP, render_config

# --- statistics ---------------------------------------------------------------------------


def test_percentile_interpolates_between_ranks() -> None:
    values = [4.0, 1.0, 3.0, 2.0]
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 4.0
    assert percentile(values, 50) == pytest.approx(2.5)
    assert percentile(values, 90) == pytest.approx(3.7)
    assert percentile([7.0], 99) == 7.0


def test_median_and_named_statistics() -> None:
    values = list(range(1, 101))
    assert median(values) == pytest.approx(50.5)
    assert statistic(values, "p95") == pytest.approx(95.05)
    assert statistic(values, "p99") == pytest.approx(99.01)
    assert statistic(values, "mean") == pytest.approx(50.5)
    assert statistic(values, "min") == 1 and statistic(values, "max") == 100


def test_statistics_refuse_nothing_and_nonsense() -> None:
    with pytest.raises(NoSamples):
        median([])
    with pytest.raises(ValueError):
        percentile([1.0], 101)
    with pytest.raises(ValueError):
        median([1.0, math.nan])


def test_summary_rounds_for_the_results_file() -> None:
    s = summarize([0.1234567891, 0.2, 0.3])
    assert s.n == 3 and s.min == pytest.approx(0.1234567891)
    assert s.as_dict(3)["min"] == 0.123


# --- ratios, verdicts, targets ------------------------------------------------------------


def test_ratio_is_ours_over_vanilla() -> None:
    assert ratio(2.0, 1.0) == 2.0
    assert ratio(None, 1.0) is None and ratio(1.0, None) is None and ratio(1.0, 0.0) is None


def test_slowdown_reads_the_direction_of_better() -> None:
    assert slowdown(1.2, 1.0, Better.LOWER) == pytest.approx(1.2)  # latency: ours worse
    assert slowdown(100.0, 120.0, Better.HIGHER) == pytest.approx(1.2)  # rate: ours worse
    assert slowdown(120.0, 100.0, Better.HIGHER) == pytest.approx(100 / 120)
    assert slowdown(0.0, 10.0, Better.HIGHER) == math.inf


def test_verdict_uses_ten_percent_both_ways() -> None:
    assert verdict(None) == "n/a"
    assert verdict(1.10) == "same" and verdict(1.11) == "slower"
    assert verdict(1 / 1.09) == "same" and verdict(1 / 1.12) == "faster"


def test_targets_of_the_requirements() -> None:
    assert FIRST_IMAGE.met(0.2) and not FIRST_IMAGE.met(0.21)
    assert IMAGES_PER_S.met(500) and not IMAGES_PER_S.met(499.9)
    assert FIRST_IMAGE.text("s") == "≤ 0.2 s (M19)"
    assert Target("M13", "<=", 1.0).text("s") == "≤ 1 s (M13)"


def test_numbers_keep_three_significant_figures() -> None:
    assert [format_number(v) for v in (0.01234, 0.153, 4.271, 31.25, 312.4, 3120.0)] == \
        ["0.0123", "0.153", "4.27", "31.2", "312", "3120"]
    assert format_number(None) == "—" and format_number(math.inf) == "∞"


def _metric(ours: Sequence[Sequence[float]], vanilla: Sequence[Sequence[float]] | None,
            better: Better = Better.LOWER, target: Target | None = None,
            stat: str = "median") -> MetricResult:
    spec = MetricSpec("first image", "s", better, stat, target)  # type: ignore[arg-type]
    m = MetricResult("DIMSE ingest", "ingest/storescu/small/x1", "storescu ×1, CT", spec)
    for run in ours:
        m.ours.add_run(run)
    if vanilla is None:
        m.vanilla = None
    else:
        assert m.vanilla is not None
        for run in vanilla:
            m.vanilla.add_run(run)
    return m


def test_metric_result_pools_runs_and_pairs_them() -> None:
    m = _metric([[0.10], [0.30], [0.12]], [[0.10], [0.10], [0.10]])
    assert m.ours.pooled == [0.10, 0.30, 0.12]
    assert m.ours_value == pytest.approx(0.12) and m.vanilla_value == pytest.approx(0.10)
    assert m.ratio == pytest.approx(1.2) and m.verdict == "slower"
    assert m.paired_worse() == (2, 3)


def test_latency_percentile_comes_from_pooled_samples() -> None:
    m = _metric([[1.0, 2.0, 3.0], [4.0]], [[1.0, 1.0]], stat="p95")
    assert m.ours_value == pytest.approx(percentile([1.0, 2.0, 3.0, 4.0], 95))
    assert m.ours.per_run("p95") == [pytest.approx(2.9), 4.0]


def test_empty_runs_are_not_recorded() -> None:
    s = Samples()
    s.add_run([])
    assert s.runs == [] and s.value("median") is None


# --- tables ---------------------------------------------------------------------------------


def test_table_rows_show_values_ratio_verdict_and_pass() -> None:
    entries = [metric_entry(_metric([[0.05]], [[0.04]], target=FIRST_IMAGE)),
               metric_entry(_metric([[0.5]], None, target=FIRST_IMAGE))]
    rows = table_rows(entries)
    assert rows[0] == ["DIMSE ingest", "storescu ×1, CT", "first image", "s", "0.05", "0.04",
                       "1.25", "slower 25%", "≤ 0.2 s (M19)", "pass", "pass", "", ""]
    assert rows[1][5:8] == ["—", "—", "ours only"] and rows[1][9:11] == ["FAIL", ""]


def test_ratio_targets_are_checked_on_the_ratio_in_its_direction() -> None:
    rate = MetricSpec("images/s", "images/s", Better.HIGHER, ratio_target=INGEST_RATIO)
    m = MetricResult("DIMSE ingest", "ingest/x", "x", rate)
    m.ours.add_run([96.0])
    assert m.vanilla is not None
    m.vanilla.add_run([100.0])
    assert m.ratio_met is True  # 0.96 ≥ 0.95
    m.ours.add_run([90.0])
    m.ours.add_run([90.0])
    assert m.ratio == pytest.approx(0.90) and m.ratio_met is False
    latency = MetricResult("d", "door/x", "x", MetricSpec("latency p50", "ms", Better.LOWER,
                                                          ratio_target=DOOR_RATIO),
                           sides=("door", "direct"))
    latency.ours.add_run([10.4])
    assert latency.vanilla is not None and latency.ratio_met is None  # no baseline yet
    latency.vanilla.add_run([10.0])
    assert latency.ratio_met is True
    entry = metric_entry(latency)
    assert entry["ratio_target"] == {"requirement": "issue 6", "op": "<=", "value": 1.05}
    assert entry["pass"]["ratio"] is True
    assert table_rows([entry])[0][-2:] == ["≤ 1.05 (issue 6)", "pass"]
    assert API_QIDO_RATIO.met(1.2) and not API_QIDO_RATIO.met(1.21)
    assert metric_entry(_metric([[1.0]], [[1.0]]))["pass"]["ratio"] is None


def test_unlike_sides_get_a_ratio_but_no_verdict_and_no_recheck() -> None:
    spec = MetricSpec("latency p50", "ms", Better.LOWER, comparable=False)
    m = MetricResult("q", "qido/zh", "zh", spec, sides=("door", "direct"))
    m.ours.add_run([30.0])
    assert m.vanilla is not None
    m.vanilla.add_run([10.0])
    assert m.ratio == pytest.approx(3.0) and m.slowdown is None and m.verdict == "n/a"
    assert verdict_text_of(metric_entry(m)) == "n/a"


def test_headers_and_sides_name_the_compared_servers() -> None:
    assert headers(("door", "direct"), scenario=False)[3:6] == ["door", "direct", "door/direct"]
    assert headers()[4:7] == ["ours", "vanilla", "ours/vanilla"]
    assert len(headers()) == len(table_rows([metric_entry(_metric([[1.0]], [[1.0]]))])[0])
    assert sides_of({"case": "from an older run"}) == ("ours", "vanilla")
    assert sides_of({"sides": ["door", "direct"]}) == ("door", "direct")


def test_text_table_aligns_columns_and_right_aligns_numbers() -> None:
    text = format_text_table(["name", "value"], [["a", "1.5"], ["longer", "312"]])
    lines = text.splitlines()
    assert lines[0] == "name    value"
    assert lines[1] == "------  -----"
    assert lines[2] == "a         1.5"
    assert lines[3] == "longer    312"


def test_markdown_table_escapes_pipes_and_aligns_numbers_right() -> None:
    text = format_markdown_table(["case", "ms"], [["a|b", "12.0"]])
    assert text.splitlines() == ["| case | ms |", "|---|---:|", "| a\\|b | 12.0 |"]


def test_results_table_has_one_line_per_metric() -> None:
    entries = [metric_entry(_metric([[1.0]], [[1.0]]))] * 3
    assert len(results_table(entries).splitlines()) == 2 + 3


# --- the document ---------------------------------------------------------------------------

MACHINE = {"cpu_model": "Test CPU", "logical_cpus": 2, "memory_gib": 24.0, "kernel": "Linux 6",
           "os": "Debian 12", "disk": {"device": "/dev/vda", "filesystem": "ext4"}}


def _document(metrics: Sequence[MetricResult], **extra: Any) -> dict[str, Any]:
    values: dict[str, Any] = dict(
        started="2025-01-01T00:00:00+00:00", finished="2025-01-01T00:20:00+00:00",
        duration_s=1200.0, mode="full", argv=["scripts/bench"], machine=MACHINE,
        software={"ours": {"orthanc": "1.10.1", "plugins": {"python": "4.0"}}},
        settings={}, data={"ct-500": {"instances": 500, "bytes": 5e8, "studies": 1,
                                      "description": "CT", "generated_s": 1.0}},
        metrics=metrics, profiles=[], background={"foreign_cpu_percent_mean": 1.0},
        notes=["a note"], errors=[])
    values.update(extra)
    return build_document(**values)


def test_document_follows_its_schema_and_survives_json() -> None:
    doc = _document([_metric([[0.05], [0.06]], [[0.04], [0.05]], target=FIRST_IMAGE),
                     _metric([[1.0]], None)])
    assert doc["schema"] == SCHEMA
    assert validate_document(json.loads(json.dumps(doc))) == []
    entry = doc["results"][0]
    assert entry["ours"]["runs"] == 2 and entry["ours"]["samples"] == [0.05, 0.06]
    assert entry["pass"] == {"ours": True, "vanilla": True, "ratio": None}
    assert entry["target"] == {"requirement": "M19", "op": "<=", "value": 0.2, "unit": "s"}
    assert doc["results"][1]["vanilla"] is None and doc["results"][1]["ratio"] is None


def test_validation_names_what_is_wrong() -> None:
    assert validate_document([]) == ["document: not a JSON object"]
    doc = _document([_metric([[1.0]], [[1.0]])])
    del doc["machine"]["cpu_model"]
    doc["results"][0]["verdict"] = "maybe"
    doc["results"][0]["ours"] = None
    doc["mode"] = "fast"
    problems = validate_document(doc)
    assert "document.machine: missing 'cpu_model'" in problems
    assert "results[0].verdict: 'maybe'" in problems
    assert "results[0].ours: our archive has no value" in problems
    assert any(p.startswith("document.mode") for p in problems)
    del doc["results"]
    assert validate_document(doc) == ["document: missing 'results'"]


def test_many_samples_are_summarised_not_listed() -> None:
    doc = _document([_metric([[float(i) for i in range(200)]], [[1.0]])])
    ours = doc["results"][0]["ours"]
    assert "samples" not in ours and ours["summary"]["n"] == 200


def test_markdown_report_has_machine_results_and_requirements() -> None:
    slow = _metric([[0.3], [0.3]], [[0.1], [0.1]], target=FIRST_IMAGE)
    slow.rechecked_runs = 4
    doc = _document([slow], errors=["viewer: no OHIF build"],
                    profiles=[{"case": slow.case, "reason": "ours 200% slower", "svg": "p.svg",
                               "stacks": "p.txt", "pid": 1, "rate": 200, "samples": 10,
                               "busy_samples": 5, "python_share": 0.4,
                               "heaviest_python": [{"name": "handle (x.py:1)", "samples": 2,
                                                    "percent": 40.0}]}])
    text = report.markdown(doc)
    for expected in ("## Machine", "Test CPU", "## DIMSE ingest", "## Against the requirements",
                     "**FAIL**", "ours/vanilla 3.00; ours worse in 2 of 2 paired runs, "
                     "rechecked with 4 more A/B runs", "[p.svg](p.svg)", "handle (x.py:1)",
                     "viewer: no OHIF build", "| ct-500 | 500 | 500 | CT |"):
        assert expected in text, expected


def test_documents_of_earlier_runs_still_validate_and_sides_are_checked() -> None:
    doc = _document([_metric([[1.0]], [[1.0]])])
    for entry in doc["results"]:
        del entry["sides"], entry["ratio_target"]
    assert validate_document(doc) == []
    doc["results"][0]["sides"] = ["door"]
    assert validate_document(doc) == ["results[0].sides: ['door'] is not two names"]


def test_markdown_names_door_and_direct_and_lists_ratio_targets() -> None:
    door = MetricResult(dicomweb.DOOR_WADO, "door/frame/c1", "frame, 1 client",
                        MetricSpec("latency p50", "ms", Better.LOWER, ratio_target=DOOR_RATIO),
                        sides=("door", "direct"))
    door.ours.add_run([12.0])
    assert door.vanilla is not None
    door.vanilla.add_run([10.0])
    text = report.markdown(_document([door]))
    assert "| case | metric | unit | door | direct | door/direct |" in text
    assert "- issue 6 door/direct latency p50 ≤ 1.05, frame, 1 client: 1.200 → **FAIL**" in text
    assert "door/direct 1.20; door worse in 1 of 1 paired runs" in text


# --- the A/B runner -------------------------------------------------------------------------


@dataclass
class FakeServer:
    name: str


@dataclass
class FakeCase:
    """Ours takes ``ours`` seconds, vanilla ``vanilla``; records the order it was run in."""

    ours: float
    vanilla: float
    fail_on: str | None = None
    calls: list[str] = field(default_factory=list)
    scenario: str = "test"
    key: str = "test/case"
    label: str = "a case"
    repeatable: bool = True
    warmup: bool = False
    sides: tuple[str, str] = ("ours", "vanilla")

    @property
    def specs(self) -> Sequence[MetricSpec]:
        return (MetricSpec("time", "s", Better.LOWER),)

    def run(self, server: Any) -> Mapping[str, Sequence[float]]:
        self.calls.append(server.name)
        if server.name == self.fail_on:
            raise CaseFailed("refused")
        return {"time": [self.ours if server.name == self.sides[0] else self.vanilla]}


def _runner(reps: int = 2) -> Runner:
    servers: Any = {name: FakeServer(name) for name in ("ours", "vanilla", "door", "direct")}
    return Runner(servers, reps, progress=lambda _text: None)


def test_order_alternates_ab_ba() -> None:
    assert [order(r) for r in range(3)] == [["ours", "vanilla"], ["vanilla", "ours"],
                                            ["ours", "vanilla"]]


def test_runner_alternates_and_collects_one_run_per_repetition() -> None:
    case = FakeCase(1.0, 2.0)
    [result] = _runner().measure(case, reps=3)
    assert case.calls == ["ours", "vanilla", "vanilla", "ours", "ours", "vanilla"]
    assert result.ours.runs == [[1.0]] * 3 and result.ratio == 0.5


def test_vanilla_that_cannot_do_it_is_left_out_but_ours_failing_is_an_error() -> None:
    runner = _runner()
    [result] = runner.measure(FakeCase(1.0, 2.0, fail_on="vanilla"))
    assert result.vanilla is None and runner.errors == []
    assert "vanilla: 2 failed run(s), first: refused" in result.notes
    runner.measure(FakeCase(1.0, 2.0, fail_on="ours"))
    assert runner.errors == ["test/case: ours: 2 failed run(s), first: refused"]


def test_recheck_measures_again_only_what_looks_slower() -> None:
    runner = _runner(reps=1)
    slow, fine = FakeCase(1.5, 1.0, key="slow"), FakeCase(1.0, 1.0, key="fine")
    runner.measure(slow)
    runner.measure(fine)
    assert runner.recheck(extra_reps=2, budget_s=60, threshold=1.1) == ["slow"]
    assert len(slow.calls) == 2 + 4 and len(fine.calls) == 2
    assert runner.results()[0].rechecked_runs == 2 and len(runner.results()[0].ours.runs) == 3


def test_door_and_direct_cases_keep_the_door_as_the_judged_side() -> None:
    runner = _runner(reps=2)
    case = FakeCase(1.2, 1.0, sides=("door", "direct"), fail_on=None)
    [result] = runner.measure(case)
    assert case.calls == ["door", "direct", "direct", "door"]
    assert result.sides == ("door", "direct") and result.ratio == pytest.approx(1.2)
    entry = metric_entry(result)
    assert entry["sides"] == ["door", "direct"] and verdict_text_of(entry) == "slower 20%"


def test_a_failing_baseline_is_left_out_whatever_its_name() -> None:
    runner = _runner()
    [result] = runner.measure(FakeCase(1.0, 2.0, sides=("door", "direct"), fail_on="direct"))
    assert result.vanilla is None and runner.errors == []
    runner.measure(FakeCase(1.0, 2.0, sides=("door", "direct"), fail_on="door"))
    assert runner.errors == ["test/case: door: 2 failed run(s), first: refused"]


def verdict_text_of(entry: Mapping[str, Any]) -> str:
    from archive_tools.bench.results import verdict_text

    return verdict_text(entry)


def test_cases_that_change_state_are_not_rechecked() -> None:
    runner = _runner(reps=1)
    runner.measure(FakeCase(2.0, 1.0, repeatable=False))
    assert runner.recheck(2, 60, 1.1) == []


def test_consistent_needs_ours_worse_in_most_paired_runs() -> None:
    assert cli.consistent(_metric([[2.0], [2.0], [2.0], [0.5]], [[1.0]] * 4))
    assert not cli.consistent(_metric([[2.0], [2.0], [0.5], [0.5]], [[1.0]] * 4))


# --- clients and data -----------------------------------------------------------------------


def test_multipart_related_frames_each_part() -> None:
    body, content_type = worker.multipart_related([b"DICM1", b"DICM2"], boundary="XYZ")
    assert content_type == 'multipart/related; type="application/dicom"; boundary=XYZ'
    assert body == (b"--XYZ\r\nContent-Type: application/dicom\r\n\r\nDICM1\r\n"
                    b"--XYZ\r\nContent-Type: application/dicom\r\n\r\nDICM2\r\n--XYZ--\r\n")


def test_stow_failures_counts_the_failed_sop_sequence() -> None:
    assert worker.stow_failures({"00081198": {"vr": "SQ", "Value": [{}, {}]}}) == 2
    assert worker.stow_failures({"00081199": {"vr": "SQ", "Value": [{}]}}) == 0
    assert worker.stow_failures([]) == 0


def test_worker_protocol_ready_go_outcome(monkeypatch: pytest.MonkeyPatch) -> None:
    def prepare(job: Mapping[str, Any]) -> worker.Runner:
        def run(out: worker.Outcome) -> None:
            out.count, out.bytes = job["n"], 10
            out.latencies.append(0.5)
        return run

    monkeypatch.setitem(worker.PREPARE, "fake", prepare)
    stdout = io.StringIO()
    code = worker.serve(io.StringIO(json.dumps({"kind": "fake", "n": 3}) + "\nGO\n"), stdout)
    ready, outcome = stdout.getvalue().splitlines()
    assert code == 0 and ready == worker.READY
    result = json.loads(outcome)
    assert result["count"] == 3 and result["latencies"] == [0.5] and result["error"] is None
    assert result["finished"] >= result["started"] > 0


def test_worker_reports_a_failed_job(monkeypatch: pytest.MonkeyPatch) -> None:
    def prepare(_job: Mapping[str, Any]) -> worker.Runner:
        def run(_out: worker.Outcome) -> None:
            raise worker.JobFailed("status 0xA700")
        return run

    monkeypatch.setitem(worker.PREPARE, "fake", prepare)
    stdout = io.StringIO()
    assert worker.serve(io.StringIO('{"kind": "fake"}\nGO\n'), stdout) == 1
    assert json.loads(stdout.getvalue().splitlines()[1])["error"] == "JobFailed: status 0xA700"


def test_split_deals_round_robin() -> None:
    assert fleet.split([1, 2, 3, 4, 5], 2) == [[1, 3, 5], [2, 4]]
    assert fleet.split([1, 2], 8) == [[1], [2]]
    assert fleet.storescu_argv("127.0.0.1", 4242, "ARCHIVE", [Path("a.dcm")])[0] == \
        "/usr/bin/storescu"


def test_tiny_studies_carry_what_qido_matches_on(tmp_path: Path) -> None:
    sets = bench_data.DataCache(tmp_path)
    first = sets.tiny("tiny", 10, 3)
    assert first.count == 3 and len(first.study_uids) == 3
    again = sets.tiny("tiny", 10, 3)
    assert again.files == first.files and again.study_uids == first.study_uids  # from the cache
    import pydicom

    ds = pydicom.dcmread(first.files[1])
    assert (str(ds.PatientName), ds.PatientID) == ("BENCH^P00005", "BP00005")
    assert ds.AccessionNumber == "ACC0000011" and ds.Rows == 8
    assert bench_data.tiny_date(11).strftime("%Y%m%d") == ds.StudyDate


def test_qido_paths_stay_within_what_orthanc_1_10_passes_unchanged() -> None:
    uids = [f"1.2.3.{i}" for i in range(1000)]
    paths = dicomweb.qido_paths(1000, uids, 20)
    assert set(paths) == set(dicomweb.QIDO_KINDS)
    for kind, queries in paths.items():
        assert len(queries) == 20
        for q in queries:
            assert "^" not in q and "%" not in q and " " not in q, (kind, q)
    assert all(q.startswith("/studies?PatientID=BP00") for q in paths["PatientID"])
    assert paths == dicomweb.qido_paths(1000, uids, 20)  # the same for both servers and runs


def test_qido_case_routes_only_ours_through_the_viewer_route() -> None:
    case = dicomweb.QidoCase("PatientID", 1000, ("/studies?PatientID=BP00001",), "viewer")
    ours: Any = FakeServer("ours")
    other: Any = FakeServer("vanilla")
    assert case.root(ours) == "/api/dicom-web" and case.root(other) == "/dicom-web"
    assert case.key == "qido/1000/patientid/viewer-route"
    assert [s.name for s in case.specs] == ["latency p50", "latency p95"]


def test_api_cases_compare_the_api_route_with_direct_dicomweb() -> None:
    uids = [f"1.2.3.{i}" for i in range(100)]
    paths = dicomweb.qido_paths(100, uids, 3)
    zh = [bench_data.zh_patient(k) for k in range(2)]
    cases = dicomweb.api_cases(100, paths, zh)
    assert len(cases) == len(dicomweb.QIDO_KINDS) + 1
    door: Any = FakeServer("door")
    direct: Any = FakeServer("direct")
    ascii_case, chinese = cases[1], cases[-1]
    assert ascii_case.sides == ("door", "direct") and ascii_case.scenario == dicomweb.DOOR_QIDO
    assert ascii_case.root(door) == "/api/dicom-web" and ascii_case.root(direct) == "/dicom-web"
    assert ascii_case.paths_for(door) == ascii_case.paths_for(direct) == paths["PatientID"]
    assert ascii_case.key == "qido/100/patientid/api-vs-direct"
    assert ascii_case.specs[0].ratio_target == API_QIDO_RATIO
    assert chinese.key == "qido/100/patientname-chinese/api-vs-direct"
    assert chinese.specs[0].ratio_target is None  # not the same query on both sides
    assert not chinese.comparable and not any(spec.comparable for spec in chinese.specs)
    assert ascii_case.comparable and all(spec.comparable for spec in ascii_case.specs)
    assert chinese.paths_for(door)[0] == "/studies?PatientName=%E7%8E%8B%5E%E8%8A%B3%E8%8A%B3"
    assert chinese.paths_for(direct) == ("/studies?PatientID=ZH0000", "/studies?PatientID=ZH0001")
    assert dicomweb.api_cases(100, paths)[-1].query == dicomweb.QIDO_KINDS[-1]


def test_door_wado_cases_are_door_against_direct_with_the_issue_targets() -> None:
    series = bench_data.DataSet("s", Path("."), (Path("a"), Path("b")), (1, 1), ("1.2",),
                                ("1.2.3",), ("1.2.3.4",), ("1.5", "1.6"), "series", 0.0)
    cases = dicomweb.wado_cases(series, series, metadata_requests=2, frame_requests=3,
                                rendered_requests=1, metadata_clients=(1, 4),
                                frame_clients=(1,), door=True)
    assert [c.key for c in cases] == ["door/series-metadata/c1", "door/series-metadata/c4",
                                      "door/frame/c1"]
    assert all(c.sides == ("door", "direct") and c.scenario == dicomweb.DOOR_WADO for c in cases)
    latency, _p95, rate = cases[2].specs
    assert latency.ratio_target == DOOR_RATIO and rate.ratio_target is not None
    assert rate.ratio_target.met(1 / 1.05) and not rate.ratio_target.met(0.9)
    assert len(cases[2].requests) == 3 and cases[0].requests[0].path.endswith("/metadata")
    plain = dicomweb.wado_cases(series, series, metadata_requests=2, frame_requests=3,
                                rendered_requests=1, metadata_clients=(1,), frame_clients=(1,))
    assert all(c.sides == ("ours", "vanilla") and c.key.startswith("wado/") for c in plain)


def test_chinese_patients_have_unique_names_and_two_studies(tmp_path: Path) -> None:
    names = {bench_data.zh_patient(k)[0] for k in range(1000)}
    assert len(names) == 1000 and bench_data.zh_patient(0) == ("王^芳芳", "ZH0000")
    with pytest.raises(ValueError):
        bench_data.zh_patient(1000)
    zh = bench_data.DataCache(tmp_path).tiny_zh("zh", 2)
    assert zh.count == 4 and len(zh.study_uids) == 4
    import pydicom

    ds = pydicom.dcmread(zh.files[3])
    assert (str(ds.PatientName), ds.PatientID) == ("李^芳芳", "ZH0001")
    assert ds.SpecificCharacterSet == "ISO_IR 192"
    assert ds.AccessionNumber == bench_data.tiny_accession(bench_data.ZH_FIRST + 3)


def test_views_of_a_server_share_its_admin_and_direct_sends_the_credential() -> None:
    ours = Server("ours", "http://127.0.0.1:1", "http://127.0.0.1:2", 4242, "ARCHIVE",
                  admin_auth=("internal", "secret"), pids=lambda: {"orthanc": 7, "api": 8})
    door = ours.view("door")
    direct = ours.view("direct", "http://127.0.0.1:2", ("internal", "secret"))
    assert (door.url, door.auth) == ("http://127.0.0.1:1", None)
    assert (direct.url, direct.auth, direct.session.auth) == (
        "http://127.0.0.1:2", ("internal", "secret"), ("internal", "secret"))
    assert door.admin_url == direct.admin_url == ours.admin_url
    assert door.admin.auth == ("internal", "secret") and ours.session.auth is None
    assert direct.pid("api") == 8
    with pytest.raises(ServerError):
        Server("vanilla", "u", "u", 1, "A").pid()
    for server in (ours, door, direct):
        server.close()


def test_worker_sessions_send_basic_auth_only_when_asked() -> None:
    assert worker._session({"auth": ["internal", "secret"]}).auth == ("internal", "secret")
    assert worker._session({"auth": None}).auth is None


def test_the_api_is_profiled_only_where_qido_goes_through_it() -> None:
    zh = dicomweb.api_cases(10, dicomweb.qido_paths(10, [f"1.{i}" for i in range(10)], 1))
    assert cli.profiled_programs(zh[0]) == ("orthanc", "api")
    assert cli.profiled_programs(FakeCase(1.0, 1.0)) == ("orthanc",)


# --- servers and configuration --------------------------------------------------------------


def test_render_config_drops_keys_and_files(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "orthanc.json").write_text('{ // comment\n "A": 1, "B": {"C": 2, "D": 3} }')
    (source / "archive.json").write_text('{"Archive": {}}')
    out = render_config(tmp_path / "out", {"orthanc.json": {"A": DROP, "B": {"C": 5}},
                                           "archive.json": DROP, "extra.json": {"E": 1}},
                        source)
    assert json.loads((out / "orthanc.json").read_text()) == {"B": {"C": 5, "D": 3}}
    assert not (out / "archive.json").exists()
    assert json.loads((out / "extra.json").read_text()) == {"E": 1}


def test_vanilla_has_no_python_plugin(tmp_path: Path) -> None:
    process = vanilla(tmp_path / "v", tmp_path / "ohif")
    orthanc = process.overrides["orthanc.json"]
    assert process.overrides["archive.json"] is DROP
    assert isinstance(orthanc, Mapping)
    assert orthanc["PythonScript"] is DROP
    assert not any("Python" in p for p in orthanc["Plugins"])
    assert any("ServeFolders" in p for p in orthanc["Plugins"])
    assert process.ready_path == "/system"


def test_serve_folders_needs_a_path_without_dots(tmp_path: Path) -> None:
    config = serve_folders_config(tmp_path / "ohif")
    assert config["Extensions"][""] == "text/html" and config["AllowCache"] is True
    with pytest.raises(ServerError):
        serve_folders_config(Path("/srv/v1.2/ohif"))


def test_vanilla_viewer_searches_plain_dicomweb() -> None:
    config = 'window.ARCHIVE_VIEWER = Object.freeze({\n  "qidoRoot": "/api/dicom-web",\n});'
    assert '"qidoRoot": "/dicom-web"' in vanilla_app_config(config)
    assert vanilla_app_config("no such key") == "no such key"


def test_link_build_mirrors_all_but_what_ours_renders(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    for name in ("index.html", "app-config.js", "app.bundle.js", ".stamp"):
        (dist / name).write_text(name)
    link_build(dist, tmp_path / "served")
    assert sorted(p.name for p in (tmp_path / "served").iterdir()) == ["app.bundle.js", "assets"]
    assert (tmp_path / "served" / "app.bundle.js").read_text() == "app.bundle.js"


# --- profiles -------------------------------------------------------------------------------

STACKS = """\
main (libc.so.6);usleep (libc.so.6);clock_nanosleep (libc.so.6) 50
civet (libcivetweb.so);callback (regional_archive/adapters/orthanc_host.py:75);answer (regional_archive/viewer.py:225) 30
civet (libcivetweb.so);callback (regional_archive/adapters/orthanc_host.py:75);read_bytes (pathlib.py:1050) 10
civet (libcivetweb.so);memcpy (libc.so.6) 10
"""


def test_profile_drops_sleeping_stacks_and_ranks_frames() -> None:
    profile = profiling.Profile.parse(STACKS)
    assert profile.total == 100
    active = profile.active()
    assert active.total == 50
    assert active.python_share() == pytest.approx(0.8)
    top = active.inclusive(3)
    assert top[0].name == "callback (regional_archive/adapters/orthanc_host.py:75)"
    assert (top[0].samples, top[0].percent) == (40, 80.0)
    assert [w.name for w in active.leaves(2)] == [
        "answer (regional_archive/viewer.py:225)", "memcpy (libc.so.6)"]


BUSY = """\
import time
def spin_in_the_benchmark_test():
    total = 0
    for i in range(100_000):
        total += i
    return total
end = time.monotonic() + 20
while time.monotonic() < end:
    spin_in_the_benchmark_test()
"""


@pytest.fixture
def busy_python() -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen([sys.executable, "-c", BUSY])
    try:
        yield process
    finally:
        process.kill()
        process.wait()


def test_py_spy_writes_its_flame_graph_and_the_stacks_for_the_summary(
        busy_python: subprocess.Popen[bytes], tmp_path: Path) -> None:
    svg, raw = tmp_path / "p.svg", tmp_path / "p.txt"
    for output, output_format in ((svg, "flamegraph"), (raw, "raw")):
        with profiling.recording(busy_python.pid, output, output_format):
            deadline = time.monotonic() + 1.5
            while time.monotonic() < deadline and busy_python.poll() is None:
                time.sleep(0.1)  # the child works meanwhile; py-spy samples it
    graph = svg.read_text()
    assert "<svg" in graph and "spin_in_the_benchmark_test" in graph
    profile = profiling.Profile.parse(raw.read_text())
    assert profile.total > 0
    assert "spin_in_the_benchmark_test" in profiling.function(profile.leaves(1)[0].name)


def test_a_thread_pool_waiting_for_work_is_idle() -> None:
    waiting = ("_bootstrap (threading.py:995)", "_worker (concurrent/futures/thread.py:81)",
               "0x7f6ed693df16 (libc.so.6)")
    working = ("_bootstrap (threading.py:995)", "_worker (concurrent/futures/thread.py:83)",
               "run (archive_api/dicomweb.py:10)", "send (libc.so.6)")
    assert profiling.is_idle(waiting) and not profiling.is_idle(working)
    assert profiling.is_idle(("main (x)", "usleep (libc.so.6)"))
    assert not profiling.is_idle(("civet (libcivetweb.so)", "memcpy (libc.so.6)"))
    text = ";".join(waiting) + " 9\n" + ";".join(working) + " 1\n"
    assert profiling.Profile.parse(text).active().total == 1


def test_recording_refuses_an_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="speedscope"):
        with profiling.recording(1, tmp_path / "x", "speedscope"):
            pass


# --- the machine ----------------------------------------------------------------------------


def test_proc_parsing() -> None:
    sample = machine.parse_stat("42 (tmux: server) S 1 42 40 0 -1 4194560 1 0 0 0 7 3 0 0 20 0")
    assert sample == machine.ProcSample(ppid=1, session=40, comm="tmux: server", ticks=10)
    assert machine.parse_stat("garbage") is None
    assert machine.cpu_model("processor : 0\nmodel name\t: Intel Xeon\n") == "Intel Xeon"
    assert machine.memory_gib("MemTotal:       24576000 kB\n") == 23.4
    assert machine.os_name('NAME="Debian"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n') == \
        "Debian GNU/Linux 12 (bookworm)"


def test_foreign_cpu_leaves_out_our_tree_our_sessions_and_kernel_threads() -> None:
    P = machine.ProcSample
    before = {10: P(1, 10, "bench", 0), 11: P(10, 11, "Orthanc", 0), 12: P(1, 11, "zygote", 0),
              20: P(1, 20, "pytest", 0), 30: P(2, 0, "kworker", 0)}
    after = {10: P(1, 10, "bench", 5), 11: P(10, 11, "Orthanc", 50), 12: P(1, 11, "zygote", 9),
             20: P(1, 20, "pytest", 40), 30: P(2, 0, "kworker", 7)}
    ours = machine.descendants(10, after)
    assert ours == {10, 11, 12}
    assert machine.foreign_ticks(before, after, ours) == {"pytest": 40}


# --- the command ----------------------------------------------------------------------------


def test_scenario_selection_is_checked() -> None:
    assert cli.parse_args(["--only", "door"]).only == ["door"]
    args = cli.parse_args(["--quick", "--only", "dimse,qido", "--skip", "qido"])
    assert args.quick and args.only == ["dimse", "qido"] and args.skip == ["qido"]
    with pytest.raises(SystemExit):
        cli.parse_args(["--only", "dimse,nonsense"])
    with pytest.raises(SystemExit):
        cli.parse_args(["--reps", "0"])


def test_plans_are_sane() -> None:
    for p in (plan.FULL, plan.QUICK):
        assert min(p.reps_small, p.reps_large, p.reps_read) >= 1
        assert p.tiny_levels[0] < p.tiny_levels[1]
    assert plan.FULL.series_slices == 1000 and plan.FULL.tiny_levels == (1000, 10000)
    assert plan.FULL.ct_slices == 500  # the viewer's 500-slice CT
    assert plan.QUICK.with_reps(3).reps_large == 3


def test_rereport_adds_the_analysis_to_the_file_and_latest(tmp_path: Path) -> None:
    doc = _document([_metric([[1.0]], [[1.0]])])
    stamped, latest = tmp_path / "20250101-000000.json", tmp_path / "latest.json"
    stamped.write_text(json.dumps(doc))
    latest.write_text(json.dumps(doc))
    notes = tmp_path / "analysis.md"
    notes.write_text("Noise, not the plugin.\n")
    assert cli.rereport(stamped, notes) == 0
    for path in (stamped, latest):
        assert json.loads(path.read_text())["analysis"] == "Noise, not the plugin.\n"
    assert "## Analysis\n\nNoise, not the plugin." in (tmp_path / "latest.md").read_text()
    assert not (tmp_path / "20250101-000000.md").exists()
    assert cli.stamp_of(doc) == "20250101-000000"


def test_storescu_senders_differ_only_in_nagle() -> None:
    """Issue 15: storescu as Debian installs it (Nagle on) beside the best case (TCP_NODELAY=1)."""
    base = {"PATH": "/usr/bin", "TCP_NODELAY": "1"}
    assert ingest.storescu_environment("storescu", base) == base
    assert ingest.storescu_environment("storescu-nagle", base) == {**base, "TCP_NODELAY": "0"}
    assert base["TCP_NODELAY"] == "1"  # the caller's environment is left as it was
    ct = bench_data.DataSet("ct", Path("."), (Path("a"),), (1,), ("1.2",), ("1.3",), ("1.4",),
                            ("1.5",), "ct", 0.0)
    keys = [c.key for c in ingest.cases(ct, ct, (1, 8), ("storescu", "storescu-nagle"), 10)]
    assert keys == ["ingest/storescu/small/x1", "ingest/storescu/small/x8",
                    "ingest/storescu/large/x1", "ingest/storescu/large/x8",
                    "ingest/storescu-nagle/small/x1", "ingest/storescu-nagle/small/x8",
                    "ingest/storescu-nagle/large/x1", "ingest/storescu-nagle/large/x8"]
    nagle = ingest.cases(ct, ct, (4,), ("storescu-nagle",), 10)[0]
    assert nagle.label.startswith("storescu (Nagle on) ×4 assoc.")
