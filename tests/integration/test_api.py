"""The API service against a real Orthanc (shipped config, our plugin), over loopback HTTP.

QIDO-RS by Chinese names through ``/api/dicom-web`` (the platform's DICOMweb cannot match them:
values reach it percent-encoded), checked against what DICOMweb itself answers for the same
studies by UID, so the JSON is the DICOMweb plugin's own; health of a live archive; jobs.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests

from archive_tools import synthetic
from archive_tools.synthetic import PatientInfo, StudyInfo
from testkit import platform

from ._services import Archive

pytestmark = pytest.mark.integration

STUDY_UID, SERIES_UID, SOP_UID = "0020000D", "0020000E", "00080018"
PATIENT_NAME, STUDY_DATE = "00100010", "00080020"
STUDY_DESCRIPTION, RETRIEVE_URL = "00081030", "00081190"


@dataclass(frozen=True)
class Stored:
    key: str
    patient: PatientInfo
    study: StudyInfo
    series_uid: str
    sop_uids: tuple[str, ...]


STUDIES: Sequence[tuple[str, PatientInfo, str]] = (
    ("zhang-wei-1", PatientInfo("张^伟", "API-P1", "19620418", "M"), "20240101"),
    ("zhang-san", PatientInfo("张^三", "API-P2", "19700101", "M"), "20240105"),
    ("zhang-wei-2", PatientInfo("张^伟", "API-P1", "19620418", "M"), "20240210"),
    ("ouyang-na", PatientInfo("欧阳^娜", "API-P3", "19800101", "F"), "20240101"),
    ("li-na", PatientInfo("Li^Na=李^娜", "API-P4", "19850107", "F"), "20240301"),
    ("zhang-wei-latin", PatientInfo("Zhang^Wei", "API-P5", "19900101", "M"), "20240101"),
)


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Archive]:
    archive = Archive(tmp_path_factory.mktemp("api")).start()
    try:
        archive.start_api()
        yield archive
    finally:
        archive.stop()


@pytest.fixture(scope="module")
def stored(archive: Archive) -> dict[str, Stored]:
    out: dict[str, Stored] = {}
    for seed, (key, patient, date) in enumerate(STUDIES):
        study = StudyInfo(date=date, description=f"CT {key}")
        datasets = synthetic.ct_volume(2, 32, 32, patient=patient, study=study, seed=seed)
        for ds in datasets:
            archive.upload(synthetic.to_bytes(ds))
        out[key] = Stored(key, patient, study, str(datasets[0].SeriesInstanceUID),
                          tuple(str(ds.SOPInstanceUID) for ds in datasets))
    return out


def api(archive: Archive, path: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    response = archive.http.get(f"{archive.api_url}/api/dicom-web/{path}", params=params, timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/dicom+json")
    body: list[dict[str, Any]] = response.json()
    return body


def direct(archive: Archive, path: str, query: str) -> list[dict[str, Any]]:
    """DICOMweb itself, with a raw query string (Orthanc reads it undecoded)."""
    response = requests.get(f"{archive.orthanc_url}/dicom-web/{path}?{query}",
                            auth=archive.auth, timeout=30)
    assert response.status_code == 200, response.text
    body: list[dict[str, Any]] = response.json()
    return body


def values(items: list[dict[str, Any]], tag: str) -> list[str]:
    return [item[tag]["Value"][0] if tag != PATIENT_NAME else
            item[tag]["Value"][0]["Alphabetic"] for item in items]


def uids(stored: dict[str, Stored], *keys: str) -> set[str]:
    return {stored[k].study.uid for k in keys}


def without_retrieve_url(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(({k: v for k, v in i.items() if k != RETRIEVE_URL} for i in items),
                  key=lambda i: str(i[STUDY_UID]["Value"][0]))


def test_the_platform_needs_decoding_and_health_says_so(archive: Archive,
                                                        stored: dict[str, Stored]) -> None:
    encoded = requests.get(f"{archive.orthanc_url}/dicom-web/studies",
                           params={"PatientName": "张*"}, auth=archive.auth, timeout=30)
    assert encoded.status_code == 200 and encoded.json() == []  # the defect this route is for
    health = archive.http.get(f"{archive.api_url}/api/health", timeout=5).json()
    assert "qido-decoding" in health["features"]
    assert health["platform"]["name"] == platform.current().name
    assert health["platform"]["dicomWeb"] and health["platform"]["gdcm"]
    by_name = {s["name"]: s for s in health["services"]}
    assert by_name["orthanc"]["status"] == "ok"
    assert by_name["plugin"]["status"] == "ok", by_name["plugin"]
    assert by_name["state-db"]["status"] == "ok" and by_name["control-db"]["status"] == "ok"


@pytest.mark.parametrize("name, keys", [
    ("张*", ("zhang-wei-1", "zhang-san", "zhang-wei-2")),
    ("欧阳*", ("ouyang-na",)),
    ("张^伟", ("zhang-wei-1", "zhang-wei-2")),
    ("*李*", ("li-na",)),
    ("Zhang*", ("zhang-wei-latin",)),
])
def test_studies_by_name(archive: Archive, stored: dict[str, Stored], name: str,
                         keys: tuple[str, ...]) -> None:
    found = api(archive, "studies", {"PatientName": name})
    assert set(values(found, STUDY_UID)) == uids(stored, *keys)
    # The answer is DICOMweb's own JSON: the same as DICOMweb gives for those UIDs directly.
    by_uid = direct(archive, "studies", "StudyInstanceUID=" + ",".join(sorted(uids(stored, *keys))))
    assert without_retrieve_url(found) == without_retrieve_url(by_uid)


def test_a_chinese_name_with_a_date_range(archive: Archive, stored: dict[str, Stored]) -> None:
    found = api(archive, "studies", {"PatientName": "张*", "StudyDate": "20240101-20240131"})
    assert set(values(found, STUDY_UID)) == uids(stored, "zhang-wei-1", "zhang-san")
    assert sorted(values(found, STUDY_DATE)) == ["20240101", "20240105"]


def test_paging_by_limit_and_offset_covers_every_match_once(archive: Archive,
                                                            stored: dict[str, Stored]) -> None:
    pages = [api(archive, "studies", {"PatientName": "张*", "limit": 2, "offset": offset})
             for offset in (0, 2, 4)]
    assert [len(p) for p in pages] == [2, 1, 0]
    seen = [uid for page in pages for uid in values(page, STUDY_UID)]
    assert len(seen) == len(set(seen)) == 3
    assert set(seen) == uids(stored, "zhang-wei-1", "zhang-san", "zhang-wei-2")
    # The same order as Orthanc's own search, so pages are stable.
    whole = api(archive, "studies", {"PatientName": "张*"})
    assert values(whole, STUDY_UID) == seen


def test_includefield_and_retrieve_urls_for_the_public_host(archive: Archive,
                                                            stored: dict[str, Stored]) -> None:
    found = api(archive, "studies",
                {"PatientName": "欧阳^娜", "includefield": STUDY_DESCRIPTION})
    assert values(found, STUDY_DESCRIPTION) == ["CT ouyang-na"]
    url = found[0][RETRIEVE_URL]["Value"][0]
    assert url.startswith(f"http://127.0.0.1:{archive.api_port}/dicom-web/studies/"), url


def test_series_level_search_by_chinese_name(archive: Archive, stored: dict[str, Stored]) -> None:
    found = api(archive, "series", {"PatientName": "张^伟", "Modality": "CT"})
    assert set(values(found, SERIES_UID)) == {stored["zhang-wei-1"].series_uid,
                                              stored["zhang-wei-2"].series_uid}
    assert PATIENT_NAME in found[0]  # study-level attributes still come with each series
    nested = api(archive, f"studies/{stored['zhang-san'].study.uid}/series",
                 {"PatientName": "张*"})
    assert values(nested, SERIES_UID) == [stored["zhang-san"].series_uid]


def test_instance_level_search_by_chinese_name(archive: Archive,
                                               stored: dict[str, Stored]) -> None:
    everywhere = api(archive, "instances", {"PatientName": "欧阳*"})
    assert set(values(everywhere, SOP_UID)) == set(stored["ouyang-na"].sop_uids)
    one = stored["zhang-wei-2"]
    in_series = api(archive, f"studies/{one.study.uid}/series/{one.series_uid}/instances",
                    {"PatientName": "张^伟", "limit": 1, "offset": 1})
    assert len(in_series) == 1 and values(in_series, SOP_UID)[0] in one.sop_uids
    in_study = api(archive, f"studies/{one.study.uid}/instances", {"PatientName": "张*"})
    assert set(values(in_study, SOP_UID)) == set(one.sop_uids)


def test_an_ascii_search_is_exactly_dicomwebs(archive: Archive, stored: dict[str, Stored]) -> None:
    through = api(archive, "studies", {"PatientName": "Zhang*", "StudyDate": "20240101"})
    itself = direct(archive, "studies", "PatientName=Zhang*&StudyDate=20240101")
    assert without_retrieve_url(through) == without_retrieve_url(itself)
    assert values(through, STUDY_UID) == [stored["zhang-wei-latin"].study.uid]


def test_bad_queries_are_problems(archive: Archive, stored: dict[str, Stored]) -> None:
    url = f"{archive.api_url}/api/dicom-web/studies"
    for query, parameter in (("limit=x", "limit"), ("limit=-1", "limit"),
                             ("PatientName=%FF", "(query)"), ("PatientNme=Li*", "PatientNme"),
                             ("PatientID=a&PatientID=b", "PatientID")):
        response = archive.http.get(f"{url}?{query}", timeout=5)
        assert response.status_code == 400, query
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["parameter"] == parameter
    unknown = archive.http.get(url, params={"NoSuchKeyword": "张"}, timeout=5)
    assert unknown.status_code == 400 and "Unknown DICOM tag" not in unknown.text
    busted = archive.http.get(url, params={"PatientID": "none-such", "_": "1733"}, timeout=5)
    assert busted.status_code == 200 and busted.json() == []
    assert busted.headers["warning"] == ('299 archive "query parameters ignored '
                                         '(not DICOM attributes): _"')


def test_jobs_api_enqueues_verify_for_a_stored_study(archive: Archive,
                                                     stored: dict[str, Stored]) -> None:
    study_id = requests.post(f"{archive.orthanc_url}/tools/lookup", auth=archive.auth,
                             data=stored["li-na"].study.uid, timeout=10).json()[0]["ID"]
    created = archive.http.post(f"{archive.api_url}/api/jobs", timeout=5, json={
        "kind": "archive.verify", "params": {"study": study_id}, "idempotencyKey": "api-test"})
    assert created.status_code == 201
    listed = archive.http.get(f"{archive.api_url}/api/jobs", params={"kind": "archive.verify"},
                          timeout=5).json()
    assert listed["total"] == 1 and listed["items"][0]["params"] == {"study": study_id}


def test_openapi_is_served(archive: Archive) -> None:
    spec = archive.http.get(f"{archive.api_url}/api/openapi.json", timeout=5).json()
    assert spec["info"]["title"] == "Regional archive API" and "/api/jobs" in spec["paths"]
    assert archive.http.get(f"{archive.api_url}/api/docs", timeout=5).status_code == 200


def test_missing_credential_stops_the_api_with_a_clear_message(archive: Archive,
                                                              tmp_path: Path) -> None:
    assert archive.orthanc is not None
    config = tmp_path / "config"
    shutil.copytree(archive.orthanc.config_dir, config)
    env = {**archive.env, "ARCHIVE_DATA": str(tmp_path / "data")}
    done = subprocess.run([sys.executable, "-m", "archive_api", "--config", str(config)],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "internal-credential.json does not exist" in done.stderr
    assert "archive_door" in done.stderr
