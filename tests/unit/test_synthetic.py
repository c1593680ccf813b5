"""The synthetic studies are valid, well-formed DICOM with plausible geometry and pixels."""

from __future__ import annotations

import time
from io import BytesIO
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.tag import Tag
from pydicom.uid import (
    CTImageStorage,
    DigitalXRayImageStorageForPresentation,
    ExplicitVRLittleEndian,
    MRImageStorage,
    UltrasoundMultiFrameImageStorage,
)

from archive_tools import synthetic
from archive_tools.synthetic import InvalidPatient, InvalidStudy, PatientInfo, StudyInfo

ZHANG = PatientInfo("张^伟", "T0001", "19620418", "M")
LI = PatientInfo("Li^Na=李^娜", "T0002", "19850107", "F")

# Type 1 attributes of the modules each IOD requires (PS3.3 A.3, A.4, A.7, A.26), beyond pixels.
COMMON = ["SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "Modality",
          "SpecificCharacterSet", "PatientName", "PatientID", "StudyDate", "StudyTime",
          "AccessionNumber", "StudyDescription", "InstitutionName", "SeriesNumber",
          "InstanceNumber", "Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit",
          "PixelRepresentation", "SamplesPerPixel", "PhotometricInterpretation"]
REQUIRED = {
    "CT": COMMON + ["ImageType", "FrameOfReferenceUID", "ImagePositionPatient",
                    "ImageOrientationPatient", "PixelSpacing", "SliceThickness",
                    "RescaleIntercept", "RescaleSlope", "WindowCenter", "WindowWidth", "KVP"],
    "MR": COMMON + ["ImageType", "FrameOfReferenceUID", "ImagePositionPatient",
                    "ImageOrientationPatient", "PixelSpacing", "SliceThickness",
                    "ScanningSequence", "SequenceVariant", "EchoTime", "RepetitionTime"],
    "US": COMMON + ["ImageType", "NumberOfFrames", "FrameTime", "CineRate",
                    "FrameIncrementPointer", "PlanarConfiguration"],
    "DX": COMMON + ["ImageType", "PresentationIntentType", "ImagerPixelSpacing",
                    "PixelIntensityRelationship", "PixelIntensityRelationshipSign",
                    "RescaleIntercept", "RescaleSlope", "PresentationLUTShape",
                    "ImageLaterality", "AnatomicRegionSequence", "PatientOrientation"],
}


def hounsfield(ds: Dataset) -> NDArray[np.float64]:
    """The Modality LUT (PS3.3 C.11.1) applied: stored values to HU."""
    values: NDArray[np.float64] = (ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope)
                                   + float(ds.RescaleIntercept))
    return values


def positions(series: Sequence[Dataset]) -> NDArray[np.float64]:
    return np.array([[float(v) for v in ds.ImagePositionPatient] for ds in series])


@pytest.fixture(scope="module")
def ct() -> list[Dataset]:
    return synthetic.ct_volume(40, 128, 128, patient=ZHANG, seed=3)


@pytest.fixture(scope="module")
def demo() -> tuple[list[list[Dataset]], float]:
    started = time.perf_counter()
    studies = synthetic.demo_studies()
    return studies, time.perf_counter() - started


# --- CT ---------------------------------------------------------------------------------------


def test_ct_slices_step_along_z_by_the_slice_thickness(ct: list[Dataset]) -> None:
    xyz = positions(ct)
    steps = np.diff(xyz[:, 2])
    thickness = float(ct[0].SliceThickness)
    assert np.all(steps < 0) or np.all(steps > 0), "positions must be strictly monotonic"
    assert np.allclose(np.abs(steps), thickness)
    assert np.allclose(np.abs(steps), float(ct[0].SpacingBetweenSlices))
    assert np.allclose(xyz[:, :2], xyz[0, :2]), "an axial stack does not move in x or y"
    assert [float(ds.SliceLocation) for ds in ct] == pytest.approx(list(xyz[:, 2]))
    assert [int(ds.InstanceNumber) for ds in ct] == list(range(1, len(ct) + 1))


def test_ct_geometry_is_axial_and_centred(ct: list[Dataset]) -> None:
    first = ct[0]
    assert [float(v) for v in first.ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]
    spacing = [float(v) for v in first.PixelSpacing]
    assert spacing[0] == spacing[1] == pytest.approx(500 / 128)
    x0, y0, _ = (float(v) for v in first.ImagePositionPatient)
    # The isocentre (0, 0) is in the middle of the image.
    assert x0 + spacing[1] * (first.Columns - 1) / 2 == pytest.approx(0, abs=1e-3)
    assert y0 + spacing[0] * (first.Rows - 1) / 2 == pytest.approx(0, abs=1e-3)


