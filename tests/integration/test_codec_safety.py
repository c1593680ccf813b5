"""Issue 7 item 5: transcoding to JPEG-LS never brings Orthanc down; codecs' temporary files are
private (docs/decisions.md, "JPEG-LS and the two CharLS" and "Orthanc's temporary files").

Before the CharLS-routing shim (orthanc-plugins/native/charls_route.c), every transcoding to
JPEG-LS that GDCM did killed Orthanc with SIGSEGV: on bookworm (GDCM plugin 1.5 transcodes every
syntax) from any source, by ``/modify``, WADO-RS and C-GET; on trixie (GDCM 1.8 transcodes only
JPEG 2000) from JPEG 2000. Here every source syntax is transcoded to both JPEG-LS syntaxes by
each of those paths on the session's archive, the pixels are checked, and Orthanc must still be
the same process at the end.

The temporary files: GDCM falls back to the PVRG reference decoder (``/usr/bin/pvrg-jpeg``, when
installed) for a JPEG its own codec refuses, and leaves the codestream and the decoded pixels in
``$TMPDIR`` (glibc's tempnam). The launcher gives Orthanc a private ``TMPDIR`` and umask 0077.
The test runs an archive whose Orthanc sees a stand-in ``pvrg-jpeg`` (written here, mounted over
``/usr/bin`` in Orthanc's own mount namespace only) and checks where the files go and who can
read them.
"""

from __future__ import annotations

import io
import os
import shlex
import stat
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
from pydicom.encaps import encapsulate, generate_pixel_data_frame

from archive_tools import synthetic
from archive_tools.synthetic import PatientInfo, StudyInfo
from testkit import dicom_data as dd
from testkit import platform as platforms
from testkit.orthanc_process import CHARLS_ROUTE_SHIM
from testkit.stack import Stack

pytestmark = pytest.mark.integration

ROWS, COLUMNS = 48, 64
#: Source syntax → kind of synthetic image. Every one reaches GDCM's JPEG-LS encoder on bookworm;
#: JPEG 2000 does on trixie too.
SOURCES = {
    uid.ExplicitVRLittleEndian: "mr",
    uid.JPEGBaseline8Bit: "dx",
    uid.JPEGLosslessSV1: "ct",
    uid.JPEG2000Lossless: "mr",
    uid.JPEGLSLossless: "mr",
    uid.RLELossless: "mr",
}
TARGETS = (uid.JPEGLSLossless, uid.JPEGLSNearLossless)
#: Largest error allowed for JPEG-LS near-lossless: DCMTK encodes with NEAR 2 (Orthanc's
#: transcoder), GDCM with its own default; both bound every sample.
NEAR_BOUND = 4
#: Two IJG-derived decoders (pydicom's and GDCM's or DCMTK's) may round a lossy JPEG differently.
LOSSY_DECODERS = 1


@dataclass(frozen=True)
class Stored:
    syntax: str
    encoded: Dataset
    reference: np.ndarray  # the stored pixels, as pydicom decodes them
    orthanc_id: str

    def identifier(self) -> Dataset:
        query = Dataset()
        query.QueryRetrieveLevel = "IMAGE"
        query.StudyInstanceUID = self.encoded.StudyInstanceUID
        query.SeriesInstanceUID = self.encoded.SeriesInstanceUID
        query.SOPInstanceUID = self.encoded.SOPInstanceUID
        return query


def _image(kind: str, seed: int) -> Dataset:
    patient = PatientInfo(name="林^雅婷", patient_id=f"CS-{dd.unique_token()}", sex="F")
    study = StudyInfo(accession=f"CS{seed}", description="编解码安全")
    if kind == "dx":
        return synthetic.dx_image(ROWS, COLUMNS, patient=patient, study=study, bits_stored=8,
                                  seed=seed)
    if kind == "ct":
        return synthetic.ct_volume(1, ROWS, COLUMNS, patient=patient, study=study, seed=seed)[0]
    return synthetic.mr_series(1, ROWS, COLUMNS, patient=patient, study=study, bits_stored=16,
                               seed=seed)[0]


