"""The duplicate rule: same SOP Instance UID, same content whatever the file meta says."""

from __future__ import annotations

import io

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from archive_gate.content import same_instance


def dicom_bytes(*, patient_name: str = "Li^Na", implementation: str = "1.2.3.4.5",
                syntax: str = ExplicitVRLittleEndian, pixel: int = 7,
                code_meaning: str = "CT Chest") -> bytes:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = UID(syntax)
    ds.file_meta.ImplementationClassUID = UID(implementation)
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = UID("1.2.840.10008.5.1.4.1.1.2")
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = UID("1.2.3.4")
    ds.StudyInstanceUID, ds.SeriesInstanceUID = "1.2.3", "1.2.3.1"
    ds.PatientName, ds.PatientID, ds.Modality = patient_name, "P1", "CT"
    item = Dataset()
    item.CodeMeaning = code_meaning
    ds.ProcedureCodeSequence = Sequence([item])
    ds.Rows = ds.Columns = 4
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = np.full((4, 4), pixel, np.uint16).tobytes()
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def test_another_file_meta_is_the_same_instance() -> None:
    assert same_instance(dicom_bytes(), dicom_bytes(implementation="1.2.276.0.7230010.3"))


def test_a_changed_value_pixel_or_sequence_item_is_another_instance() -> None:
    first = dicom_bytes()
    assert not same_instance(first, dicom_bytes(patient_name="Wang^Fang"))
    assert not same_instance(first, dicom_bytes(pixel=8))
    assert not same_instance(first, dicom_bytes(code_meaning="CT Abdomen"))


def test_another_transfer_syntax_is_compared_without_its_pixels() -> None:
    implicit = dicom_bytes(syntax=ImplicitVRLittleEndian, pixel=9)
    assert same_instance(dicom_bytes(), implicit)
    assert pydicom.dcmread(io.BytesIO(implicit)).file_meta.TransferSyntaxUID == ImplicitVRLittleEndian


def test_unreadable_input_is_never_the_same() -> None:
    good = dicom_bytes()
    assert not same_instance(good, good[:200])
    assert not same_instance(b"not dicom", b"not dicom")
