"""M1: the archive accepts, keeps and serves every transfer syntax the hospitals listed.

For each syntax (REQUIREMENTS M1 "Accept these transfer syntaxes", plus JPEG Extended as a
bonus) a realistic image is generated uncompressed, transcoded with DCMTK or GDCM, checked to
really be in that syntax, and then:

* sent with ``storescu`` proposing exactly that one syntax (a DCMTK association profile), and
  with STOW-RS; Orthanc must record that syntax (``/instances/{id}/metadata/TransferSyntax``);
* retrieved by WADO-RS and C-GET in the original syntax (the pixel data bytes must be the ones
  sent: the archive does not recompress), and decompressed by the archive (WADO-RS asking for
  Explicit VR Little Endian, C-GET accepting only uncompressed syntaxes);
* decoded by Orthanc itself (``/frames/0/image-uint16``, the preview, a rendered WADO-RS frame).

Lossless syntaxes must give back the source pixels exactly; lossy ones within a bound on the
largest error and on PSNR (JPEG-LS near-lossless: exactly its NEAR bound). Sources come from
archive_tools.synthetic: 12-bit CT, 16-bit MR, 8-bit radiographs and, for colour JPEG baseline,
the echo cine.
Test IDs name the syntax, so a failure says which one.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from PIL import Image
from pydicom import uid
from pydicom.dataset import Dataset

from archive_tools import synthetic
from archive_tools.synthetic import PatientInfo, StudyInfo
from testkit import dcmtk
from testkit import dicom_data as dd
from testkit.stack import Stack

pytestmark = pytest.mark.integration

ROWS, COLUMNS = 80, 96  # not square, so swapped dimensions show


@dataclass(frozen=True)
class Case:
    """One transfer syntax, the kind of source image it suits, and how close it must come back."""

    syntax: str
    source: str           # a key of SOURCES
    max_error: int = 0    # largest |decoded - source| allowed; 0 = lossless
    min_psnr: float = math.inf

    @property
    def lossless(self) -> bool:
        return self.max_error == 0

    @property
    def bits_stored(self) -> int:
        return SOURCES[self.source]

    @property
    def id(self) -> str:
        return f"{dd.ENCODINGS[self.syntax].name} [{self.syntax}] {self.source}"


# Source images and their bits stored: CT (12), MR using all 16 bits, 8-bit grey radiograph,
# and archive_tools.synthetic's colour ultrasound cine (RGB, 3 frames): the usual JPEG baseline
# of real echo machines (YBR_FULL_422 once encoded).
SOURCES = {"ct": 12, "mr": 16, "dx": 8, "us-rgb": 8}

CASES = [
    Case(uid.JPEGLSLossless, "mr"),
    Case(uid.JPEGLSNearLossless, "ct", max_error=dd.NEAR_LOSSLESS_DEVIATION, min_psnr=60.0),
    Case(uid.JPEG2000Lossless, "mr"),
    Case(uid.JPEG2000, "ct", max_error=300, min_psnr=44.0),
    Case(uid.JPEGBaseline8Bit, "dx", max_error=32, min_psnr=35.0),
    Case(uid.JPEGBaseline8Bit, "us-rgb", max_error=80, min_psnr=34.0),
    Case(uid.JPEGExtended12Bit, "ct", max_error=40, min_psnr=56.0),
    Case(uid.JPEGLossless, "mr"),
    Case(uid.JPEGLosslessSV1, "ct"),
    Case(uid.RLELossless, "mr"),
    Case(uid.ExplicitVRLittleEndian, "ct"),
    Case(uid.ExplicitVRBigEndian, "mr"),
    Case(uid.ImplicitVRLittleEndian, "ct"),
]


def close_enough(case: Case, decoded: np.ndarray, source: np.ndarray, what: str) -> None:
    """Assert ``decoded`` is the source (lossless) or within the case's bounds (lossy)."""
    assert decoded.shape == source.shape, f"{what}: shape {decoded.shape} != {source.shape}"
    error = dd.max_abs_error(decoded, source)
    if case.lossless:
        assert error == 0, f"{what}: lossless {case.id} differs from the source by up to {error}"
        return
    quality = dd.psnr(decoded, source, case.bits_stored)
    assert error <= case.max_error and quality >= case.min_psnr, (
        f"{what}: {case.id} max error {error} (bound {case.max_error}), "
        f"PSNR {quality:.1f} dB (bound {case.min_psnr})")


