"""``latest.md``: the results document as a page a reviewer reads in the repository."""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from typing import Any

from .results import format_markdown_table, format_number, headers, sides_of, table_rows


def _kv_table(rows: Sequence[tuple[str, Any]]) -> str:
    return format_markdown_table(("", ""), [[k, "—" if v in (None, "") else str(v)]
                                            for k, v in rows], align_numbers=False)


def _machine(doc: Mapping[str, Any]) -> str:
    m = doc["machine"]
    d = m.get("disk", {})
    disk = ", ".join(str(x) for x in (
        d.get("device"), d.get("filesystem"), d.get("model"),
        f"{d['size_gb']} GB ({d['free_gb']} GB free)" if "size_gb" in d else None,
        None if "rotational" not in d else
        ("reported rotational" if d["rotational"] else "reported non-rotational"),
    ) if x)
    return _kv_table([
        ("CPU", m["cpu_model"]), ("logical CPUs", m["logical_cpus"]),
        ("memory", f"{m['memory_gib']} GiB"), ("kernel", m["kernel"]), ("OS", m["os"]),
        ("hypervisor", m.get("hypervisor")), ("disk (data folders)", disk),
        ("Python", m.get("python")),
    ])


def _software(doc: Mapping[str, Any]) -> str:
    s = doc["software"]
    rows: list[tuple[str, Any]] = []
    for name in ("ours", "vanilla"):
        server = s.get(name) or {}
        plugins = ", ".join(f"{k} {v}" for k, v in sorted((server.get("plugins") or {}).items()))
        rows.append((f"{name}: Orthanc", server.get("orthanc")))
        rows.append((f"{name}: plugins", plugins))
    ours = s.get("ours") or {}
    platform = ours.get("platform") or {}
    if platform:  # from /api/health (runs since the door): the platform as the archive sees it
        rows.append(("ours: platform", ", ".join(
            f"{k} {v}" for k, v in platform.items() if v) or None))
        rows.append(("ours: archive version", ours.get("archive")))
    else:  # earlier runs: the plugin's own health route
        rows.append(("regional_archive plugin", ours.get("regional_archive")))
    rows.append(("its features", ", ".join(ours.get("features") or [])))
    for key, value in (s.get("tools") or {}).items():
        rows.append((key, value))
    rows.append(("OHIF", s.get("ohif")))
    return _kv_table(rows)


def _background(doc: Mapping[str, Any]) -> str:
    b = doc["background"]
    if not b:
        return "Not sampled.\n"
    top = ", ".join(f"{k} {v} s" for k, v in (b.get("foreign_cpu_seconds_by_command") or {}).items())
    return (f"Other processes (not the benchmark's) used on average "
            f"{b.get('foreign_cpu_percent_mean')} % CPU, at most "
            f"{b.get('foreign_cpu_percent_max')} % ({b.get('cpu_percent_scale')}; "
            f"{b.get('samples')} samples every {b.get('interval_s')} s). "
            f"Load average at start `{b.get('loadavg_start')}`, at end `{b.get('loadavg_end')}`."
            + (f" CPU time by command: {top}." if top else "") + "\n")


def _requirements(entries: Sequence[Mapping[str, Any]]) -> str:
    lines = []
    for e in entries:
        if e["target"] is None:
            continue
        ours, vanilla = e["pass"]["ours"], e["pass"]["vanilla"]
        first, second = sides_of(e)
        mark = "pass" if ours else "**FAIL**"
        also = "" if vanilla is None else (f" ({second}: pass)" if vanilla
                                           else f" ({second}: fail too)")
        lines.append(f"- {e['target']['requirement']} {e['metric']}, {e['label']}"
                     f"{'' if first == 'ours' else f' ({first})'}: "
                     f"{format_number(e['ours']['value'] if e['ours'] else None)} {e['unit']} "
                     f"→ {mark}{also}")
    for e in entries:
        target = e.get("ratio_target")
        if target is None:
            continue
        first, second = sides_of(e)
        passed = e["pass"].get("ratio")
        mark = "n/a" if passed is None else ("pass" if passed else "**FAIL**")
        sign = "≤" if target["op"] == "<=" else "≥"
        ratio = "—" if e["ratio"] is None else f"{e['ratio']:.3f}"
        lines.append(f"- {target['requirement']} {first}/{second} {e['metric']} "
                     f"{sign} {target['value']:.3g}, {e['label']}: {ratio} → {mark}")
    return "\n".join(lines) + "\n" if lines else "No figure has a requirement.\n"


