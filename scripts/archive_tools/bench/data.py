"""The benchmark's instances: made once, kept in a cache folder, described by a manifest.

Three kinds, all made by :mod:`archive_tools.synthetic`:

* CT volumes of 512×512 slices (≈0.5 MB each): the "small instance" of M19 ingest, the
  1000-instance series of WADO-RS, the 500-slice study the viewer opens;
* DX radiographs of 10-50 MB (the sizes of DX and mammography): the "large instance";
* tiny one-instance studies (8×8 pixels, a few hundred bytes of pixels) to fill the index with
  thousands of studies for QIDO-RS, fast to make and to store; a few more of them with Chinese
  patient names, which only our API's decoding QIDO route can find on Orthanc 1.10.

A set is regenerated only when its manifest is missing or was made with other parameters.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset
from pydicom.uid import SecondaryCaptureImageStorage

from .. import synthetic

log = logging.getLogger(__name__)

MANIFEST: Final = "manifest.json"
#: (rows, columns) of the large instances, cycled: 10, 27, 40 and 50 MB of 16-bit pixels.
DX_SIZES: Final = ((2560, 2048), (3328, 4096), (4000, 5000), (4800, 5200))
TINY_MODALITIES: Final = ("CT", "MR", "DX", "US", "CR", "MG")
#: Family and given names of the Chinese-named patients (their names are unique pairs).
ZH_FAMILY: Final = "王李张刘陈杨黄赵吴周"
ZH_GIVEN: Final = ("芳", "伟", "娜", "敏", "静", "丽", "强", "磊", "军", "洋")
#: Study numbers of the Chinese-named studies start here, past any QIDO population's.
ZH_FIRST: Final = 900_000


@dataclass(frozen=True)
class DataSet:
    """Files of one set and what the benchmark needs to know about them."""

    name: str
    folder: Path
    files: tuple[Path, ...]
    sizes: tuple[int, ...]
    sop_classes: tuple[str, ...]
    study_uids: tuple[str, ...]
    series_uids: tuple[str, ...]
    sop_uids: tuple[str, ...]
    description: str
    generated_s: float

    @property
    def count(self) -> int:
        return len(self.files)

    @property
    def total_bytes(self) -> int:
        return sum(self.sizes)

    def summary(self) -> dict[str, Any]:
        return {"instances": self.count, "bytes": self.total_bytes,
                "studies": len(self.study_uids), "description": self.description,
                "generated_s": round(self.generated_s, 1)}


def _load(folder: Path, name: str, params: dict[str, Any]) -> DataSet | None:
    path = folder / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if manifest.get("params") != params:
        return None
    files = tuple(folder / f for f in manifest["files"])
    sizes = tuple(int(s) for s in manifest["sizes"])
    if any(not f.is_file() or f.stat().st_size != s for f, s in zip(files, sizes)):
        return None
    return DataSet(name=name, folder=folder, files=files, sizes=sizes,
                   sop_classes=tuple(manifest["sop_classes"]),
                   study_uids=tuple(manifest["study_uids"]),
                   series_uids=tuple(manifest["series_uids"]),
                   sop_uids=tuple(manifest["sop_uids"]),
                   description=manifest["description"],
                   generated_s=float(manifest["generated_s"]))


def _save(folder: Path, name: str, params: dict[str, Any], description: str,
          files: Sequence[Path], datasets_info: Sequence[tuple[str, str, str, str]],
          generated_s: float) -> DataSet:
    """Write the manifest; ``datasets_info`` is (sop class, study, series, sop instance)."""
    sizes = [f.stat().st_size for f in files]
    study_uids = list(dict.fromkeys(i[1] for i in datasets_info))
    series_uids = list(dict.fromkeys(i[2] for i in datasets_info))
    manifest = {
        "params": params,
        "description": description,
        "files": [f.name for f in files],
        "sizes": sizes,
        "sop_classes": sorted({i[0] for i in datasets_info}),
        "study_uids": study_uids,
        "series_uids": series_uids,
        "sop_uids": [i[3] for i in datasets_info],
        "generated_s": generated_s,
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1))
    loaded = _load(folder, name, params)
    assert loaded is not None
    return loaded


def _info(ds: Dataset) -> tuple[str, str, str, str]:
    return (str(ds.SOPClassUID), str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID),
            str(ds.SOPInstanceUID))


def _fresh(folder: Path) -> None:
    if folder.exists():
        for f in folder.iterdir():
            if f.is_file():
                f.unlink()
    folder.mkdir(parents=True, exist_ok=True)


Info = tuple[str, str, str, str]
#: Writes one set into a folder: returns its files and, per file, (sop class, study, series, sop).
Maker = Callable[[Path], tuple[list[Path], list[Info]]]


class DataCache:
    """Sets of instances under ``root`` (``benchmarks/tmp/data`` by default)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _cached(self, name: str, params: dict[str, Any], description: str,
                make: Maker) -> DataSet:
        """The set ``name`` from the cache if made with ``params``, else made now by ``make``."""
        folder = self.root / name
        found = _load(folder, name, params)
        if found is not None:
            return found
        log.info("generating %s: %s", name, description)
        started = time.monotonic()
        _fresh(folder)
        files, info = make(folder)
        return _save(folder, name, params, description, files, info,
                     time.monotonic() - started)

    def ct(self, name: str, slices: int, rows: int = 512, columns: int = 512,
           seed: int = 0) -> DataSet:
        """One CT series of ``slices`` slices (one study)."""
        params = {"kind": "ct", "slices": slices, "rows": rows, "columns": columns,
                  "seed": seed, "version": 1}

        def make(folder: Path) -> tuple[list[Path], list[Info]]:
            volume = synthetic.ct_volume(slices, rows, columns, seed=seed)
            return synthetic.write_files(volume, folder), [_info(ds) for ds in volume]

        return self._cached(name, params, f"CT {slices} slices {rows}x{columns} 16-bit", make)

    def dx(self, name: str, count: int) -> DataSet:
        """``count`` radiographs cycling through :data:`DX_SIZES` (one study each)."""
        params = {"kind": "dx", "count": count, "sizes": [list(s) for s in DX_SIZES],
                  "version": 1}

        def make(folder: Path) -> tuple[list[Path], list[Info]]:
            files: list[Path] = []
            info: list[Info] = []
            for i in range(count):
                rows, columns = DX_SIZES[i % len(DX_SIZES)]
                ds = synthetic.dx_image(rows, columns, seed=i)  # one at a time: up to 50 MB
                info.append(_info(ds))
                files += synthetic.write_files([ds], folder)
            return files, info

        return self._cached(name, params, f"DX {count} instances of 10-50 MB 16-bit", make)

    def tiny(self, name: str, first: int, count: int) -> DataSet:
        """Studies number ``first`` … ``first+count-1`` of the QIDO population (see :func:`tiny_study`)."""
        params = {"kind": "tiny", "first": first, "count": count, "version": 2}

        def make(folder: Path) -> tuple[list[Path], list[Info]]:
            files: list[Path] = []
            info: list[Info] = []
            pixels = np.arange(64, dtype=np.uint16).reshape(8, 8)
            for n in range(first, first + count):
                ds = tiny_study(n, pixels)
                path = folder / f"{n:06d}.dcm"
                ds.save_as(path, enforce_file_format=True)
                files.append(path)
                info.append(_info(ds))
            return files, info

        return self._cached(name, params, f"{count} one-instance studies, 8x8 pixels", make)

    def tiny_zh(self, name: str, patients: int) -> DataSet:
        """Two tiny studies for each of ``patients`` patients with Chinese names (:func:`zh_patient`)."""
        params = {"kind": "tiny-zh", "patients": patients, "version": 1}

        def make(folder: Path) -> tuple[list[Path], list[Info]]:
            files: list[Path] = []
            info: list[Info] = []
            pixels = np.arange(64, dtype=np.uint16).reshape(8, 8)
            for k in range(patients):
                patient_name, patient_id = zh_patient(k)
                patient = synthetic.PatientInfo(patient_name, patient_id, "19700101", "MF"[k % 2])
                for j in range(2):
                    n = ZH_FIRST + 2 * k + j
                    ds = tiny_study(n, pixels, patient)
                    path = folder / f"{n:06d}.dcm"
                    ds.save_as(path, enforce_file_format=True)
                    files.append(path)
                    info.append(_info(ds))
            return files, info

        return self._cached(name, params, f"{2 * patients} one-instance studies of {patients} "
                            "patients with Chinese names, 8x8 pixels", make)