@dataclass(frozen=True)
class Sent:
    """An instance as sent to the archive: the source, the encoded file, Orthanc's ID."""

    case: Case
    source: Dataset
    encoded_path: Path
    encoded: Dataset
    orthanc_id: str

    @property
    def study_uid(self) -> str:
        return str(self.encoded.StudyInstanceUID)

    @property
    def series_uid(self) -> str:
        return str(self.encoded.SeriesInstanceUID)

    @property
    def sop_uid(self) -> str:
        return str(self.encoded.SOPInstanceUID)

    def identifier(self) -> Dataset:
        query = Dataset()
        query.QueryRetrieveLevel = "IMAGE"
        query.StudyInstanceUID = self.study_uid
        query.SeriesInstanceUID = self.series_uid
        query.SOPInstanceUID = self.sop_uid
        return query


def make_source(case: Case, patient: PatientInfo, seed: int) -> Dataset:
    study = StudyInfo(accession=f"TS{seed}", description=f"传输语法 {case.syntax}")
    bits = case.bits_stored
    if case.source == "ct":
        return synthetic.ct_volume(1, ROWS, COLUMNS, patient=patient, study=study, seed=seed)[0]
    if case.source == "mr":
        return synthetic.mr_series(1, ROWS, COLUMNS, patient=patient, study=study,
                                   bits_stored=bits, seed=seed)[0]
    if case.source == "dx":
        return synthetic.dx_image(ROWS, COLUMNS, patient=patient, study=study, bits_stored=bits,
                                  seed=seed)
    return synthetic.us_cine(3, ROWS, COLUMNS, patient=patient, study=study, seed=seed)


def encode_source(case: Case, folder: Path, patient: PatientInfo, seed: int
                  ) -> tuple[Dataset, Path, Dataset]:
    source = make_source(case, patient, seed)
    plain = synthetic.write_file(source, folder / f"source-{seed}.dcm")
    path = dd.encode(plain, folder / f"encoded-{seed}.dcm", case.syntax)
    # A lossy encoder may give the instance a new SOP Instance UID (GDCM does): use the file's.
    return source, path, dd.read(path)


def lookup(http: requests.Session, archive: Stack, sop_uid: str) -> str:
    r = http.post(f"{archive.orthanc_url}/tools/lookup", data=sop_uid, timeout=10)
    r.raise_for_status()
    found = [item["ID"] for item in r.json() if item["Type"] == "Instance"]
    assert len(found) == 1, f"SOP Instance {sop_uid} is not in the archive: {r.text}"
    return str(found[0])


def metadata(http: requests.Session, archive: Stack, orthanc_id: str, name: str) -> str:
    r = http.get(f"{archive.orthanc_url}/instances/{orthanc_id}/metadata/{name}", timeout=10)
    assert r.status_code == 200, f"metadata {name} of {orthanc_id}: {r.status_code} {r.text}"
    return r.text


# --- fixtures: one syntax at a time, each stored once by DIMSE and once by STOW-RS --------------

@pytest.fixture(scope="module")
def patient() -> PatientInfo:
    return PatientInfo(name="陈^晓红", patient_id=f"TS-{dd.unique_token()}", sex="F")


@pytest.fixture(scope="module")
def dicomweb(archive: Stack) -> DICOMwebClient:
    return DICOMwebClient(url=f"{archive.url}/dicom-web", headers=archive.auth_headers())


@pytest.fixture(scope="module", params=CASES, ids=lambda c: c.id)
def case(request: pytest.FixtureRequest) -> Case:
    result: Case = request.param
    return result


