"""M1: the archive speaks DICOM (DIMSE) — C-ECHO, C-STORE, C-FIND, C-MOVE, C-GET.

The peers are real: DCMTK's echoscu/storescu/findscu/movescu/getscu and a DCMTK storescp as the
move destination, then pynetdicom's AE API for the same services. The receiving AE is also the
query/retrieve AE (REQUIREMENTS M1). Test data belongs to patients whose IDs carry a token unique
to the run, so other tests storing into the same archive cannot change what these queries match.

Character sets: Chinese names are stored in UTF-8 (ISO_IR 192) and, for one patient, in
GB18030; queries are sent in either, and whatever character set the archive answers in, the
decoded names must equal the originals (PS3.5 6.1, PS3.3 C.12.1.1.2).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest
import requests
from pydicom.dataset import Dataset
from pydicom.uid import (
    CTImageStorage,
    DigitalXRayImageStorageForPresentation,
    ExplicitVRLittleEndian,
)
from pynetdicom import AE, StoragePresentationContexts, evt
from pynetdicom.association import Association
from pynetdicom.events import Event
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    PatientRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

from archive_tools import synthetic
from archive_tools.synthetic import PatientInfo, StudyInfo
from testkit import dcmtk
from testkit import dicom_data as dd
from testkit.orthanc_process import free_port
from testkit.stack import Stack

pytestmark = pytest.mark.integration

CALLING_AET = "DIMSETEST"


# --- test data: two patients, three studies, one GB18030 patient --------------------------------

@dataclass
class StudyData:
    study: StudyInfo
    patient: PatientInfo
    datasets: list[Dataset]

    @property
    def uid(self) -> str:
        return self.study.uid

    def series(self) -> dict[str, list[Dataset]]:
        out: dict[str, list[Dataset]] = {}
        for ds in self.datasets:
            out.setdefault(str(ds.SeriesInstanceUID), []).append(ds)
        return out

    def series_of(self, modality: str) -> list[Dataset]:
        (found,) = [s for s in self.series().values() if s[0].Modality == modality]
        return found


@dataclass
class DimseData:
    token: str
    zhang: PatientInfo
    wang: PatientInfo
    chest: StudyData       # Zhang: CT (3) + MR (2) + DX (1), 2024-03-15
    prior: StudyData       # Zhang: CT (2), 2023-11-05
    echo: StudyData        # Wang: US cine (1 multi-frame) + DX (1), 2024-06-01
    folder: Path
    storescu: dcmtk.ToolResult | None = None

    @property
    def patient_pattern(self) -> str:
        return f"DIMSE-{self.token}-*"

    def studies(self) -> list[StudyData]:
        return [self.chest, self.prior, self.echo]

    def all_datasets(self) -> list[Dataset]:
        return [ds for s in self.studies() for ds in s.datasets]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> DimseData:
    token = dd.unique_token()
    zhang = PatientInfo("张^伟", f"DIMSE-{token}-1", "19650412", "M")
    wang = PatientInfo("WANG^FANG=王^芳", f"DIMSE-{token}-2", "19881120", "F")
    chest_study = StudyInfo(date="20240315", time="093000", accession=f"A{token}",
                            description="胸部CT平扫")
    chest = StudyData(chest_study, zhang, [
        *synthetic.ct_volume(3, 64, 64, patient=zhang, study=chest_study, series_number=1,
                             series_description="肺窗 5mm", seed=1),
        *synthetic.mr_series(2, 64, 64, patient=zhang, study=chest_study, series_number=2,
                             bits_stored=16, seed=2),
        synthetic.dx_image(64, 64, patient=zhang, study=chest_study, series_number=3,
                           bits_stored=8, seed=3),
    ])
    prior_study = StudyInfo(date="20231105", time="141500", accession=f"B{token}",
                            description="胸部CT复查")
    prior = StudyData(prior_study, zhang,
                      synthetic.ct_volume(2, 64, 64, patient=zhang, study=prior_study, seed=4))
    echo_study = StudyInfo(date="20240601", time="080000", accession=f"C{token}",
                           description="心脏超声")
    echo = StudyData(echo_study, wang, [
        synthetic.us_cine(4, 48, 64, patient=wang, study=echo_study, color=False, seed=5),
        synthetic.dx_image(64, 64, patient=wang, study=echo_study, series_number=5, seed=6),
    ])
    folder = tmp_path_factory.mktemp("dimse-data")
    result = DimseData(token, zhang, wang, chest, prior, echo, folder)
    synthetic.write_files(result.all_datasets(), folder / "in")
    return result


@pytest.fixture(scope="module")
def stored(data: DimseData, archive: Stack) -> DimseData:
    """All three studies, sent by DCMTK storescu in one association."""
    data.storescu = dcmtk.run("storescu", "-v", "-aet", CALLING_AET, "-aec", archive.aet,
                              "+sd", "127.0.0.1", archive.dicom_port, data.folder / "in")
    return data


def orthanc_id(http: requests.Session, archive: Stack, uid: str, kind: str) -> str:
    r = http.post(f"{archive.orthanc_url}/tools/lookup", data=uid, timeout=10)
    r.raise_for_status()
    found = [item["ID"] for item in r.json() if item["Type"] == kind]
    assert len(found) == 1, f"{kind} {uid} not in the archive: {r.text}"
    return str(found[0])


# --- DCMTK clients ------------------------------------------------------------------------------

_find_runs = itertools.count()


def findscu(archive: Stack, folder: Path, model: str, *args: str,
            query_file: Path | None = None) -> list[Dataset]:
    """Run findscu with ``-X`` and read each response identifier (rsp0001.dcm …) with pydicom.

    ``args`` are options and ``-k`` keys; ``query_file`` a query dataset sent as written.
    """
    out = folder / f"find-{next(_find_runs)}"
    out.mkdir(parents=True)
    query = [query_file] if query_file else []
    dcmtk.run("findscu", model, "-X", "-od", out, "-aet", CALLING_AET, "-aec", archive.aet,
              *args, "127.0.0.1", archive.dicom_port, *query)
    return [pydicom.dcmread(path) for path in sorted(out.glob("rsp*.dcm"))]


k = dcmtk.keys


UTF8_QUERY = ["-k", "0008,0005=ISO_IR 192"]


def values(responses: Sequence[Dataset], keyword: str) -> set[str]:
    return {str(ds.get(keyword, "")) for ds in responses}


def test_echoscu(archive: Stack) -> None:
    result = dcmtk.run("echoscu", "-v", "-aet", CALLING_AET, "-aec", archive.aet, "127.0.0.1",
                       archive.dicom_port)
    assert "Received Echo Response (Success)" in result.output


def test_storescu_stores_a_multi_series_study(stored: DimseData, archive: Stack,
                                              http: requests.Session) -> None:
    assert stored.storescu is not None
    successes = stored.storescu.output.count("Received Store Response (Success)")
    assert successes == len(stored.all_datasets()), stored.storescu.output

    study = http.get(f"{archive.orthanc_url}/studies/"
                     f"{orthanc_id(http, archive, stored.chest.uid, 'Study')}", timeout=10).json()
    assert study["MainDicomTags"]["StudyDescription"] == "胸部CT平扫"
    assert study["PatientMainDicomTags"]["PatientName"] == "张^伟"
    assert len(study["Series"]) == 3
    counts = {}
    for series_id in study["Series"]:
        series = http.get(f"{archive.orthanc_url}/series/{series_id}", timeout=10).json()
        counts[series["MainDicomTags"]["Modality"]] = len(series["Instances"])
    assert counts == {"CT": 3, "MR": 2, "DX": 1}

    patient = http.get(f"{archive.orthanc_url}/patients/"
                       f"{orthanc_id(http, archive, stored.zhang.patient_id, 'Patient')}",
                       timeout=10).json()
    assert len(patient["Studies"]) == 2
    instance = orthanc_id(http, archive, str(stored.chest.datasets[0].SOPInstanceUID), "Instance")
    meta = http.get(f"{archive.orthanc_url}/instances/{instance}/metadata?expand", timeout=10).json()
    assert (meta["RemoteAET"], meta["CalledAET"]) == (CALLING_AET, archive.aet)


# --- C-FIND with findscu ------------------------------------------------------------------------

def test_find_patients_patient_root(stored: DimseData, archive: Stack,
                                    tmp_path: Path) -> None:
    found = findscu(archive, tmp_path, "-P", *UTF8_QUERY, *k(
        QueryRetrieveLevel="PATIENT", PatientID=stored.patient_pattern, PatientName="",
        PatientBirthDate="", PatientSex="", NumberOfPatientRelatedStudies="",
        NumberOfPatientRelatedInstances=""))
    by_id = {str(ds.PatientID): ds for ds in found}
    assert set(by_id) == {stored.zhang.patient_id, stored.wang.patient_id}
    zhang, wang = by_id[stored.zhang.patient_id], by_id[stored.wang.patient_id]
    assert (str(zhang.PatientName), zhang.PatientBirthDate, zhang.PatientSex) == (
        "张^伟", "19650412", "M")
    assert str(wang.PatientName) == "WANG^FANG=王^芳"
    assert wang.PatientName.ideographic == "王^芳"
    assert int(zhang.NumberOfPatientRelatedStudies) == 2
    assert int(zhang.NumberOfPatientRelatedInstances) == 8
    assert int(wang.NumberOfPatientRelatedStudies) == 1


@pytest.mark.parametrize("model", ["-S", "-P"], ids=["study-root", "patient-root"])
def test_find_studies(model: str, stored: DimseData, archive: Stack,
                      tmp_path: Path) -> None:
    found = findscu(archive, tmp_path, model, *UTF8_QUERY, *k(
        QueryRetrieveLevel="STUDY", PatientID=stored.zhang.patient_id, StudyInstanceUID="",
        StudyDate="", StudyTime="", AccessionNumber="", StudyDescription="", PatientName="",
        ModalitiesInStudy="", NumberOfStudyRelatedSeries="",
        NumberOfStudyRelatedInstances=""))
    by_uid = {str(ds.StudyInstanceUID): ds for ds in found}
    assert set(by_uid) == {stored.chest.uid, stored.prior.uid}
    chest = by_uid[stored.chest.uid]
    assert (chest.StudyDate, chest.StudyTime, chest.AccessionNumber) == (
        "20240315", "093000", f"A{stored.token}")
    assert (chest.StudyDescription, str(chest.PatientName)) == ("胸部CT平扫", "张^伟")
    assert set(chest.ModalitiesInStudy) == {"CT", "MR", "DX"}
    assert (int(chest.NumberOfStudyRelatedSeries), int(chest.NumberOfStudyRelatedInstances)) == (
        3, 6)
    assert by_uid[stored.prior.uid].StudyDescription == "胸部CT复查"


def test_find_studies_by_date_range(stored: DimseData, archive: Stack,
                                    tmp_path: Path) -> None:
    found = findscu(archive, tmp_path, "-S", *k(
        QueryRetrieveLevel="STUDY", PatientID=stored.patient_pattern,
        StudyDate="20240101-20241231", StudyInstanceUID=""))
    assert values(found, "StudyInstanceUID") == {stored.chest.uid, stored.echo.uid}
    found = findscu(archive, tmp_path, "-S", *k(
        QueryRetrieveLevel="STUDY", PatientID=stored.patient_pattern, StudyDate="-20231231",
        StudyInstanceUID=""))
    assert values(found, "StudyInstanceUID") == {stored.prior.uid}


def test_find_series(stored: DimseData, archive: Stack, tmp_path: Path) -> None:
    found = findscu(archive, tmp_path, "-S", *UTF8_QUERY, *k(
        QueryRetrieveLevel="SERIES", StudyInstanceUID=stored.chest.uid, SeriesInstanceUID="",
        Modality="", SeriesNumber="", SeriesDescription="", NumberOfSeriesRelatedInstances=""))
    got = {(ds.Modality, int(ds.SeriesNumber), ds.SeriesDescription,
            int(ds.NumberOfSeriesRelatedInstances), str(ds.SeriesInstanceUID)) for ds in found}
    expected = {(s[0].Modality, int(s[0].SeriesNumber), s[0].SeriesDescription, len(s), uid)
                for uid, s in stored.chest.series().items()}
    assert got == expected
    assert ("CT", 1, "肺窗 5mm") in {g[:3] for g in got}


def test_find_series_by_modality(stored: DimseData, archive: Stack,
                                 tmp_path: Path) -> None:
    found = findscu(archive, tmp_path, "-S", *k(
        QueryRetrieveLevel="SERIES", StudyInstanceUID=stored.chest.uid, Modality="MR",
        SeriesInstanceUID=""))
    assert values(found, "SeriesInstanceUID") == {
        str(stored.chest.series_of("MR")[0].SeriesInstanceUID)}


@pytest.mark.parametrize("model", ["-S", "-P"], ids=["study-root", "patient-root"])
def test_find_images(model: str, stored: DimseData, archive: Stack,
                     tmp_path: Path) -> None:
    ct = stored.chest.series_of("CT")
    patient_key = {"PatientID": stored.zhang.patient_id} if model == "-P" else {}
    found = findscu(archive, tmp_path, model, *k(
        QueryRetrieveLevel="IMAGE", **patient_key, StudyInstanceUID=stored.chest.uid,
        SeriesInstanceUID=str(ct[0].SeriesInstanceUID), SOPInstanceUID="", SOPClassUID="",
        InstanceNumber=""))
    got = {(str(ds.SOPInstanceUID), str(ds.SOPClassUID), int(ds.InstanceNumber)) for ds in found}
    assert got == {(str(ds.SOPInstanceUID), CTImageStorage, int(ds.InstanceNumber)) for ds in ct}


@pytest.mark.parametrize(("pattern", "who"), [
    ("张*", {"zhang"}),
    ("*芳", {"wang"}),
    ("wang*", {"wang"}),          # person names match case-insensitively in Orthanc
    ("张?伟", {"zhang"}),          # '?' matches one character, here the '^'
    ("*", {"zhang", "wang"}),
], ids=["prefix-chinese", "suffix-ideographic", "latin-case-insensitive", "question-mark",
        "star"])
def test_find_wildcards_on_patient_name(pattern: str, who: set[str], stored: DimseData,
                                        archive: Stack, tmp_path: Path) -> None:
    found = findscu(archive, tmp_path, "-P", *UTF8_QUERY, *k(
        QueryRetrieveLevel="PATIENT", PatientID=stored.patient_pattern, PatientName=pattern))
    ids = {"zhang": stored.zhang.patient_id, "wang": stored.wang.patient_id}
    assert values(found, "PatientID") == {ids[w] for w in who}


@pytest.mark.xfail(strict=True, reason=(
    "Orthanc 1.10.1 and 1.12.7 (both platforms) match '?' against one byte of the UTF-8 "
    "value, not one character "
    "(PS3.4 C.2.2.2.4): '张^?' does not match '张^伟'"))
def test_find_question_mark_matches_one_chinese_character(
        stored: DimseData, archive: Stack, tmp_path: Path) -> None:
    found = findscu(archive, tmp_path, "-P", *UTF8_QUERY, *k(
        QueryRetrieveLevel="PATIENT", PatientID=stored.patient_pattern, PatientName="张^?"))
    assert values(found, "PatientID") == {stored.zhang.patient_id}


def test_find_patient_id_wildcards(stored: DimseData, archive: Stack,
                                   tmp_path: Path) -> None:
    found = findscu(archive, tmp_path, "-P", *k(
        QueryRetrieveLevel="PATIENT", PatientID=f"DIMSE-{stored.token}-?"))
    assert values(found, "PatientID") == {stored.zhang.patient_id, stored.wang.patient_id}
    found = findscu(archive, tmp_path, "-P", *k(
        QueryRetrieveLevel="PATIENT", PatientID=f"*{stored.token}-2"))
    assert values(found, "PatientID") == {stored.wang.patient_id}


def test_find_utf8_chinese_name_round_trips(stored: DimseData, archive: Stack,
                                            tmp_path: Path) -> None:
    """A UTF-8 query (0008,0005 = ISO_IR 192) on an exact Chinese name returns it intact."""
    found = findscu(archive, tmp_path, "-S", *UTF8_QUERY, *k(
        QueryRetrieveLevel="STUDY", PatientName="张^伟", PatientID=stored.patient_pattern,
        StudyDescription="", StudyInstanceUID=""))
    assert values(found, "StudyInstanceUID") == {stored.chest.uid, stored.prior.uid}
    for ds in found:
        # Whatever the archive answers in, its Specific Character Set must decode the name.
        assert ds.SpecificCharacterSet in ("ISO_IR 192", "GB18030")
        assert str(ds.PatientName) == "张^伟"
        assert ds.StudyDescription in ("胸部CT平扫", "胸部CT复查")


# --- GB18030 ------------------------------------------------------------------------------------

GB_NAME = "李^喆"  # 喆 is in GBK/GB18030 but not in GB2312
GB_DESCRIPTION = "头颅CT平扫"


@pytest.fixture(scope="module")
def gb18030(archive: Stack, tmp_path_factory: pytest.TempPathFactory
            ) -> tuple[PatientInfo, Dataset]:
    """An instance encoded in GB18030, stored with storescu."""
    patient = PatientInfo(GB_NAME, f"GB-{dd.unique_token()}", "19720101", "M")
    study = StudyInfo(description=GB_DESCRIPTION, referring_physician="赵^喆")
    (ds,) = synthetic.ct_volume(1, 32, 32, patient=patient, study=study, series_number=1,
                                series_description="骨窗", charset="GB18030")
    path = synthetic.write_file(ds, tmp_path_factory.mktemp("gb18030") / "gb18030.dcm")
    raw = path.read_bytes()
    assert GB_NAME.encode("gb18030") in raw and GB_NAME.encode("utf-8") not in raw
    dcmtk.run("storescu", "-aet", CALLING_AET, "-aec", archive.aet, "127.0.0.1",
              archive.dicom_port, path)
    return patient, ds


def test_gb18030_instance_is_kept_as_sent_and_indexed_in_unicode(
        gb18030: tuple[PatientInfo, Dataset], archive: Stack,
        http: requests.Session) -> None:
    patient, ds = gb18030
    instance = orthanc_id(http, archive, str(ds.SOPInstanceUID), "Instance")
    tags = http.get(f"{archive.orthanc_url}/instances/{instance}/simplified-tags", timeout=10).json()
    assert (tags["PatientName"], tags["StudyDescription"]) == (GB_NAME, GB_DESCRIPTION)
    stored_file = http.get(f"{archive.orthanc_url}/instances/{instance}/file", timeout=10).content
    assert GB_NAME.encode("gb18030") in stored_file
    assert str(dd.read(stored_file).PatientName) == GB_NAME


@pytest.mark.parametrize("query_charset", ["ISO_IR 192", "GB18030"])
def test_gb18030_patient_found_by_a_query_in_either_charset(
        query_charset: str, gb18030: tuple[PatientInfo, Dataset], archive: Stack,
        tmp_path: Path) -> None:
    """The query is a file findscu sends as is, encoded in ``query_charset``."""
    patient, _ = gb18030
    query = Dataset()
    query.SpecificCharacterSet = query_charset
    query.QueryRetrieveLevel = "STUDY"
    query.PatientName = "李*"
    query.PatientID = patient.patient_id
    query.StudyDescription = ""
    query.ReferringPhysicianName = ""
    query.StudyInstanceUID = ""
    query_file = tmp_path / "query.dcm"
    query.save_as(query_file, implicit_vr=False, little_endian=True)
    assert ("李".encode("gb18030" if query_charset == "GB18030" else "utf-8")
            in query_file.read_bytes())
    (answer,) = findscu(archive, tmp_path, "-S", query_file=query_file)
    assert answer.SpecificCharacterSet in ("ISO_IR 192", "GB18030")
    assert str(answer.PatientName) == GB_NAME
    assert answer.StudyDescription == GB_DESCRIPTION
    assert str(answer.ReferringPhysicianName) == "赵^喆"


def test_gb18030_patient_found_with_pynetdicom(gb18030: tuple[PatientInfo, Dataset],
                                               archive: Stack) -> None:
    patient, ds = gb18030
    query = Dataset()
    query.SpecificCharacterSet = "GB18030"
    query.QueryRetrieveLevel = "PATIENT"
    query.PatientName = GB_NAME
    query.PatientID = ""
    answers = c_find(archive, query, PatientRootQueryRetrieveInformationModelFind)
    ids = {str(a.PatientID) for a in answers}
    assert patient.patient_id in ids
    mine = [a for a in answers if a.PatientID == patient.patient_id]
    assert [str(a.PatientName) for a in mine] == [GB_NAME]


# --- C-MOVE with movescu to a real storescp, C-GET with getscu ----------------------------------

@pytest.fixture
def storescp(tmp_path: Path, archive: Stack, http: requests.Session
             ) -> Iterator[dcmtk.StoreScp]:
    """A DCMTK storescp, registered in the archive at run time (/api/modalities, no restart)."""
    with dcmtk.StoreScp(tmp_path / "received", aet="DIMSETESTSCP") as scp, \
            archive.known_modality("dimse-test-storescp", scp.aet, scp.port):
        yield scp


def retrieve_keys(level: str, data: DimseData) -> tuple[str, list[str], list[Dataset]]:
    """(information model, -k keys, expected instances) for a retrieve at ``level``."""
    ct = data.chest.series_of("CT")
    if level == "PATIENT":
        return "-P", k(QueryRetrieveLevel="PATIENT", PatientID=data.zhang.patient_id), [
            *data.chest.datasets, *data.prior.datasets]
    study = k(StudyInstanceUID=data.chest.uid)
    if level == "STUDY":
        return "-S", k(QueryRetrieveLevel="STUDY") + study, data.chest.datasets
    series = study + k(SeriesInstanceUID=str(ct[0].SeriesInstanceUID))
    if level == "SERIES":
        return "-S", k(QueryRetrieveLevel="SERIES") + series, ct
    return "-S", k(QueryRetrieveLevel="IMAGE") + series + k(
        SOPInstanceUID=str(ct[1].SOPInstanceUID)), [ct[1]]


LEVELS = ["PATIENT", "STUDY", "SERIES", "IMAGE"]


def assert_same_instances(received: Sequence[Path], expected: Sequence[Dataset]) -> None:
    got = {str(pydicom.dcmread(p).SOPInstanceUID): pydicom.dcmread(p) for p in received}
    assert len(received) == len(expected), f"{len(received)} files for {len(expected)} instances"
    assert set(got) == dd.sop_instance_uids(expected)
    for ds in expected:
        copy = got[str(ds.SOPInstanceUID)]
        assert copy.PixelData == ds.PixelData
        assert str(copy.PatientName) == str(ds.PatientName)


@pytest.mark.parametrize("level", LEVELS)
def test_movescu_to_storescp(level: str, stored: DimseData, archive: Stack,
                             storescp: dcmtk.StoreScp) -> None:
    model, keys, expected = retrieve_keys(level, stored)
    result = dcmtk.run("movescu", "-v", model, "-aet", CALLING_AET, "-aec", archive.aet,
                       "-aem", storescp.aet, *keys, "127.0.0.1", archive.dicom_port)
    assert "Received Final Move Response (Success)" in result.output, result.output
    assert_same_instances(storescp.received(), expected)


def test_movescu_to_an_unknown_destination_fails(stored: DimseData,
                                                 archive: Stack) -> None:
    result = dcmtk.run("movescu", "-v", "-S", "-aet", CALLING_AET, "-aec", archive.aet,
                       "-aem", "NOWHERE", *k(QueryRetrieveLevel="STUDY",
                                             StudyInstanceUID=stored.chest.uid),
                       "127.0.0.1", archive.dicom_port, check=False)
    assert "Received Final Move Response (Failed" in result.output, result.output


@pytest.mark.xfail(strict=True, reason=(
    "Orthanc 1.10.1 and 1.12.7 (both platforms) answer an unknown move destination with "
    "0xC000 (Failed: Unable to "
    "process), not 0xA801 (Refused: Move Destination unknown, PS3.4 C.4.2.1.5)"))
def test_move_to_an_unknown_destination_is_refused_with_a801(stored: DimseData,
                                                             archive: Stack) -> None:
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = stored.chest.uid
    assoc = associate(archive, StudyRootQueryRetrieveInformationModelMove)
    try:
        statuses = [int(status.Status) for status, _ in assoc.send_c_move(
            query, "NOWHERE", StudyRootQueryRetrieveInformationModelMove) if status]
    finally:
        assoc.release()
    assert statuses == [0xA801], [f"0x{s:04X}" for s in statuses]


@pytest.mark.parametrize("level", LEVELS)
def test_getscu(level: str, stored: DimseData, archive: Stack, tmp_path: Path) -> None:
    model, keys, expected = retrieve_keys(level, stored)
    out = tmp_path / "got"
    out.mkdir()
    result = dcmtk.run("getscu", "-v", model, "-aet", CALLING_AET, "-aec", archive.aet, *keys,
                       "-od", out, "127.0.0.1", archive.dicom_port)
    assert "Received C-GET Response (Success)" in result.output, result.output
    assert "Number of Failed Suboperations    : 0" in result.output, result.output
    assert_same_instances(sorted(out.iterdir()), expected)


# --- the same services through pynetdicom's AE API ----------------------------------------------

def associate(archive: Stack, *contexts: str) -> Association:
    ae = AE(ae_title="PYNETDICOM")
    for context in contexts:
        ae.add_requested_context(context)
    assoc = ae.associate("127.0.0.1", archive.dicom_port, ae_title=archive.aet)
    assert assoc.is_established, "association rejected or aborted"
    return assoc


def c_find(archive: Stack, query: Dataset, model: str) -> list[Dataset]:
    assoc = associate(archive, model)
    answers: list[Dataset] = []
    try:
        for status, identifier in assoc.send_c_find(query, model):
            assert status is not None and "Status" in status, "no C-FIND response"
            if status.Status in (0xFF00, 0xFF01):
                assert identifier is not None, "pending C-FIND response without identifier"
                answers.append(identifier)
            else:
                assert status.Status == 0x0000, f"C-FIND status 0x{status.Status:04X}"
    finally:
        assoc.release()
    return answers


def test_pynetdicom_echo(archive: Stack) -> None:
    assoc = associate(archive, Verification)
    try:
        status = assoc.send_c_echo()
    finally:
        assoc.release()
    assert status.Status == 0x0000


def test_pynetdicom_store(archive: Stack, http: requests.Session) -> None:
    patient = PatientInfo("孙^悦", f"PYN-{dd.unique_token()}", "20010203", "F")
    ds = synthetic.dx_image(64, 64, patient=patient, study=StudyInfo(description="手部正位"),
                            bits_stored=8, seed=9)
    ae = AE(ae_title="PYNETDICOM")
    ae.add_requested_context(DigitalXRayImageStorageForPresentation, [ExplicitVRLittleEndian])
    assoc = ae.associate("127.0.0.1", archive.dicom_port, ae_title=archive.aet)
    assert assoc.is_established
    try:
        status = assoc.send_c_store(ds)
    finally:
        assoc.release()
    assert status.Status == 0x0000
    instance = orthanc_id(http, archive, str(ds.SOPInstanceUID), "Instance")
    tags = http.get(f"{archive.orthanc_url}/instances/{instance}/simplified-tags", timeout=10).json()
    assert (tags["PatientName"], tags["PatientID"]) == ("孙^悦", patient.patient_id)
    stored_file = dd.read(http.get(f"{archive.orthanc_url}/instances/{instance}/file", timeout=10).content)
    assert stored_file.PixelData == ds.PixelData


def test_pynetdicom_find(stored: DimseData, archive: Stack) -> None:
    query = Dataset()
    query.SpecificCharacterSet = "ISO_IR 192"
    query.QueryRetrieveLevel = "STUDY"
    query.PatientID = stored.patient_pattern
    query.StudyInstanceUID = ""
    query.PatientName = ""
    query.StudyDescription = ""
    query.NumberOfStudyRelatedInstances = ""
    answers = c_find(archive, query, StudyRootQueryRetrieveInformationModelFind)
    got = {(str(a.StudyInstanceUID), str(a.PatientName), a.StudyDescription,
            int(a.NumberOfStudyRelatedInstances)) for a in answers}
    assert got == {(s.uid, s.patient.name, s.study.description, len(s.datasets))
                   for s in stored.studies()}


def test_pynetdicom_get(stored: DimseData, archive: Stack) -> None:
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = stored.echo.uid
    got = dd.c_get(archive.dicom_port, archive.aet, query,
                   sop_classes={str(ds.SOPClassUID) for ds in stored.echo.datasets},
                   transfer_syntaxes=[ExplicitVRLittleEndian])
    assert got.status == 0x0000
    by_uid = got.by_sop_instance_uid()
    assert set(by_uid) == dd.sop_instance_uids(stored.echo.datasets)
    for ds in stored.echo.datasets:
        assert by_uid[str(ds.SOPInstanceUID)].PixelData == ds.PixelData
    cine = by_uid[str(stored.echo.datasets[0].SOPInstanceUID)]
    assert int(cine.NumberOfFrames) == 4


def test_pynetdicom_move_to_a_pynetdicom_scp(stored: DimseData, archive: Stack,
                                             http: requests.Session) -> None:
    received: list[Dataset] = []
    lock = threading.Lock()

    def on_store(event: Event) -> int:
        if event.dataset is None:
            return 0xC210
        with lock:
            received.append(event.dataset)
        return 0x0000

    scp_ae = AE(ae_title="PYNETDICOMSCP")
    scp_ae.supported_contexts = StoragePresentationContexts
    port = free_port()
    server = scp_ae.start_server(("127.0.0.1", port), block=False,
                                 evt_handlers=[(evt.EVT_C_STORE, on_store)])
    assert server is not None
    try:
        archive.add_modality("dimse-test-pynetdicom", "PYNETDICOMSCP", port)
        query = Dataset()
        query.QueryRetrieveLevel = "SERIES"
        query.StudyInstanceUID = stored.chest.uid
        query.SeriesInstanceUID = str(stored.chest.series_of("MR")[0].SeriesInstanceUID)
        assoc = associate(archive, StudyRootQueryRetrieveInformationModelMove)
        try:
            statuses = [int(status.Status) for status, _ in assoc.send_c_move(
                query, "PYNETDICOMSCP", StudyRootQueryRetrieveInformationModelMove) if status]
        finally:
            assoc.release()
    finally:
        server.shutdown()
        archive.remove_modality("dimse-test-pynetdicom")
    assert statuses[-1] == 0x0000, [hex(s) for s in statuses]
    assert {str(ds.SOPInstanceUID) for ds in received} == dd.sop_instance_uids(
        stored.chest.series_of("MR"))
    assert all(str(ds.PatientName) == "张^伟" for ds in received)
