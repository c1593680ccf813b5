"""A thin runner for the DCMTK (and GDCM) command-line tools used by the integration tests.

Every tool runs as a real process; a failure raises :class:`ToolFailed` whose message carries the
command line, the exit status and both output streams, so a red test says what the tool said.
:class:`StoreScp` runs DCMTK's ``storescp`` as a C-STORE destination (the move destination of a
C-MOVE, PS3.4 C.4.2) and polls its port for readiness instead of sleeping.
"""

from __future__ import annotations

import shlex
import socket
import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from testkit.processes import stop_process
from testkit.archive_process import free_port

Arg = str | Path | int


class ToolFailed(AssertionError):
    """A DCMTK/GDCM tool exited with an unexpected status (an assertion failure in a test)."""

    def __init__(self, args: Sequence[str], returncode: int | None, stdout: str,
                 stderr: str, reason: str = "") -> None:
        status = "timed out" if returncode is None else f"exit status {returncode}"
        message = f"{shlex.join(args)}\n  -> {status}{': ' + reason if reason else ''}"
        message += f"\n--- stdout ---\n{stdout.rstrip()}\n--- stderr ---\n{stderr.rstrip()}"
        super().__init__(message)
        self.args_list = list(args)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr


@dataclass(frozen=True)
class ToolResult:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        """stdout and stderr together (DCMTK logs to stderr or stdout depending on the tool)."""
        return self.stdout + self.stderr


def run(tool: str, *args: Arg, timeout: float = 60.0, check: bool = True,
        cwd: Path | None = None) -> ToolResult:
    """Run ``tool args…``; raise :class:`ToolFailed` if it fails (unless ``check`` is false)."""
    argv = [tool, *(str(a) for a in args)]
    try:
        proc = subprocess.run(argv, capture_output=True, timeout=timeout, cwd=cwd)
    except subprocess.TimeoutExpired as exc:
        raise ToolFailed(argv, None, _text(exc.stdout), _text(exc.stderr),
                         f"no exit after {timeout} s") from exc
    result = ToolResult(argv, proc.returncode, _text(proc.stdout), _text(proc.stderr))
    if check and proc.returncode != 0:
        raise ToolFailed(argv, proc.returncode, result.stdout, result.stderr)
    return result


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data if isinstance(data, str) else data.decode("utf-8", errors="replace")


def keys(**attributes: str) -> list[str]:
    """``-k Keyword=value`` arguments for findscu/movescu/getscu (an empty value is a return key)."""
    out: list[str] = []
    for keyword, value in attributes.items():
        out += ["-k", f"{keyword}={value}"]
    return out


def write_association_profile(folder: Path, sop_class_uids: Iterable[str],
                              transfer_syntax_uid: str,
                              profile: str = "Exact") -> tuple[Path, str]:
    """Write a DCMTK association negotiation file proposing exactly one transfer syntax.

    ``storescu -xf FILE PROFILE`` then proposes, for each SOP class, one presentation context
    whose only transfer syntax is ``transfer_syntax_uid`` (PS3.8 9.3.2.2), so an accepted
    association proves the peer accepts that very syntax, with no fallback to an uncompressed one.
    """
    classes = sorted(set(sop_class_uids))
    lines = ["[[TransferSyntaxes]]", "[OnlyOne]", f"TransferSyntax1 = {transfer_syntax_uid}", "",
             "[[PresentationContexts]]", "[Contexts]"]
    lines += [f"PresentationContext{i} = {uid}\\OnlyOne" for i, uid in enumerate(classes, 1)]
    lines += ["", "[[Profiles]]", f"[{profile}]", "PresentationContexts = Contexts", ""]
    path = folder / f"association-{transfer_syntax_uid}.cfg"
    path.write_text("\n".join(lines))
    return path, profile


def wait_for_port(port: int, process: subprocess.Popen[bytes] | None = None,
                  timeout: float = 15.0) -> None:
    """Poll until something accepts TCP connections on 127.0.0.1:``port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout} s")


@dataclass
class StoreScp:
    """DCMTK ``storescp`` on a free loopback port, accepting every transfer syntax it knows.

    Use as a context manager; received files land in ``folder``; ``log()`` is its output.
    """

    folder: Path
    aet: str = "STORESCP"
    port: int = field(default_factory=free_port)
    extra_args: Sequence[str] = ()
    process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.folder.parent / f"{self.folder.name}-storescp.log"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self) -> "StoreScp":
        self.folder.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            # +xa: accept all transfer syntaxes, so C-MOVE never needs transcoding by the archive.
            self.process = subprocess.Popen(
                ["storescp", "-v", "-aet", self.aet, "-od", str(self.folder), "+xa",
                 *self.extra_args, str(self.port)],
                stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for_port(self.port, self.process)
        except (RuntimeError, TimeoutError) as exc:
            self.stop()
            raise RuntimeError(f"storescp did not start: {exc}\n{self.log()}") from exc
        return self

    def received(self) -> list[Path]:
        return sorted(p for p in self.folder.iterdir() if p.is_file())

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, timeout=10)

    def __enter__(self) -> "StoreScp":
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