@pytest.fixture(scope="module")
def case_dir(case: Case, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp(f"ts-{case.syntax}")


@pytest.fixture(scope="module")
def via_dimse(case: Case, case_dir: Path, patient: PatientInfo, archive: Stack,
              http: requests.Session) -> Sent:
    """Sent by storescu, proposing one presentation context with only this syntax."""
    source, path, encoded = encode_source(case, case_dir, patient, seed=1)
    profile_file, profile = dcmtk.write_association_profile(
        case_dir, [str(encoded.SOPClassUID)], case.syntax)
    dcmtk.run("storescu", "-v", "-xf", profile_file, profile, "-aet", "TSTESTSCU",
              "-aec", archive.aet, "127.0.0.1", archive.dicom_port, path)
    return Sent(case, source, path, encoded, lookup(http, archive, str(encoded.SOPInstanceUID)))


@pytest.fixture(scope="module")
def via_stow(case: Case, case_dir: Path, patient: PatientInfo, archive: Stack,
             http: requests.Session, dicomweb: DICOMwebClient) -> Sent:
    """Sent by STOW-RS (dicomweb-client writes the dataset in its own transfer syntax)."""
    source, path, encoded = encode_source(case, case_dir, patient, seed=2)
    response = dicomweb.store_instances([encoded])
    assert not response.get("FailedSOPSequence"), f"STOW-RS refused {case.id}: {response}"
    stored = [str(item.ReferencedSOPInstanceUID) for item in response.ReferencedSOPSequence]
    assert stored == [str(encoded.SOPInstanceUID)]
    return Sent(case, source, path, encoded, lookup(http, archive, str(encoded.SOPInstanceUID)))


# --- tests --------------------------------------------------------------------------------------

def test_encoded_file_is_in_the_syntax_and_decodes(case: Case, via_dimse: Sent) -> None:
    """The test data itself: the tool wrote this syntax, and pydicom decodes it within bounds."""
    assert str(via_dimse.encoded.file_meta.TransferSyntaxUID) == case.syntax
    decoded, source = dd.pixels(via_dimse.encoded), dd.pixels(via_dimse.source)
    close_enough(case, decoded, source, "encoded file decoded by pydicom")
    if not case.lossless:
        assert dd.max_abs_error(decoded, source) > 0, f"{case.id} test data is not lossy at all"


def test_c_store_is_accepted_and_kept_in_the_proposed_syntax(
        case: Case, via_dimse: Sent, archive: Stack, http: requests.Session) -> None:
    assert metadata(http, archive, via_dimse.orthanc_id, "TransferSyntax") == case.syntax
    assert metadata(http, archive, via_dimse.orthanc_id, "RemoteAET") == "TSTESTSCU"
    assert metadata(http, archive, via_dimse.orthanc_id, "Origin") == "DicomProtocol"


def test_stow_rs_is_accepted_and_kept_in_its_syntax(
        case: Case, via_stow: Sent, archive: Stack, http: requests.Session) -> None:
    assert metadata(http, archive, via_stow.orthanc_id, "TransferSyntax") == case.syntax


def test_wado_rs_returns_the_instance_as_stored(
        case: Case, via_dimse: Sent, dicomweb: DICOMwebClient) -> None:
    ds = dicomweb.retrieve_instance(via_dimse.study_uid, via_dimse.series_uid, via_dimse.sop_uid,
                                    media_types=(("application/dicom", "*"),))
    assert str(ds.file_meta.TransferSyntaxUID) == case.syntax
    assert ds.PixelData == via_dimse.encoded.PixelData, "pixel data bytes changed in the archive"
    close_enough(case, dd.pixels(ds), dd.pixels(via_dimse.source), "WADO-RS, original syntax")


def test_wado_rs_decompresses_to_explicit_little_endian(
        case: Case, via_stow: Sent, dicomweb: DICOMwebClient) -> None:
    plain = (("application/dicom", uid.ExplicitVRLittleEndian),)
    ds = dicomweb.retrieve_instance(via_stow.study_uid, via_stow.series_uid, via_stow.sop_uid,
                                    media_types=plain)
    assert str(ds.file_meta.TransferSyntaxUID) == uid.ExplicitVRLittleEndian
    close_enough(case, dd.pixels(ds), dd.pixels(via_stow.source), "WADO-RS, Explicit VR LE")


def test_c_get_in_the_stored_syntax(case: Case, via_dimse: Sent, archive: Stack) -> None:
    got = dd.c_get(archive.dicom_port, archive.aet, via_dimse.identifier(),
                   sop_classes=[str(via_dimse.encoded.SOPClassUID)],
                   transfer_syntaxes=[case.syntax])
    assert got.status == 0x0000, f"C-GET final status {got.status}"
    assert [str(ds.SOPInstanceUID) for ds in got.instances] == [via_dimse.sop_uid]
    ds = got.instances[0]
    assert str(ds.file_meta.TransferSyntaxUID) == case.syntax
    assert ds.PixelData == via_dimse.encoded.PixelData, "pixel data bytes changed in the archive"
    close_enough(case, dd.pixels(ds), dd.pixels(via_dimse.source), "C-GET, original syntax")


def test_c_get_decompressed_for_a_client_without_codecs(
        case: Case, via_stow: Sent, archive: Stack) -> None:
    got = dd.c_get(archive.dicom_port, archive.aet, via_stow.identifier(),
                   sop_classes=[str(via_stow.encoded.SOPClassUID)],
                   transfer_syntaxes=[uid.ExplicitVRLittleEndian, uid.ImplicitVRLittleEndian])
    assert got.status == 0x0000, f"C-GET final status {got.status}"
    assert [str(ds.SOPInstanceUID) for ds in got.instances] == [via_stow.sop_uid]
    ds = got.instances[0]
    assert str(ds.file_meta.TransferSyntaxUID) in (uid.ExplicitVRLittleEndian,
                                                   uid.ImplicitVRLittleEndian)
    close_enough(case, dd.pixels(ds), dd.pixels(via_stow.source), "C-GET, uncompressed")


def test_orthanc_decodes_the_frame(case: Case, via_dimse: Sent, archive: Stack,
                                   http: requests.Session, dicomweb: DICOMwebClient) -> None:
    base = f"{archive.orthanc_url}/instances/{via_dimse.orthanc_id}/frames/0"
    preview = http.get(f"{base}/preview", timeout=30)
    assert preview.status_code == 200, f"preview: {preview.status_code} {preview.text[:500]}"
    assert Image.open(io.BytesIO(preview.content)).size == (COLUMNS, ROWS)

    source = dd.pixels(via_dimse.source)
    if via_dimse.source.SamplesPerPixel == 3:
        # Colour: the preview is the decoded frame itself (no windowing); first frame only.
        decoded = np.asarray(Image.open(io.BytesIO(preview.content)).convert("RGB"))
        close_enough(case, decoded, source[0], "Orthanc's own decoder (preview, frame 1)")
    else:
        raw = http.get(f"{base}/image-uint16", timeout=30)
        assert raw.status_code == 200, f"image-uint16: {raw.status_code} {raw.text[:500]}"
        decoded = np.asarray(Image.open(io.BytesIO(raw.content))).astype(np.uint16)
        close_enough(case, decoded, source, "Orthanc's own decoder (image-uint16)")

    rendered = dicomweb.retrieve_instance_frames_rendered(
        via_dimse.study_uid, via_dimse.series_uid, via_dimse.sop_uid, frame_numbers=[1],
        media_types=("image/jpeg",))
    image = Image.open(io.BytesIO(rendered))
    assert (image.format, image.size) == ("JPEG", (COLUMNS, ROWS))


@pytest.fixture(scope="module", autouse=True)
def _no_decoder_errors(archive: Stack) -> Iterator[None]:
    """Orthanc logs decoder failures even when a fallback succeeds; none are expected here."""
    before = len(archive.log_text())
    yield
    errors = [line for line in archive.log_text()[before:].splitlines()
              if line.startswith("E") and "decod" in line.lower()]
    assert not errors, "Orthanc logged decoding errors:\n" + "\n".join(errors)
