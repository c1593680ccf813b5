"""Orthanc's HTTP threads have room for GDCM (see orthanc-plugins/native/thread_stack.c).

Without the preloaded shim, Debian's civetweb gives each HTTP worker 100 KiB of stack and every
JPEG 2000 → Explicit VR Little Endian transcoding by the GDCM plugin overflows it: the archive
died with SIGSEGV in gdcm::ImageWriter::Write in about half of the test runs.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import requests
from dicomweb_client.api import DICOMwebClient
from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless

from archive_tools import synthetic
from archive_tools.synthetic import PatientInfo
from testkit import dicom_data as dd
from testkit.stack import Stack

CIVETWEB_DEBIAN_STACK = 100 * 1024
MIN_STACK = 4 * 1024 * 1024


def anonymous_rw_mapping_sizes(pid: int) -> Counter[int]:
    sizes: Counter[int] = Counter()
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        fields = line.split()
        if len(fields) == 5 and fields[1].startswith("rw"):
            start, end = (int(x, 16) for x in fields[0].split("-"))
            sizes[end - start] += 1
    return sizes


def test_http_worker_stacks_are_raised(archive: Stack) -> None:
    sizes = anonymous_rw_mapping_sizes(archive.program_pid("orthanc"))
    assert sizes[CIVETWEB_DEBIAN_STACK] == 0, "civetweb threads still have 100 KiB stacks"
    assert sum(n for size, n in sizes.items() if size >= MIN_STACK) >= 50  # HttpThreadsCount


def test_repeated_jpeg2000_transcoding_keeps_the_archive_alive(
        archive: Stack, tmp_path: Path) -> None:
    patient = PatientInfo("石^磊", f"STACK-{dd.unique_token()}")
    original = synthetic.mr_series(1, 256, 256, patient=patient, bits_stored=16)[0]
    source = synthetic.write_file(original, tmp_path / "source.dcm")
    encoded = dd.encode(source, tmp_path / "j2k.dcm", JPEG2000Lossless)
    orthanc_pid = archive.program_pid("orthanc")
    r = requests.post(f"{archive.orthanc_url}/instances", data=encoded.read_bytes(), timeout=30,
                      auth=archive.orthanc_auth)
    assert r.status_code == 200, r.text
    client = DICOMwebClient(url=f"{archive.url}/dicom-web", headers=archive.auth_headers())
    uids = (str(original.StudyInstanceUID), str(original.SeriesInstanceUID),
            str(original.SOPInstanceUID))
    for attempt in range(30):
        ds = client.retrieve_instance(
            *uids, media_types=(("application/dicom", ExplicitVRLittleEndian),))
        assert str(ds.file_meta.TransferSyntaxUID) == ExplicitVRLittleEndian, f"attempt {attempt}"
        assert (dd.pixels(ds) == dd.pixels(original)).all(), f"attempt {attempt}"
        assert archive.program_pid("orthanc") == orthanc_pid, "Orthanc died and was restarted"