def test_ct_series_shares_study_series_and_frame_of_reference(ct: list[Dataset]) -> None:
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID",
                    "AccessionNumber", "SeriesNumber"):
        assert len({str(ds[keyword].value) for ds in ct}) == 1, keyword
    sop_uids = {ds.SOPInstanceUID for ds in ct}
    assert len(sop_uids) == len(ct)
    uids = sop_uids | {ct[0].StudyInstanceUID, ct[0].SeriesInstanceUID, ct[0].FrameOfReferenceUID}
    assert len(uids) == len(ct) + 3
    assert all(uid.is_valid for uid in uids)


def test_ct_pixels_are_hounsfield_units_of_a_body(ct: list[Dataset]) -> None:
    first = ct[0]
    assert (first.BitsAllocated, first.BitsStored, first.HighBit) == (16, 12, 11)
    assert first.PixelRepresentation == 0 and first.pixel_array.dtype == np.uint16
    assert int(first.pixel_array.max()) < 2 ** first.BitsStored
    volume = np.stack([hounsfield(ds) for ds in ct])
    assert np.median(volume[:, :4, :4]) == pytest.approx(-1000, abs=30), "air outside"
    chest = volume[len(ct) // 3]
    assert np.mean((chest > -950) & (chest < -700)) > 0.05, "lungs"
    assert np.mean((chest > -150) & (chest < 150)) > 0.05, "soft tissue"
    assert np.percentile(chest, 99.5) > 300, "bone"
    assert volume.max() > 600 and volume.min() >= -1024


def test_ct_anatomy_is_structured_and_changes_smoothly(ct: list[Dataset]) -> None:
    volume = np.stack([hounsfield(ds) for ds in ct])
    middle = volume[len(ct) // 2]
    # Structure, not noise: neighbouring pixels are far more alike than random pairs.
    neighbours = np.mean(np.abs(np.diff(middle, axis=1)))
    shuffled = np.random.default_rng(0).permutation(middle.ravel())
    assert neighbours < 0.2 * np.mean(np.abs(np.diff(shuffled)))
    # Adjacent slices are alike, slices half the volume apart are not (8x8 block means, to
    # look at anatomy rather than noise).
    n, rows, cols = volume.shape
    blocks = volume.reshape(n, rows // 8, 8, cols // 8, 8).mean(axis=(2, 4))
    adjacent = np.mean(np.abs(np.diff(blocks, axis=0)))
    apart = np.mean(np.abs(blocks[n // 2:] - blocks[:n - n // 2]))
    assert adjacent < 0.3 * apart


def test_full_ct_volume_is_fast_enough() -> None:
    started = time.perf_counter()
    volume = synthetic.ct_volume()
    elapsed = time.perf_counter() - started
    assert len(volume) == 220 and volume[0].Rows == volume[0].Columns == 512
    assert float(volume[0].SliceThickness) == 1.25
    assert elapsed < 15, f"220x512x512 took {elapsed:.1f} s"


def test_same_seed_gives_same_pixels_and_new_uids() -> None:
    a = synthetic.ct_volume(3, 32, 32, seed=7)
    b = synthetic.ct_volume(3, 32, 32, seed=7)
    assert [ds.PixelData for ds in a] == [ds.PixelData for ds in b]
    assert a[0].SOPInstanceUID != b[0].SOPInstanceUID
    assert a[0].StudyInstanceUID != b[0].StudyInstanceUID


def test_study_uid_and_patient_are_used() -> None:
    study = StudyInfo(uid="1.2.826.0.1.3680043.8.498.1234", date="20240506", accession="ACC42",
                      description="胸部CT 头颅MR")
    series = synthetic.ct_volume(2, 32, 32, patient=LI, study=study)
    mr = synthetic.mr_series(2, 32, 32, patient=LI, study=study)
    assert {ds.StudyInstanceUID for ds in series + mr} == {study.uid}
    assert {(ds.StudyDate, ds.AccessionNumber, ds.StudyDescription) for ds in series + mr} == {
        ("20240506", "ACC42", "胸部CT 头颅MR")}
    assert {ds.SeriesInstanceUID for ds in series}.isdisjoint({ds.SeriesInstanceUID for ds in mr})
    assert all(ds.PatientID == "T0002" and ds.PatientSex == "F" for ds in series + mr)


# --- MR, US, DX -------------------------------------------------------------------------------


def test_mr_series_geometry_and_pixels() -> None:
    series = synthetic.mr_series(patient=ZHANG)
    assert len(series) == 24 and series[0].SOPClassUID == MRImageStorage
    steps = np.diff(positions(series)[:, 2])
    assert np.allclose(steps, float(series[0].SpacingBetweenSlices))
    assert float(series[0].SpacingBetweenSlices) > float(series[0].SliceThickness)  # a gap
    assert len({ds.FrameOfReferenceUID for ds in series}) == 1
    head = series[12].pixel_array
    assert head.shape == (256, 256) and head.dtype == np.uint16
    assert head[:8, :8].mean() < 100, "air around the head is dark"
    assert np.percentile(head, 99) > 1200, "CSF is bright on T2"
    assert head.max() < 2 ** series[0].BitsStored


def test_us_cine_is_multiframe_rgb_with_cine_timing() -> None:
    ds = synthetic.us_cine(12, 120, 160, patient=LI)
    assert ds.SOPClassUID == UltrasoundMultiFrameImageStorage
    assert ds.NumberOfFrames == 12
    assert ds.PhotometricInterpretation == "RGB" and ds.PlanarConfiguration == 0
    frames = ds.pixel_array
    assert frames.shape == (12, 120, 160, 3) and frames.dtype == np.uint8
    assert float(ds.FrameTime) == pytest.approx(1000 / ds.CineRate, rel=0.02)
    assert ds.FrameIncrementPointer == Tag(0x0018, 0x1063)
    assert np.mean(np.abs(frames[0].astype(int) - frames[6].astype(int))) > 1, "the heart beats"
    colour = (frames[..., 0].astype(int) - frames[..., 2].astype(int)) != 0
    assert colour.any(), "a colour Doppler box"
    assert frames[:, :3, :3].max() == 0, "black outside the sector"


def test_us_cine_in_greyscale_with_odd_size() -> None:
    ds = synthetic.us_cine(3, 33, 33, color=False)
    assert ds.PhotometricInterpretation == "MONOCHROME2" and ds.SamplesPerPixel == 1
    assert len(ds.PixelData) % 2 == 0
    assert ds.pixel_array.shape == (3, 33, 33)


def test_dx_is_a_chest_radiograph_for_presentation() -> None:
    ds = synthetic.dx_image(512, 512, patient=ZHANG)
    assert ds.SOPClassUID == DigitalXRayImageStorageForPresentation
    assert ds.PresentationIntentType == "FOR PRESENTATION"
    image = ds.pixel_array
    assert image.shape == (512, 512) and image.max() < 2 ** ds.BitsStored
    rows, cols = image.shape
    lung = image[int(rows * 0.35):int(rows * 0.45), int(cols * 0.25):int(cols * 0.3)].mean()
    spine_heart = image[int(rows * 0.6):int(rows * 0.65), int(cols * 0.48):int(cols * 0.52)].mean()
    assert lung < spine_heart, "lungs are darker than the mediastinum"


@pytest.mark.parametrize("modality", ["CT", "MR", "US", "DX"])
def test_required_attributes_are_present(modality: str) -> None:
    make: Callable[[], Dataset] = {
        "CT": lambda: synthetic.ct_volume(2, 32, 32)[0],
        "MR": lambda: synthetic.mr_series(2, 32, 32)[0],
        "US": lambda: synthetic.us_cine(2, 48, 64),
        "DX": lambda: synthetic.dx_image(64, 64),
    }[modality]
    ds = make()
    missing = [k for k in REQUIRED[modality] if k not in ds or ds[k].value in (None, "", [])]
    assert not missing
    assert ds.Modality == modality
    assert ds.SOPClassUID == synthetic.SOP_CLASSES[modality]
    assert ds.file_meta.MediaStorageSOPClassUID == ds.SOPClassUID
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian


# --- text, files, patients ----------------------------------------------------------------------


def test_round_trip_through_files_keeps_utf8_text_and_pixels(tmp_path: Path) -> None:
    datasets = [*synthetic.ct_volume(2, 32, 32, patient=ZHANG), synthetic.us_cine(2, 40, 40,
                                                                                  patient=LI)]
    paths = synthetic.write_files(datasets, tmp_path / "out")
    assert [p.name for p in paths] == [f"{ds.SOPInstanceUID}.dcm" for ds in datasets]
    for path, original in zip(paths, datasets):
        assert path.read_bytes()[128:132] == b"DICM"
        read = dcmread(path)
        assert read.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
        assert read.SpecificCharacterSet == "ISO_IR 192"
        assert str(read.PatientName) == str(original.PatientName)
        assert read.InstitutionName == original.InstitutionName
        assert read.StudyDescription == original.StudyDescription
        assert np.array_equal(read.pixel_array, original.pixel_array)
    ct_read, us_read = dcmread(paths[0]), dcmread(paths[2])
    assert str(ct_read.PatientName) == "张^伟"
    assert "张^伟".encode("utf-8") in paths[0].read_bytes()
    assert us_read.PatientName.alphabetic == "Li^Na"
    assert us_read.PatientName.ideographic == "李^娜"
    assert us_read.NumberOfFrames == 2 and us_read.pixel_array.shape == (2, 40, 40, 3)


@pytest.mark.parametrize("fields", [
    {"name": "A=B=C=D"},
    {"name": "x" * 65},
    {"name": ""},
    {"birth_date": "1962-04-18"},
    {"sex": "X"},
    {"patient_id": ""},
])
def test_invalid_patients_are_refused(fields: dict[str, str]) -> None:
    values = {"name": "张^伟", "patient_id": "P1", "birth_date": "19620418", "sex": "M"} | fields
    with pytest.raises(InvalidPatient):
        PatientInfo(**values)


# --- the demo set -------------------------------------------------------------------------------


def test_demo_set_holds_the_promised_studies(demo: tuple[list[list[Dataset]], float]) -> None:
    studies, elapsed = demo
    by_modality = {study[0].Modality: study for study in studies}
    assert set(by_modality) >= {"CT", "MR", "US", "DX"}
    assert len(by_modality["CT"]) >= 200 and by_modality["CT"][0].SOPClassUID == CTImageStorage
    assert int(by_modality["US"][0].NumberOfFrames) > 1
    for study in studies:
        assert len({ds.StudyInstanceUID for ds in study}) == 1
        assert len({ds.AccessionNumber for ds in study}) == 1
    assert len({study[0].StudyInstanceUID for study in studies}) == len(studies)
    assert len({study[0].AccessionNumber for study in studies}) == len(studies)
    assert elapsed < 20, f"generating the demo set took {elapsed:.1f} s"


def test_demo_patients_have_chinese_names(demo: tuple[list[list[Dataset]], float]) -> None:
    studies, _ = demo
    for study in studies:
        ds = study[0]
        assert ds.SpecificCharacterSet == "ISO_IR 192"
        ideographic = ds.PatientName.ideographic or ds.PatientName.alphabetic
        assert any("\u4e00" <= ch <= "\u9fff" for ch in ideographic), str(ds.PatientName)
        assert any("\u4e00" <= ch <= "\u9fff" for ch in ds.StudyDescription)
        assert any("\u4e00" <= ch <= "\u9fff" for ch in ds.InstitutionName)
    assert synthetic.instance_count(studies) == sum(len(s) for s in studies)


def test_demo_set_can_be_narrowed_to_modalities() -> None:
    studies = synthetic.demo_studies(["MR", "DX"])
    assert [s[0].Modality for s in studies] == ["DX", "MR"]
    with pytest.raises(ValueError, match="XA"):
        synthetic.demo_studies(["XA"])


# --- options the tests use ----------------------------------------------------------------------


def test_bits_stored_fill_their_range() -> None:
    mr = synthetic.mr_series(2, 64, 64, bits_stored=16)[1].pixel_array
    assert mr.dtype == np.uint16 and mr.max() > 32767, "16 bits stored use the high bit"
    dx = synthetic.dx_image(64, 64, bits_stored=8)
    assert (dx.BitsAllocated, dx.BitsStored, dx.HighBit) == (8, 8, 7)
    assert dx.pixel_array.dtype == np.uint8 and dx.pixel_array.max() > 200
    with pytest.raises(ValueError, match="bits_stored"):
        synthetic.mr_series(1, 32, 32, bits_stored=17)


def test_series_of_one_study_and_another_character_set() -> None:
    study = StudyInfo(description="头颅CT平扫", referring_physician="赵^喆")
    patient = PatientInfo("李^喆", "GB1")
    ct = synthetic.ct_volume(1, 32, 32, patient=patient, study=study, series_number=7,
                             series_description="骨窗", charset="GB18030")[0]
    dx = synthetic.dx_image(32, 32, patient=patient, study=study, series_number=8)
    assert ct.StudyInstanceUID == dx.StudyInstanceUID == study.uid
    assert ct.AccessionNumber == dx.AccessionNumber == study.accession != ""
    assert (ct.SeriesNumber, ct.SeriesDescription, dx.SeriesNumber) == (7, "骨窗", 8)
    raw = synthetic.to_bytes(ct)
    assert "李^喆".encode("gb18030") in raw and "李^喆".encode("utf-8") not in raw
    assert dcmread(BytesIO(raw)).ReferringPhysicianName == "赵^喆"


@pytest.mark.parametrize("fields", [
    {"date": "2024-03-15"},
    {"time": "9:30"},
    {"accession": "A" * 17},
])
def test_invalid_studies_are_refused(fields: dict[str, str]) -> None:
    with pytest.raises(InvalidStudy):
        StudyInfo(**fields)