def tiny_patient(n: int) -> tuple[str, str]:
    """(PatientName, PatientID) of study ``n``: two studies per patient."""
    p = n // 2
    return f"BENCH^P{p:05d}", f"BP{p:05d}"


def zh_patient(k: int) -> tuple[str, str]:
    """(PatientName, PatientID) of Chinese-named patient ``k`` (0 ≤ k < 1000): ``王^芳伟``, ``ZH0000``."""
    if not 0 <= k < len(ZH_FAMILY) * len(ZH_GIVEN) ** 2:
        raise ValueError(f"patient {k}: only {len(ZH_FAMILY) * len(ZH_GIVEN) ** 2} names")
    family = ZH_FAMILY[k % len(ZH_FAMILY)]
    rest = k // len(ZH_FAMILY)
    given = ZH_GIVEN[rest % len(ZH_GIVEN)] + ZH_GIVEN[rest // len(ZH_GIVEN)]
    return f"{family}^{given}", f"ZH{k:04d}"


def tiny_accession(n: int) -> str:
    return f"ACC{n:07d}"


def tiny_date(n: int) -> dt.date:
    """Study dates spread over ten years, 2015-2024."""
    return dt.date(2015, 1, 1) + dt.timedelta(days=(n * 7919) % 3650)


def tiny_study(n: int, pixels: NDArray[np.uint16],
               patient: synthetic.PatientInfo | None = None) -> Dataset:
    """A one-instance Secondary Capture study (PS3.3 A.8.1) with the attributes QIDO matches on;
    the patient is :func:`tiny_patient`'s unless given."""
    if patient is None:
        name, patient_id = tiny_patient(n)
        patient = synthetic.PatientInfo(name, patient_id, f"{1940 + n % 70}0101", "MF"[n % 2])
    study = synthetic.StudyInfo(date=f"{tiny_date(n):%Y%m%d}",
                                time=f"{8 + n % 10:02d}{n % 60:02d}00",
                                accession=tiny_accession(n), description=f"BENCH STUDY {n % 50}",
                                referring_physician="", study_id=str(n))
    series = synthetic.new_series(study, TINY_MODALITIES[n % len(TINY_MODALITIES)], "", 1, "", 0)
    ds = synthetic.new_instance(SecondaryCaptureImageStorage, patient, study, series, 1,
                                study.time)
    ds.ConversionType = "WSD"
    synthetic.set_pixels(ds, pixels, "MONOCHROME2", 12)
    return ds


def describe(sets: Sequence[DataSet]) -> dict[str, Any]:
    return {s.name: s.summary() for s in sets}


__all__ = ["DataCache", "DataSet", "tiny_study", "tiny_patient", "tiny_accession", "tiny_date",
           "zh_patient", "describe"]
