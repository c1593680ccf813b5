"""The ingest gate (archive_gate): the corpus of bad input gets its verdicts, every valid file
the project makes is accepted unchanged, repairs change only what they say, and no input makes
the reader raise."""

from __future__ import annotations

import random
import struct
from io import BytesIO
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset

from archive_gate import Action, Verdict, codes, inspect
from archive_gate.charset import looks_gb18030
from archive_tools import synthetic
from archive_tools.synthetic import PatientInfo
from testkit import bad_dicom, dicom_data
from testkit.bad_dicom import Case

ZHANG = PatientInfo("张^伟", "G0001", "19620418", "M")
LI = PatientInfo("Li^Zhe=李^喆", "G0002", "19850107", "F")


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gate")


@pytest.fixture(scope="module")
def corpus(folder: Path) -> list[Case]:
    return bad_dicom.corpus(folder / "corpus")


def _summary(verdict: Verdict) -> str:
    return f"{verdict.action} {[str(r) for r in verdict.reasons]}"


# --- the corpus -----------------------------------------------------------------------------------

def test_corpus_has_at_least_50_kinds_of_bad_input(corpus: list[Case]) -> None:
    bad = bad_dicom.bad_cases(corpus)
    assert len(bad) >= 50
    assert len(bad_dicom.good_cases(corpus)) >= 10
    for case in bad:
        assert case.codes, f"{case.name} names no expected reason"
        assert case.codes <= set(codes.DESCRIPTIONS), case.name
    every_code = set().union(*(case.codes for case in bad))
    assert every_code == set(codes.DESCRIPTIONS), "a reason code no case exercises"


def test_every_corpus_case_gets_its_verdict(corpus: list[Case]) -> None:
    wrong = []
    for case in corpus:
        verdict = inspect(case.data)
        if verdict.action is not case.action or not case.codes <= verdict.codes:
            wrong.append(f"{case.name}: want {case.action} {sorted(case.codes)}, "
                         f"got {_summary(verdict)}")
        if case.action is Action.ACCEPT and verdict.reasons:
            wrong.append(f"{case.name}: accepted with reasons {_summary(verdict)}")
    assert not wrong, "\n".join(wrong)


def test_quarantined_cases_carry_messages_and_identity(corpus: list[Case]) -> None:
    by_name = {case.name: case for case in corpus}
    for case in bad_dicom.bad_cases(corpus):
        for reason in inspect(case.data).reasons:
            assert reason.message and reason.code in codes.DESCRIPTIONS, case.name
    # Identifying values are read even from files the gate refuses.
    long_id = inspect(by_name["patient-id-300"].data).identity
    assert long_id.patient_id == "P" * 300
    assert long_id.sop_instance_uid and long_id.study_instance_uid and long_id.series_instance_uid
    cut = inspect(by_name["truncated-pixels"].data)
    assert cut.identity.patient_name == synthetic.DEFAULT_PATIENT.name
    assert cut.identity.transfer_syntax == "1.2.840.10008.1.2.1"
    assert inspect(by_name["png"].data).identity.sop_instance_uid is None


def test_gb18030_rule() -> None:
    for name in ("张^伟", "李^喆", "Li^Zhe=李^喆", "示范市第一人民医院", "胸部CT增强扫描"):
        assert looks_gb18030(name.encode("gb18030")), name
    for latin in ("Müller^Jürgen", "Gößmann", "Zoë"):
        assert not looks_gb18030(latin.encode("latin-1")), latin
    assert not looks_gb18030(b"Zhang^Wei")  # nothing to relabel in ASCII


# --- valid files ----------------------------------------------------------------------------------

def _valid_datasets() -> dict[str, Dataset]:
    return {
        "ct": synthetic.ct_volume(slices=1, rows=64, columns=64, patient=ZHANG)[0],
        "ct-gb18030": synthetic.ct_volume(slices=1, rows=32, columns=32, patient=LI,
                                          charset="GB18030")[0],
        "mr": synthetic.mr_series(slices=1, rows=32, columns=32, patient=LI, bits_stored=16)[0],
        "us": synthetic.us_cine(frames=3, rows=32, columns=48, patient=ZHANG),
        "us-grey": synthetic.us_cine(frames=2, rows=32, columns=32, color=False),
        "dx": synthetic.dx_image(rows=64, columns=64, patient=LI),
        "dx-8bit": synthetic.dx_image(rows=32, columns=32, bits_stored=8),
    }


def _assert_accepted(data: bytes, what: str) -> Verdict:
    verdict = inspect(data)
    assert verdict.action is Action.ACCEPT, f"{what}: {_summary(verdict)}"
    assert verdict.reasons == () and verdict.repaired is None and verdict.repairs == ()
    ds = pydicom.dcmread(BytesIO(data))
    identity = verdict.identity
    assert identity.sop_instance_uid == ds.SOPInstanceUID
    assert identity.sop_class_uid == ds.SOPClassUID
    assert identity.study_instance_uid == ds.StudyInstanceUID
    assert identity.series_instance_uid == ds.SeriesInstanceUID
    assert identity.patient_id == ds.PatientID
    assert identity.patient_name == str(ds.PatientName), what
    assert identity.transfer_syntax == ds.file_meta.TransferSyntaxUID
    return verdict