def _encode(syntax: str, kind: str, folder: Path, seed: int) -> Path:
    plain = synthetic.write_file(_image(kind, seed), folder / f"plain-{seed}.dcm")
    return dd.encode(plain, folder / f"encoded-{seed}.dcm", syntax)


def _upload(http: requests.Session, url: str, data: bytes) -> str:
    r = http.post(f"{url}/instances", data=data, timeout=30)
    assert r.status_code == 200, f"upload: {r.status_code} {r.text[:300]}"
    return str(r.json()["ID"])


@pytest.fixture(scope="module")
def orthanc_pid(archive: Stack) -> int:
    return archive.program_pid("orthanc")


@pytest.fixture(scope="module")
def stored(archive: Stack, http: requests.Session, tmp_path_factory: pytest.TempPathFactory,
           orthanc_pid: int) -> dict[str, Stored]:
    folder = tmp_path_factory.mktemp("codec-safety")
    out: dict[str, Stored] = {}
    for seed, (syntax, kind) in enumerate(SOURCES.items(), start=1):
        path = _encode(syntax, kind, folder, seed)
        encoded = dd.read(path)
        orthanc_id = _upload(http, archive.orthanc_url, path.read_bytes())
        out[str(syntax)] = Stored(str(syntax), encoded, dd.pixels(encoded), orthanc_id)
    return out


@pytest.fixture(scope="module")
def dicomweb(archive: Stack) -> DICOMwebClient:
    return DICOMwebClient(url=f"{archive.url}/dicom-web", headers=archive.auth_headers())


@pytest.fixture(params=[(s, t) for t in TARGETS for s in SOURCES],
                ids=lambda p: f"{dd.ENCODINGS[p[0]].name} to {dd.ENCODINGS[p[1]].name}")
def conversion(request: pytest.FixtureRequest) -> tuple[str, str]:
    source, target = request.param
    return str(source), str(target)


def _check_pixels(ds: Dataset, target: str, source: Stored, what: str) -> None:
    assert str(ds.file_meta.TransferSyntaxUID) == target, f"{what}: {ds.file_meta.TransferSyntaxUID}"
    decoded = dd.pixels(ds)
    assert decoded.shape == source.reference.shape, what
    error = dd.max_abs_error(decoded, source.reference)
    bound = 0 if target == uid.JPEGLSLossless else NEAR_BOUND
    if not dd.ENCODINGS[source.syntax].lossless:
        bound += LOSSY_DECODERS  # the reference is pydicom's decoding, Orthanc's is another
    assert error <= bound, f"{what}: decoded pixels differ by up to {error} (bound {bound})"


def _still_up(archive: Stack, pid: int) -> None:
    now = archive.program_pid("orthanc")
    assert now == pid, f"Orthanc was restarted (PID {pid} → {now}):\n{archive.log_text()[-3000:]}"


def test_the_charls_route_shim_is_loaded_into_orthanc(orthanc_pid: int) -> None:
    maps = Path(f"/proc/{orthanc_pid}/maps").read_text()
    assert CHARLS_ROUTE_SHIM.name in maps, "the CharLS-routing shim is not loaded into Orthanc"


def test_rest_transcode_to_jpeg_ls(conversion: tuple[str, str], stored: dict[str, Stored],
                                   archive: Stack, http: requests.Session,
                                   orthanc_pid: int) -> None:
    source = stored[conversion[0]]
    r = http.post(f"{archive.orthanc_url}/instances/{source.orthanc_id}/modify",
                  json={"Transcode": conversion[1], "Force": True, "Keep": ["SOPInstanceUID"]},
                  timeout=60)
    assert r.status_code == 200, f"modify: {r.status_code} {r.text[:300]}"
    _check_pixels(dd.read(r.content), conversion[1], source, "REST /modify Transcode")
    _still_up(archive, orthanc_pid)


def test_wado_rs_instance_in_jpeg_ls(conversion: tuple[str, str], stored: dict[str, Stored],
                                     archive: Stack, dicomweb: DICOMwebClient,
                                     orthanc_pid: int) -> None:
    source = stored[conversion[0]]
    ds = dicomweb.retrieve_instance(
        str(source.encoded.StudyInstanceUID), str(source.encoded.SeriesInstanceUID),
        str(source.encoded.SOPInstanceUID), media_types=(("application/dicom", conversion[1]),))
    _check_pixels(ds, conversion[1], source, "WADO-RS instance")
    _still_up(archive, orthanc_pid)


