"""Load the synthetic demo studies into a running archive, or write them to a folder.

    scripts/demo-data                                  STOW-RS to http://127.0.0.1:8042
    scripts/demo-data --url http://host:8042           STOW-RS to another archive
    scripts/demo-data --dicom host:4242 --aet ARCHIVE  C-STORE instead of DICOMweb
    scripts/demo-data --out DIR                        write DICOM files, send nothing

Progress goes to stderr; at the end each study's StudyInstanceUID and its viewer link go to
stdout. The exit status is 1, with a message naming the archive, when it cannot be reached or
refuses an instance, and 2 for a wrong command line.
"""

from __future__ import annotations

import argparse
import io
import logging
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self, TextIO

import requests
from pydicom.dataset import Dataset
from pydicom.filewriter import dcmwrite
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE
from pynetdicom.association import Association

from archive_tools import synthetic

log = logging.getLogger(__name__)

PROG = "demo-data"
DEFAULT_URL = "http://127.0.0.1:8042"
MODALITIES = ("CT", "DX", "MR", "US")


class DemoDataError(Exception):
    """Why the demo data did not get into the archive; the message is shown to the user."""


class ArchiveUnreachable(DemoDataError):
    """No connection, no association, or no DICOMweb service where the archive should be."""


class InstanceRefused(DemoDataError):
    """The archive answered but did not store an instance."""


# --- where instances go -------------------------------------------------------------------------


class InstanceSink(Protocol):
    """A destination for instances. Entering checks that it is there, before any work is done."""

    target: str  # shown in progress and error messages

    def __enter__(self) -> Self: ...

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None: ...

    def send(self, batch: Sequence[Dataset]) -> None: ...


# PS3.4 Table GG.4-1 and B.2-1: the failure reasons a STOW-RS response or C-STORE may carry.
FAILURE_REASONS = {
    0x0110: "processing failure",
    0x0112: "no such object instance",
    0x0122: "SOP class not supported",
    0x0124: "not authorized",
    0x0211: "unrecognized operation",
    0xA700: "out of resources",
    0xA770: "out of resources: unable to store",
    0xA900: "data set does not match SOP class",
    0xC000: "cannot understand",
    0xC122: "transfer syntax not supported",
}
# PS3.4 B.2.3: warnings still mean the instance is stored.
CSTORE_WARNINGS = {0xB000, 0xB006, 0xB007, 0x0107, 0x0116}


def _reason(code: int | None) -> str:
    if code is None:
        return "no reason given"
    return f"0x{code:04X} {FAILURE_REASONS.get(code, 'failure')}"


def _encode(ds: Dataset) -> bytes:
    """The instance as a PS3.10 file, which is what STOW-RS application/dicom parts carry."""
    buffer = io.BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def _json_values(body: Any, tag: str) -> list[Any]:
    element = body.get(tag) if isinstance(body, dict) else None
    values = element.get("Value") if isinstance(element, dict) else None
    return values if isinstance(values, list) else []


class StowSink:
    """DICOMweb STOW-RS (PS3.18 10.5): one multipart/related POST per batch."""

    def __init__(self, url: str, *, auth: tuple[str, str] | None = None,
                 timeout: float = 120.0) -> None:
        self.url = url.rstrip("/")
        self.target = f"{self.url}/dicom-web"
        self.timeout = timeout
        self.session = requests.Session()
        self.session.auth = auth

    def __enter__(self) -> Self:
        probe = f"{self.target}/studies?limit=1"
        try:
            response = self.session.get(probe, headers={"Accept": "application/dicom+json"},
                                        timeout=min(self.timeout, 10.0))
        except requests.RequestException as error:
            self.session.close()
            raise ArchiveUnreachable(f"cannot reach the archive at {self.url}: "
                                     f"{_short(error)}") from error
        if response.status_code not in (200, 204):
            self.session.close()
            raise ArchiveUnreachable(f"{probe} answered HTTP {response.status_code}: "
                                     "is this the archive, with DICOMweb enabled?")
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.session.close()

    def send(self, batch: Sequence[Dataset]) -> None:
        boundary = uuid.uuid4().hex
        parts = []
        for ds in batch:
            parts += [f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode(),
                      _encode(ds), b"\r\n"]
        parts.append(f"--{boundary}--\r\n".encode())
        headers = {
            "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
            "Accept": "application/dicom+json",
        }
        try:
            response = self.session.post(f"{self.target}/studies", data=b"".join(parts),
                                         headers=headers, timeout=self.timeout)
        except requests.RequestException as error:
            raise ArchiveUnreachable(f"lost the archive at {self.url}: {_short(error)}") from error
        try:
            body = response.json() if response.content else {}
        except ValueError:
            body = {}
        failed = _json_values(body, "00081198")
        if failed:
            first = failed[0]
            uid = (_json_values(first, "00081155") or ["?"])[0]
            code = (_json_values(first, "00081197") or [None])[0]
            raise InstanceRefused(f"{self.target} refused {len(failed)} of {len(batch)} "
                                  f"instances, first {uid}: {_reason(code)}")
        if response.status_code != 200:
            detail = body.get("Details") or body.get("Message") if isinstance(body, dict) else None
            if not detail and not body:
                detail = response.text[:200].strip()
            raise InstanceRefused(f"{self.target}/studies answered HTTP {response.status_code} "
                                  f"{response.reason}" + (f": {detail}" if detail else ""))
        stored = len(_json_values(body, "00081199"))
        if stored != len(batch):
            raise InstanceRefused(f"{self.target} acknowledged {stored} of {len(batch)} instances")