def test_synthetic_images_are_accepted() -> None:
    for name, ds in _valid_datasets().items():
        _assert_accepted(synthetic.to_bytes(ds), name)
    assert inspect(synthetic.to_bytes(_valid_datasets()["ct-gb18030"])).identity.patient_name \
        == "Li^Zhe=李^喆"


@pytest.mark.parametrize("syntax", sorted(dicom_data.ENCODINGS))
def test_every_transfer_syntax_is_accepted(syntax: str, folder: Path) -> None:
    datasets = _valid_datasets()
    for name in ("ct", "us", "mr", "dx"):
        ds = datasets[name]
        src = synthetic.write_file(ds, folder / f"valid-{name}.dcm")
        out = dicom_data.encode(src, folder / f"valid-{name}-{syntax}.dcm", syntax)
        _assert_accepted(out.read_bytes(), f"{name} in {dicom_data.ENCODINGS[syntax].name}")


def test_a_512_ct_is_accepted_through_a_memoryview() -> None:
    data = synthetic.to_bytes(synthetic.ct_volume(slices=1, rows=512, columns=512)[0])
    assert inspect(memoryview(data)).action is Action.ACCEPT
    assert inspect(bytearray(data)).action is Action.ACCEPT


# --- repairs --------------------------------------------------------------------------------------

def _without_charset(data: bytes) -> bytes:
    """``data`` minus its (0008,0005) element (Explicit VR LE), found by its header bytes."""
    at = data.find(b"\x08\x00\x05\x00CS", 132)
    if at < 0:
        return data
    (length,) = struct.unpack_from("<H", data, at + 6)
    return data[:at] + data[at + 8 + length:]


def test_repairs_change_only_the_character_set(corpus: list[Case]) -> None:
    repairs = [case for case in corpus if case.action is Action.REPAIR]
    assert len(repairs) >= 4
    for case in repairs:
        verdict = inspect(case.data)
        assert verdict.action is Action.REPAIR and verdict.repaired is not None, case.name
        assert [r.tag for r in verdict.repairs] == [0x00080005]
        assert verdict.repairs[0].after == "GB18030"
        # Every byte but the one element is as received.
        assert _without_charset(verdict.repaired) == _without_charset(case.data), case.name
        repaired = pydicom.dcmread(BytesIO(verdict.repaired))
        original = pydicom.dcmread(BytesIO(case.data))
        assert repaired.SpecificCharacterSet == "GB18030"
        assert str(repaired.PatientName) == synthetic.DEFAULT_PATIENT.name
        assert verdict.identity.patient_name == synthetic.DEFAULT_PATIENT.name
        assert repaired.PixelData == original.PixelData
        again = inspect(verdict.repaired)
        assert again.action is Action.ACCEPT, _summary(again)


def test_repair_records_the_label_it_replaced(corpus: list[Case]) -> None:
    by_name = {case.name: case for case in corpus}
    assert inspect(by_name["gb18030-as-latin1"].data).repairs[0].before == "ISO_IR 100"
    assert inspect(by_name["gb18030-unlabelled"].data).repairs[0].before is None


def test_repair_in_implicit_vr_keeps_every_other_byte(folder: Path) -> None:
    ds = synthetic.ct_volume(slices=1, rows=16, columns=16, charset="GB18030")[0]
    src = synthetic.write_file(ds, folder / "gb-implicit-src.dcm")
    data = dicom_data.encode(src, folder / "gb-implicit.dcm", "1.2.840.10008.1.2").read_bytes()
    at = data.find(b"\x08\x00\x05\x00\x08\x00\x00\x00GB18030 ", 132)
    assert at > 0
    mislabelled = data[:at] + b"\x08\x00\x05\x00\x0a\x00\x00\x00ISO_IR 100" + data[at + 16:]
    verdict = inspect(mislabelled)
    assert verdict.action is Action.REPAIR, _summary(verdict)
    assert verdict.repaired == data


# --- robustness -----------------------------------------------------------------------------------

def _mutations(data: bytes, rng: random.Random, count: int) -> list[bytes]:
    header = data.find(b"\xe0\x7f\x10\x00", 132) + 64
    out = []
    for i in range(count):
        kind = i % 4
        if kind == 0:
            out.append(data[:rng.randrange(len(data))])
            continue
        mutated = bytearray(data)
        for _ in range(rng.randint(1, 6)):
            at = rng.randrange(header if rng.random() < 0.8 else len(data))
            if kind == 1:
                mutated[at] ^= 1 << rng.randrange(8)
            elif kind == 2:
                mutated[at] = rng.randrange(256)
            else:
                mutated[at:at + 4] = b"\xff\xff\xff\xff"
        out.append(bytes(mutated))
    return out


@pytest.mark.timeout(120)
def test_no_input_makes_it_raise(corpus: list[Case], folder: Path) -> None:
    rng = random.Random(20261202)
    by_name = {case.name: case for case in corpus}
    sources = [by_name[name].data for name in (
        "utf8-labelled", "implicit-vr", "big-endian", "nested-sequences", "multi-frame-jpeg",
        "jp2-wrapped", "multi-frame-table", "deflated")]
    sources += [(folder / "corpus" / f"ct-{syntax}.dcm").read_bytes()
                for syntax in bad_dicom.COMPRESSED]
    actions = set()
    for source in sources:
        for mutated in _mutations(source, rng, 40):
            verdict = inspect(mutated)
            assert isinstance(verdict, Verdict)
            actions.add(verdict.action)
    assert Action.QUARANTINE in actions and Action.ACCEPT in actions