def test_c_get_by_a_client_that_accepts_only_jpeg_ls(
        conversion: tuple[str, str], stored: dict[str, Stored], archive: Stack,
        orthanc_pid: int) -> None:
    """Orthanc 1.12 transcodes C-GET sub-operations to what the client accepts (so JPEG 2000
    reached GDCM's JPEG-LS encoder by DIMSE too); Orthanc 1.10.1 offers only the stored syntax
    and uncompressed ones, so the C-GET fails unless the instance is stored in that syntax."""
    source = stored[conversion[0]]
    got = dd.c_get(archive.dicom_port, archive.aet, source.identifier(),
                   sop_classes=[str(source.encoded.SOPClassUID)],
                   transfer_syntaxes=[conversion[1]])
    _still_up(archive, orthanc_pid)
    if platforms.is_bookworm() and conversion[0] != conversion[1]:
        assert got.status is not None and got.status != 0x0000 and got.instances == [], (
            f"C-GET of {conversion[0]} to a {conversion[1]}-only client: status {got.status}, "
            f"{len(got.instances)} instance(s): Orthanc 1.10.1 now transcodes DIMSE?")
        return
    assert got.status == 0x0000, f"C-GET final status {got.status}"
    assert len(got.instances) == 1
    _check_pixels(got.instances[0], conversion[1], source, "C-GET")


def test_wado_rs_frame_of_jpeg_2000_in_jpeg_ls(stored: dict[str, Stored], archive: Stack,
                                              http: requests.Session, orthanc_pid: int) -> None:
    """The frame path of the DICOMweb plugin (GDCM transcodes the frame itself)."""
    source = stored[uid.JPEG2000Lossless]
    e = source.encoded
    r = requests.get(
        f"{archive.url}/dicom-web/studies/{e.StudyInstanceUID}/series/{e.SeriesInstanceUID}"
        f"/instances/{e.SOPInstanceUID}/frames/1",
        headers={"Accept": f'multipart/related; type="image/jls"; '
                           f'transfer-syntax={uid.JPEGLSLossless}'}, timeout=60)
    _still_up(archive, orthanc_pid)
    assert r.status_code == 200, f"frames: {r.status_code} {r.text[:300]}"
    assert b"\xff\xd8\xff\xf7" in r.content, "no JPEG-LS codestream (SOI, SOF55) in the frame"


def test_jpeg_2000_still_renders_for_the_viewer(stored: dict[str, Stored], archive: Stack,
                                                dicomweb: DICOMwebClient,
                                                orthanc_pid: int) -> None:
    e = stored[uid.JPEG2000Lossless].encoded
    rendered = dicomweb.retrieve_instance_frames_rendered(
        str(e.StudyInstanceUID), str(e.SeriesInstanceUID), str(e.SOPInstanceUID),
        frame_numbers=[1], media_types=("image/jpeg",))
    image = Image.open(io.BytesIO(rendered))
    assert (image.format, image.size) == ("JPEG", (COLUMNS, ROWS))
    _still_up(archive, orthanc_pid)


# --- temporary files ----------------------------------------------------------------------------

def _orthanc_tmp(stack: Stack) -> Path:
    return stack.run_dir / "tmp" / "orthanc"


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode(errors="replace").split("=", 1) for item in raw if b"=" in item)