class CStoreSink:
    """DIMSE C-STORE (PS3.4 B, PS3.7 9.1.1) over one association for the whole run."""

    def __init__(self, host: str, port: int, called_aet: str, calling_aet: str,
                 sop_classes: Sequence[str], *, timeout: float = 60.0) -> None:
        self.host, self.port = host, port
        self.called_aet = called_aet
        self.target = f"{called_aet}@{host}:{port}"
        self.ae = AE(ae_title=calling_aet)
        self.ae.acse_timeout = self.ae.dimse_timeout = self.ae.network_timeout = timeout
        for sop_class in dict.fromkeys(sop_classes):
            self.ae.add_requested_context(sop_class, [ExplicitVRLittleEndian,
                                                      ImplicitVRLittleEndian])
        self.association: Association | None = None

    def __enter__(self) -> Self:
        association = self.ae.associate(self.host, self.port, ae_title=self.called_aet)
        if association.is_rejected:
            raise ArchiveUnreachable(f"{self.target} rejected the association "
                                     f"from {self.ae.ae_title}")
        if not association.is_established:
            raise ArchiveUnreachable(f"cannot reach the archive at {self.target}: no DICOM "
                                     "association (nothing listening, or it aborted)")
        self.association = association
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self.association is not None and self.association.is_established:
            self.association.release()
        self.association = None

    def send(self, batch: Sequence[Dataset]) -> None:
        if self.association is None:
            raise RuntimeError("CStoreSink.send outside its with-block")
        for ds in batch:
            status = self.association.send_c_store(ds)
            if "Status" not in status:
                raise ArchiveUnreachable(f"lost the association with {self.target} "
                                         f"while sending {ds.SOPInstanceUID}")
            code = int(status.Status)
            if code != 0x0000 and code not in CSTORE_WARNINGS:
                raise InstanceRefused(f"{self.target} refused {ds.SOPInstanceUID}: "
                                      f"{_reason(code)}")


