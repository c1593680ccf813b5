"""STOW-RS pure parts: the UID reader (archive_api.dicom_header) and the answer
(archive_api.stow_response: status, DICOM JSON and XML, Warning headers, Accept)."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from urllib.parse import unquote

import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian, ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from archive_api.dicom_header import read_identifiers
from archive_api.stow_response import (
    CANNOT_UNDERSTAND, COERCED, DATASET_MISMATCH, PartOutcome, choose_format, response_dataset,
    status_of, to_xml, warning_header,
)
from archive_tools import synthetic
from archive_tools.synthetic import PatientInfo

BASE = "http://door:8042/dicom-web"


def _instance() -> Dataset:
    ds = synthetic.dx_image(16, 16, patient=PatientInfo("张^伟", "P-1"), seed=1)
    # A sequence of undefined length before the UIDs the reader needs, nested twice.
    inner = Dataset()
    inner.CodeValue = "X"
    item = Dataset()
    item.ConceptNameCodeSequence = Sequence([inner])
    ds.ProcedureCodeSequence = Sequence([item, item])
    return ds


def _encoded(ds: Dataset, syntax: str, *, preamble: bool = True) -> bytes:
    """A Part 10 file in ``syntax`` (without its preamble and "DICM" when asked)."""
    ds = ds.copy()
    ds.file_meta = FileMetaDataset(ds.file_meta)
    ds.file_meta.TransferSyntaxUID = UID(syntax)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    data = buffer.getvalue()
    return data if preamble else data[128 + 4:]


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian,
                                    ExplicitVRBigEndian, DeflatedExplicitVRLittleEndian])
def test_reader_finds_the_uids_in_every_uncompressed_syntax(syntax: str) -> None:
    ds = _instance()
    found = read_identifiers(_encoded(ds, syntax))
    assert found.sop_class_uid == ds.SOPClassUID
    assert found.sop_instance_uid == ds.SOPInstanceUID
    assert found.study_instance_uid == ds.StudyInstanceUID
    assert found.series_instance_uid == ds.SeriesInstanceUID
    assert found.transfer_syntax == syntax
    assert found.looks_like_dicom


def test_reader_takes_a_stream_without_preamble() -> None:
    ds = _instance()
    found = read_identifiers(_encoded(ds, ExplicitVRLittleEndian, preamble=False))
    assert found.study_instance_uid == ds.StudyInstanceUID


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
def test_reader_takes_a_bare_data_set(syntax: str) -> None:
    ds = _instance()
    found = read_identifiers(_bare_bytes(ds, implicit=syntax == ImplicitVRLittleEndian))
    assert (found.sop_instance_uid, found.series_instance_uid) == (ds.SOPInstanceUID,
                                                                    ds.SeriesInstanceUID)
    assert found.transfer_syntax is None and found.looks_like_dicom


def _bare_bytes(ds: Dataset, *, implicit: bool) -> bytes:
    buffer = pydicom.filebase.DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, implicit
    plain = Dataset()
    for element in ds:
        plain.add(element)
    pydicom.filewriter.write_dataset(buffer, plain)
    return buffer.getvalue()


def test_reader_is_best_effort_on_prefixes_and_garbage() -> None:
    ds = _instance()
    data = _encoded(ds, ExplicitVRLittleEndian)
    cut = data.index(str(ds.StudyInstanceUID).encode()) + 3   # inside the Study UID's value
    found = read_identifiers(data[:cut])
    assert found.sop_instance_uid == ds.SOPInstanceUID and found.study_instance_uid is None
    for junk in (b"", b"hello world, not DICOM at all", bytes(range(256)) * 4,
                 b"\x00" * 128 + b"DICM" + b"\xff" * 20):
        got = read_identifiers(junk)
        assert got.sop_instance_uid is None and got.study_instance_uid is None
    assert not read_identifiers(b"hello world, not DICOM at all").looks_like_dicom


# --- the answer ---------------------------------------------------------------------------

def stored(i: int, study: str = "1.2.3", warning: int | None = None) -> PartOutcome:
    return PartOutcome(i, True, "1.2.840.10008.5.1.4.1.1.1", f"1.9.{i}", study, "1.2.3.4",
                       warning_reason=warning, message="repaired" if warning else "")


def failed(i: int, reason: int = DATASET_MISMATCH, message: str = "bad") -> PartOutcome:
    return PartOutcome(i, False, "1.2.840.10008.5.1.4.1.1.1", f"1.9.{i}", "1.2.3", "1.2.3.4",
                       failure_reason=reason, message=message)


@pytest.mark.parametrize(("outcomes", "status"), [
    ([stored(0), stored(1)], 200),
    ([stored(0), failed(1), stored(2)], 202),
    ([stored(0), stored(1, warning=COERCED)], 202),
    ([failed(0), failed(1, CANNOT_UNDERSTAND)], 409),
    ([failed(0)], 409),
])
def test_status_choice(outcomes: list[PartOutcome], status: int) -> None:
    assert status_of(outcomes) == status


def test_an_outcome_is_stored_or_failed_never_both() -> None:
    with pytest.raises(ValueError):
        PartOutcome(0, True, failure_reason=CANNOT_UNDERSTAND)
    with pytest.raises(ValueError):
        PartOutcome(0, False)


def test_dataset_lists_every_part_with_urls_and_reasons() -> None:
    outcomes = [stored(0), failed(1), stored(2, warning=COERCED)]
    ds = Dataset.from_json(response_dataset(outcomes, BASE))
    assert ds.RetrieveURL == f"{BASE}/studies/1.2.3"
    referenced = ds.ReferencedSOPSequence
    assert [str(i.ReferencedSOPInstanceUID) for i in referenced] == ["1.9.0", "1.9.2"]
    assert referenced[0].RetrieveURL == f"{BASE}/studies/1.2.3/series/1.2.3.4/instances/1.9.0"
    assert "WarningReason" not in referenced[0] and referenced[1].WarningReason == COERCED
    (failure,) = ds.FailedSOPSequence
    assert failure.ReferencedSOPInstanceUID == "1.9.1" and failure.FailureReason == DATASET_MISMATCH
    assert failure.ReferencedSOPClassUID == "1.2.840.10008.5.1.4.1.1.1"


def test_study_url_only_for_one_study_or_the_requests() -> None:
    two = [stored(0, "1.2.3"), stored(1, "1.2.4")]
    assert "00081190" not in response_dataset(two, BASE)
    assert response_dataset(two, BASE, study="1.2.3")["00081190"]["Value"] == [
        f"{BASE}/studies/1.2.3"]
    unknown = PartOutcome(0, False, failure_reason=CANNOT_UNDERSTAND)
    item = response_dataset([unknown], BASE)["00081198"]["Value"][0]
    assert item["00081155"] == {"vr": "UI"} and item["00081197"]["Value"] == [CANNOT_UNDERSTAND]


def test_xml_is_the_same_dataset_in_the_native_model() -> None:
    outcomes = [stored(0), failed(1)]
    root = ET.fromstring(to_xml(response_dataset(outcomes, BASE)))
    ns = {"n": "http://dicom.nema.org/PS3.19/models/NativeDICOM"}
    sequences = {a.get("keyword"): a for a in root.findall("n:DicomAttribute", ns)}
    assert set(sequences) == {"RetrieveURL", "ReferencedSOPSequence", "FailedSOPSequence"}
    failure = sequences["FailedSOPSequence"].find("n:Item/n:DicomAttribute[@tag='00081197']", ns)
    assert failure is not None and failure.get("vr") == "US"
    assert failure.findtext("n:Value", namespaces=ns) == str(DATASET_MISMATCH)


def test_warning_header_is_ascii_quoted_and_decodable() -> None:
    outcome = failed(1, message='PatientID "张伟" is 300 chars \\ 100%')
    header = warning_header(outcome)
    assert header.isascii()
    assert header.startswith('299 archive "part 2 (SOP Instance 1.9.1): failed 0xA900: ')
    text = header[len('299 archive "'):-1].replace('\\"', '"').replace("\\\\", "\\")
    assert unquote(text).endswith('PatientID "张伟" is 300 chars \\ 100%')


@pytest.mark.parametrize(("accept", "chosen"), [
    (None, "json"), ("", "json"), ("application/dicom+json", "json"), ("*/*", "json"),
    ("application/dicom+xml", "xml"),
    ("application/dicom+xml, application/dicom+json;q=0.5", "xml"),
    ("application/dicom+xml;q=0.4, application/json", "json"),
    ("application/dicom+json, application/dicom+xml", "json"),
    ("text/html", None), ("application/dicom+json;q=0", None),
])
def test_accept(accept: str | None, chosen: str | None) -> None:
    assert choose_format(accept) == chosen