def _umask(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Umask:"):
            return int(line.split()[1], 8)
    raise AssertionError("no Umask in /proc/PID/status")


def test_orthanc_runs_with_a_private_temporary_folder(archive: Stack, orthanc_pid: int) -> None:
    folder = _orthanc_tmp(archive)
    assert _environ(orthanc_pid).get("TMPDIR") == str(folder)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert _umask(orthanc_pid) == 0o077


def _corrupt_jpegs(folder: Path) -> Iterator[bytes]:
    """JPEG baseline instances whose frame GDCM's own JPEG codec refuses (it then tries PVRG);
    their headers are intact, as the ingest gate checks them."""
    path = _encode(uid.JPEGBaseline8Bit, "dx", folder, seed=90)
    frame = next(generate_pixel_data_frame(dd.read(path).PixelData, 1))
    scan = frame.find(b"\xff\xda") + 20
    scrambled = frame[:scan] + bytes(b ^ 0x5A for b in frame[scan:-2]) + frame[-2:]
    components = bytearray(frame)
    start_of_frame = frame.find(b"\xff\xc0")
    components[start_of_frame + 9] = 7  # seven components, one declared in the scan
    for n, body in enumerate((scrambled, bytes(components))):
        ds = dd.read(path)
        ds.PixelData = encapsulate([body])
        ds.SOPInstanceUID = uid.generate_uid()
        out = folder / f"corrupt-{n}.dcm"
        ds.save_as(out)
        yield out.read_bytes()


def _decode_everywhere(http: requests.Session, orthanc_url: str, orthanc_id: str) -> None:
    """Every decoding path of Orthanc's REST; each must get an answer (the process lives)."""
    for what in ("preview", "frames/0/rendered", "frames/0/image-uint16", "frames/0/raw"):
        http.get(f"{orthanc_url}/instances/{orthanc_id}/{what}", timeout=60)


def _gdcm_files_in_tmp() -> set[str]:
    return {p.name for p in Path("/tmp").iterdir() if p.name.startswith("gdcm")}


class _StandInPvrgStack(Stack):
    """An archive whose Orthanc sees a stand-in ``/usr/bin/pvrg-jpeg`` in its own mount
    namespace: it writes ``INPUT.1`` (where PVRG puts decoded pixels) and fails."""

    def environment(self) -> dict[str, str]:
        env = super().environment()
        platform = platforms.current()
        fake_bin = self.workdir / "fake-bin"
        fake_bin.mkdir(parents=True, exist_ok=True)
        pvrg = fake_bin / "pvrg-jpeg"
        pvrg.write_text('#!/bin/sh\nfor last; do :; done\n'
                        'printf "decoded pixels of %s" "$last" > "$last.1"\nexit 1\n')
        pvrg.chmod(0o755)
        usr_bin = platform.host_path("/usr/bin")
        real = env["ARCHIVE_ORTHANC"]
        mount = (f"mount -t overlay overlay -o lowerdir={fake_bin}:{usr_bin} {usr_bin}"
                 f' && exec {shlex.quote(real)} "$@"')
        wrapper = self.workdir / "orthanc-with-pvrg"
        # unshare without --fork and sh's exec: the PID supervisord holds is Orthanc's.
        wrapper.write_text(f"#!/bin/sh\nexec unshare --mount sh -c {shlex.quote(mount)} sh \"$@\"\n")
        wrapper.chmod(0o755)
        env["ARCHIVE_ORTHANC"] = str(wrapper)
        return env


def test_codec_temporary_files_are_private_and_gone_at_the_next_start(
        tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting the stand-in pvrg-jpeg needs root (a private mount namespace)")
    stack = _StandInPvrgStack(tmp_path / "archive")
    before = _gdcm_files_in_tmp()
    with stack:
        pid = stack.program_pid("orthanc")
        with requests.Session() as http:
            http.auth = stack.orthanc_auth
            for data in _corrupt_jpegs(tmp_path):
                _decode_everywhere(http, stack.orthanc_url, _upload(http, stack.orthanc_url, data))
        assert stack.program_pid("orthanc") == pid, "Orthanc was restarted"
        left = sorted(_orthanc_tmp(stack).iterdir())
        for path in left:
            mode = stat.S_IMODE(path.stat().st_mode)
            assert mode & 0o077 == 0, f"{path.name} is readable by others: {oct(mode)}"
        if platforms.is_bookworm():
            # GDCM 1.5 decodes JPEG itself and falls back to PVRG: the leak this guards.
            assert any(p.name.endswith(".1") for p in left), "the PVRG fallback did not run"
        assert _gdcm_files_in_tmp() == before, "a codec wrote to /tmp"
    stack.start()  # the same data folder: the run folder, Orthanc's TMPDIR with it, is new
    try:
        assert list(_orthanc_tmp(stack).iterdir()) == []
    finally:
        stack.stop()