class FolderSink:
    """Files instead of an archive: one folder per study, named by its StudyInstanceUID."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.target = str(folder)

    def __enter__(self) -> Self:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise DemoDataError(f"cannot create {self.folder}: {error.strerror}") from error
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        pass

    def send(self, batch: Sequence[Dataset]) -> None:
        for ds in batch:
            synthetic.write_files([ds], self.folder / str(ds.StudyInstanceUID))


def _short(error: BaseException) -> str:
    """The innermost cause of a requests error, which is the part that says what went wrong."""
    while error.__context__ is not None and not isinstance(error, ConnectionRefusedError):
        error = error.__context__
    text = str(error)
    return text.split(": ", 1)[-1] if "Errno" in text else text


# --- the command --------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredStudy:
    uid: str
    modality: str
    description: str
    patient: str
    instances: int


class Progress:
    """Instances sent per study, on stderr: rewritten in place on a terminal, one line per
    batch otherwise (so that logs of CI runs stay readable)."""

    def __init__(self, total: int, stream: TextIO | None = None) -> None:
        self.total = total
        self.sent = 0
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()

    def update(self, label: str, done: int, count: int) -> None:
        line = f"[{PROG}] {label}: {done}/{count}  (all: {self.sent}/{self.total})"
        if self.live:
            self.stream.write("\r" + line + ("\n" if done == count else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def send_studies(studies: Sequence[Sequence[Dataset]], sink: InstanceSink, batch_size: int,
                 progress: Progress) -> list[StoredStudy]:
    """Send every study in batches, reporting progress; stops at the first failure."""
    stored = []
    for study in studies:
        first = study[0]
        label = f"{first.Modality} {first.StudyDescription} ({first.PatientName})"
        for start in range(0, len(study), batch_size):
            batch = study[start:start + batch_size]
            sink.send(batch)
            progress.sent += len(batch)
            progress.update(label, start + len(batch), len(study))
        stored.append(StoredStudy(uid=str(first.StudyInstanceUID), modality=str(first.Modality),
                                  description=str(first.StudyDescription),
                                  patient=str(first.PatientName), instances=len(study)))
    return stored


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"want HOST:PORT, got {text!r}")
    return host, int(port)


def _credentials(text: str) -> tuple[str, str]:
    user, colon, password = text.partition(":")
    if not user or not colon:
        raise argparse.ArgumentTypeError("want USER:PASSWORD")
    return user, password


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Generate synthetic demo studies (chest CT, chest radiograph, "
        "brain MR, echo cine; Chinese patient names) and store them into a running archive.")
    parser.add_argument("--url", default=DEFAULT_URL,
                        help="archive base URL: STOW-RS goes to URL/dicom-web/studies, viewer "
                        "links point to URL/ohif/ (default: %(default)s)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--dicom", type=_host_port, metavar="HOST:PORT",
                       help="send with DIMSE C-STORE to this DICOM port instead of DICOMweb")
    where.add_argument("--out", type=Path, metavar="DIR",
                       help="write DICOM files under DIR (one folder per study), send nothing")
    parser.add_argument("--aet", default="ARCHIVE", help="called AE title with --dicom "
                        "(default: %(default)s)")
    parser.add_argument("--calling-aet", default="DEMODATA", help="our AE title with --dicom "
                        "(default: %(default)s)")
    parser.add_argument("--user", type=_credentials, metavar="USER:PASSWORD",
                        help="HTTP basic credentials, if the archive asks for them")
    parser.add_argument("--only", nargs="+", choices=MODALITIES, metavar="MODALITY",
                        help=f"only the studies of these modalities ({', '.join(MODALITIES)})")
    parser.add_argument("--batch-size", type=int, default=20,
                        help="instances per STOW-RS request (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="seconds to wait for the archive per request (default: %(default)s)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error("--batch-size must be at least 1")
    return args


def _sink(args: argparse.Namespace) -> InstanceSink:
    if args.out is not None:
        return FolderSink(args.out)
    if args.dicom is not None:
        host, port = args.dicom
        sop_classes = [synthetic.SOP_CLASSES[m] for m in (args.only or MODALITIES)]
        return CStoreSink(host, port, args.aet, args.calling_aet, sop_classes,
                          timeout=args.timeout)
    return StowSink(args.url, auth=args.user, timeout=args.timeout)


def _report(stored: Sequence[StoredStudy], args: argparse.Namespace) -> None:
    """The result, on stdout: what a user copies into a browser or a script parses."""
    out = sys.stdout
    for study in stored:
        count = f"{study.instances} instance" + ("s" if study.instances != 1 else "")
        out.write(f"{study.uid}  {study.modality}  {count}  "
                  f"{study.description}  {study.patient}\n")
        if args.out is not None:
            out.write(f"    {args.out / study.uid}\n")
        else:
            out.write(f"    {args.url.rstrip('/')}/ohif/viewer?StudyInstanceUIDs={study.uid}\n")
    out.flush()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format=f"[{PROG}] %(levelname)s %(name)s: %(message)s")
    if not args.verbose:  # its connection errors reach the user once, as ArchiveUnreachable
        logging.getLogger("pynetdicom").setLevel(logging.CRITICAL)
    started = time.monotonic()
    try:
        with _sink(args) as sink:
            studies = synthetic.demo_studies(args.only)
            generated = time.monotonic()
            total = synthetic.instance_count(studies)
            sys.stderr.write(f"[{PROG}] generated {len(studies)} studies, {total} instances "
                             f"in {generated - started:.1f} s; sending to {sink.target}\n")
            stored = send_studies(studies, sink, args.batch_size, Progress(total))
    except DemoDataError as error:
        sys.stderr.write(f"{PROG}: error: {error}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG}: interrupted\n")
        return 130
    sys.stderr.write(f"[{PROG}] done in {time.monotonic() - started:.1f} s\n")
    _report(stored, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