def _slower(doc: Mapping[str, Any]) -> str:
    slower = [e for e in doc["results"] if e["verdict"] == "slower"]
    if not slower:
        return "None: our archive is within 10 % of vanilla Orthanc, or faster, everywhere.\n"
    lines = []
    for e in slower:
        worse, pairs = e["paired_runs_ours_worse"]
        recheck = f", rechecked with {e['rechecked_runs']} more A/B runs" if e["rechecked_runs"] else ""
        first, second = sides_of(e)
        lines.append(f"- {e['scenario']} — {e['label']} — {e['metric']}: {first}/{second} "
                     f"{e['ratio']:.2f}; {first} worse in {worse} of {pairs} paired "
                     f"runs{recheck}.")
    return "\n".join(lines) + "\n"


def _profiles(doc: Mapping[str, Any]) -> str:
    if not doc["profiles"]:
        return "No profile was recorded.\n"
    out = []
    for p in doc["profiles"]:
        out.append(f"### {p['case']} ({p['reason']})\n")
        if "busy_samples" in p:
            graph = (f"py-spy's flame graph: [{p['svg']}]({p['svg']}); " if p.get("svg") else
                     "no flame graph (py-spy took no sample); ")
            out.append(f"{graph}collapsed stacks: "
                       f"[{p['stacks']}]({p['stacks']}). py-spy sampled our "
                       f"{p.get('program', 'orthanc')} (pid "
                       f"{p['pid']}) at {p['rate']} Hz over {p.get('runs', 1)} run(s) of the case: "
                       f"{p['busy_samples']} busy samples of "
                       f"{p['samples']}, {100 * p['python_share']:.0f} % of them in Python.\n")
        for key, title in (("heaviest_python", "Python frame (inclusive)"),
                           ("heaviest_self", "frame (self)")):
            if p.get(key):
                rows = [[f["name"], str(f["samples"]), f"{f['percent']:.1f}"] for f in p[key]]
                out.append(format_markdown_table((title, "samples", "% of busy"), rows))
        if p.get("note"):
            out.append(p["note"] + "\n")
    return "\n".join(out)


def markdown(doc: Mapping[str, Any]) -> str:
    entries = doc["results"]
    scenarios = list(dict.fromkeys(e["scenario"] for e in entries))
    parts = [
        "# Benchmark: our archive against vanilla Orthanc\n",
        f"Run of {doc['started']} ({doc['mode']}, {doc['duration_s'] / 60:.1f} min): "
        f"`{shlex.join(doc['argv']) or 'scripts/bench'}`. Written by `scripts/bench`; the numbers "
        "and every sample are in `latest.json` beside this file.\n",
        "Both servers ran at the same time on this machine and every case alternated between "
        "them (A/B, then B/A …). *ours*: the whole archive as `scripts/serve` runs it "
        "(`config/` as shipped: nginx door, Orthanc with our plugin, the API service, a worker), "
        "measured through its door. *vanilla*: the same Orthanc, DICOMweb and GDCM plugins and "
        "storage settings on its own HTTP port, no Python plugin, door or services (and "
        "Orthanc's ServeFolders plugin serving the same OHIF build). *door* and *direct* "
        "(door overhead): our archive through its door (QIDO through the API service) against "
        "its own Orthanc's internal port with the internal credential. *secured* and *open* "
        "(what authentication costs): our archive as shipped, security on and every request "
        "with a credential (an API key; the browser a session cookie), against a second archive "
        "of ours with `Archive.Security.Enabled` false holding the same data. Values are medians "
        "over runs (p95 where the metric says so); ratio = first/second (ours/vanilla, "
        "door/direct, secured/open); the verdict says where the first is worse or better by "
        "more than 10 %; ratio targets are issue 6's and issue 8's. MB = 10^6 bytes of DICOM "
        "files.\n",
        "## Machine\n", _machine(doc),
        "## Software\n", _software(doc),
        "## Other activity on the machine\n", _background(doc),
    ]
    for scenario in scenarios:
        chosen = [e for e in entries if e["scenario"] == scenario]
        rows = table_rows(chosen, scenario=False)
        parts += [f"## {scenario}\n",
                  format_markdown_table(headers(sides_of(chosen[0]), scenario=False), rows)]
    if doc.get("analysis"):
        parts += ["## Analysis\n", doc["analysis"].strip() + "\n"]
    parts += ["## Against the requirements\n", _requirements(entries),
              "## Where ours is more than 10 % slower\n", _slower(doc),
              "## Profiles\n", _profiles(doc)]
    notes = list(doc["notes"])
    if notes:
        parts += ["## Notes\n", "\n".join(f"- {n}" for n in notes) + "\n"]
    if doc["errors"]:
        parts += ["## Not measured (errors)\n", "\n".join(f"- {e}" for e in doc["errors"]) + "\n"]
    data_rows = [[name, str(s["instances"]), format_number(s["bytes"] / 1e6), s["description"]]
                 for name, s in doc["data"].items()]
    if data_rows:
        parts += ["## Data\n", format_markdown_table(("set", "instances", "MB", "what"),
                                                    data_rows)]
    return "\n".join(parts)
