"""An incremental parser of ``multipart/related`` bodies (RFC 2046 §5.1, RFC 2387), pure.

STOW-RS (PS3.18 §10.5) sends instances as the parts of one ``multipart/related`` body. The body
can be gigabytes, so it is never held whole: :class:`MultipartParser` is fed the request's chunks
as they arrive and hands back :class:`PartStart` / :class:`PartData` / :class:`PartEnd` events;
the caller decides where a part's bytes go. No I/O here.

What it accepts, and what counts as broken framing (:class:`FramingError`):

- A preamble before the first delimiter and an epilogue after the close delimiter are ignored.
  The first delimiter may open the body (``--b``) or follow a line break (``...\\r\\n--b``).
- A delimiter is ``CRLF--boundary`` followed by optional spaces or tabs and ``CRLF`` (or ``--``
  for the close delimiter). ``--boundary`` followed by anything else is part data, as is a
  boundary not preceded by CRLF: binary DICOM data may hold any bytes.
- Part headers end at an empty line; lines may end with CRLF or, leniently, a bare LF. Folded
  header lines (RFC 5322 §2.2.3) are unfolded. Headers larger than :data:`MAX_HEADER_BYTES` are
  broken framing.
- :meth:`MultipartParser.finish` reports how the body ended (:class:`Ending`): closed; complete
  parts without a close delimiter (``unclosed``, tolerated); or in the middle of a part
  (``truncated``: that part's bytes are incomplete and must not be stored).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

__all__ = [
    "Ending", "Event", "FramingError", "MAX_HEADER_BYTES", "MediaType", "MediaTypeError",
    "MultipartParser", "PartData", "PartEnd", "PartStart", "parse_media_type",
]

#: The most header bytes one part may carry (a STOW part has one or two short headers).
MAX_HEADER_BYTES = 16 * 1024
_CRLF = b"\r\n"
_LWSP = b" \t"
_TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
#: RFC 2046 §5.1.1 bchars (a boundary is 1 to 70 of them and does not end with a space).
_BCHARS = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'()+_,-./:=? ")


class FramingError(ValueError):
    """The body is not a multipart body with this boundary (headers too large, no parts …)."""


class MediaTypeError(ValueError):
    """A Content-Type header value that cannot be parsed."""


@dataclass(frozen=True)
class MediaType:
    """``type/subtype`` in lower case and its parameters (names lower-cased, values unquoted)."""

    type: str
    params: Mapping[str, str]

    def param(self, name: str) -> str | None:
        return self.params.get(name.lower())


def _skip_spaces(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t":
        i += 1
    return i


def _token(text: str, i: int) -> tuple[str, int]:
    start = i
    while i < len(text) and text[i] in _TOKEN_CHARS:
        i += 1
    return text[start:i], i


def _quoted(text: str, i: int) -> tuple[str, int]:
    """The quoted-string starting at ``text[i] == '"'`` (RFC 9110 §5.6.4), backslash escapes."""
    out: list[str] = []
    i += 1
    while i < len(text):
        c = text[i]
        if c == '"':
            return "".join(out), i + 1
        if c == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        out.append(c)
        i += 1
    raise MediaTypeError("a quoted parameter value is not closed")


def parse_media_type(value: str) -> MediaType:
    """``multipart/related; type="application/dicom"; boundary=x`` → its parts.

    Raises :class:`MediaTypeError` for a value that is not ``type/subtype *(; name=value)``.
    """
    text = value.strip()
    main, i = _token(text, 0)
    if i >= len(text) or text[i] != "/" or not main:
        raise MediaTypeError(f"not a media type: {value!r}")
    sub, i = _token(text, i + 1)
    if not sub:
        raise MediaTypeError(f"not a media type: {value!r}")
    params: dict[str, str] = {}
    while True:
        i = _skip_spaces(text, i)
        if i >= len(text):
            break
        if text[i] != ";":
            raise MediaTypeError(f"unexpected {text[i]!r} in media type {value!r}")
        i = _skip_spaces(text, i + 1)
        if i >= len(text):
            break  # a trailing ";" is tolerated
        name, i = _token(text, i)
        i = _skip_spaces(text, i)
        if not name or i >= len(text) or text[i] != "=":
            raise MediaTypeError(f"a parameter without a value in {value!r}")
        i = _skip_spaces(text, i + 1)
        if i < len(text) and text[i] == '"':
            param, i = _quoted(text, i)
        else:
            # Leniently up to ";" or a space: "type=application/dicom" is common unquoted.
            start = i
            while i < len(text) and text[i] not in "; \t":
                i += 1
            param = text[start:i]
        params[name.lower()] = param
    return MediaType(f"{main}/{sub}".lower(), params)


def check_boundary(boundary: str) -> bytes:
    """The boundary as bytes, or :class:`MediaTypeError` when RFC 2046 would not allow it."""
    if not 1 <= len(boundary) <= 70 or boundary.endswith(" ") or \
            any(c not in _BCHARS for c in boundary):
        raise MediaTypeError(f"not a valid multipart boundary: {boundary!r}")
    return boundary.encode("ascii")


@dataclass(frozen=True)
class PartStart:
    """A part begins; ``headers`` maps lower-cased names to values (the last one wins)."""

    index: int
    headers: Mapping[str, str]


@dataclass(frozen=True)
class PartData:
    """Part bytes, often a view into the chunk fed (no copy): keep it, do not change it."""

    index: int
    data: bytes | memoryview


@dataclass(frozen=True)
class PartEnd:
    """The part's delimiter was seen: its bytes are complete."""

    index: int


Event = PartStart | PartData | PartEnd


class Ending(Enum):
    CLOSED = "closed"          # the close delimiter was seen
    UNCLOSED = "unclosed"      # complete parts, then the body stopped without a close delimiter
    TRUNCATED = "truncated"    # the body stopped inside a part (its headers or its data)
    NO_PARTS = "no-parts"      # no delimiter at all (an empty body, or another format)


class _State(Enum):
    PREAMBLE = 1
    AFTER_DELIMITER = 2
    HEADERS = 3
    BODY = 4
    EPILOGUE = 5


def _parse_headers(block: bytes) -> dict[str, str]:
    text = block.decode("utf-8", errors="replace")
    lines: list[str] = []
    for line in text.replace("\r\n", "\n").split("\n"):
        if not line:
            continue
        if line[0] in " \t" and lines:
            lines[-1] += " " + line.strip()
        else:
            lines.append(line)
    headers: dict[str, str] = {}
    for line in lines:
        name, colon, value = line.partition(":")
        if not colon or not name.strip() or any(c in " \t" for c in name.strip()):
            raise FramingError(f"a part header line is not 'Name: value': {line[:80]!r}")
        headers[name.strip().lower()] = value.strip()
    return headers


class MultipartParser:
    """Feed it a body's chunks in order (:meth:`feed`), then call :meth:`finish`.

    Memory held between calls is at most a delimiter's length of part data (plus a part's
    headers while they are incomplete): data is handed on as soon as it cannot be the start of
    a delimiter.
    """

    def __init__(self, boundary: bytes) -> None:
        if not boundary:
            raise ValueError("empty boundary")
        self._delimiter = _CRLF + b"--" + boundary
        # The body is read as if it began with CRLF, so "--b" at its very start is a delimiter.
        self._buffer = bytearray(_CRLF)
        self._state = _State.PREAMBLE
        self._index = -1
        self._finished = False

    @property
    def parts_started(self) -> int:
        return self._index + 1

    def feed(self, chunk: bytes) -> list[Event]:
        if self._finished:
            raise RuntimeError("feed() after finish()")
        if self._state is _State.EPILOGUE:
            return []
        events: list[Event] = []
        if self._state is _State.BODY:
            rest = self._body_direct(chunk, events)
            if rest is None:
                return events
            chunk = rest
        self._buffer += chunk
        while self._step(events):
            pass
        return events

    def finish(self) -> tuple[list[Event], Ending]:
        """The last events and how the body ended; no more :meth:`feed` afterwards."""
        self._finished = True
        events: list[Event] = []
        state = self._state
        if state is _State.EPILOGUE:
            return events, Ending.CLOSED
        if state is _State.PREAMBLE:
            return events, Ending.NO_PARTS
        if state is _State.AFTER_DELIMITER:
            rest = bytes(self._buffer)
            if rest.startswith(b"--"):
                return events, Ending.CLOSED
            if rest.strip(b" \t\r\n") == b"":
                return events, Ending.UNCLOSED if self._index >= 0 else Ending.NO_PARTS
            return events, Ending.TRUNCATED
        if state is _State.HEADERS and not bytes(self._buffer).strip(b" \t\r\n"):
            # "--b CRLF" and then nothing: the parts before were complete, no new one began.
            self._index -= 1
            return events, Ending.UNCLOSED if self._index >= 0 else Ending.NO_PARTS
        if state is _State.BODY and self._buffer:
            events.append(PartData(self._index, bytes(self._buffer)))
            self._buffer.clear()
        return events, Ending.TRUNCATED

    # --- the state machine ---------------------------------------------------------------

    def _step(self, events: list[Event]) -> bool:
        """Advance as far as the buffer allows; False when more input is needed."""
        if self._state is _State.PREAMBLE:
            return self._preamble()
        if self._state is _State.AFTER_DELIMITER:
            return self._after_delimiter(events)
        if self._state is _State.HEADERS:
            return self._headers(events)
        if self._state is _State.BODY:
            return self._body(events)
        self._buffer.clear()
        return False

    def _scan(self, data: bytes | bytearray | None = None) -> tuple[int, bool]:
        """``(at, complete)`` in ``data`` (the buffer by default): where the first delimiter
        starts (complete), or a candidate that needs more bytes to be decided (not complete),
        or ``-1`` when there is none. A lookalike that goes on with other characters
        (``--boundaryX``) is data."""
        buffer = self._buffer if data is None else data
        size = len(self._delimiter)
        start = 0
        while True:
            at = buffer.find(self._delimiter, start)
            if at < 0:
                return -1, True
            following = bytes(buffer[at + size:at + size + 2])
            if following[:1] in (b" ", b"\t", b"\n") or following in (b"--", _CRLF):
                return at, True
            if following in (b"", b"-", b"\r"):
                return at, False
            start = at + 1

    def _body_direct(self, chunk: bytes, events: list[Event]) -> bytes | None:
        """Inside a part: hand on ``chunk``'s data as views of it, without copying it into the
        buffer (measured: the copies were most of the parser's cost). Returns what the general
        path must still read (a delimiter and what follows), or None when all is handed on or
        kept. The buffer then holds only a tail that may begin a delimiter (from a CR on)."""
        size = len(self._delimiter)
        if self._buffer:
            tail = bytes(self._buffer)
            at, _ = self._scan(tail + chunk[:size + 2])
            if 0 <= at < len(tail) or len(chunk) < size + 2:
                return chunk  # a delimiter may span the two: the general path decides
            events.append(PartData(self._index, tail))
            self._buffer.clear()
        at, complete = self._scan(chunk)
        view = memoryview(chunk)
        if at >= 0 and complete:
            if at > 0:
                events.append(PartData(self._index, view[:at]))
            return chunk[at:]
        if at < 0:
            # A delimiter cut by the chunk's end starts with its CR in the last size-1 bytes.
            cr = chunk.find(b"\r", max(0, len(chunk) - (size - 1)))
            at = cr if cr >= 0 else len(chunk)
        if at > 0:
            events.append(PartData(self._index, view[:at]))
        self._buffer += view[at:]
        return None

    def _preamble(self) -> bool:
        at, complete = self._scan()
        if at < 0:
            del self._buffer[:len(self._buffer) - min(len(self._buffer), len(self._delimiter))]
            return False
        if not complete:
            del self._buffer[:at]
            return False
        del self._buffer[:at + len(self._delimiter)]
        self._state = _State.AFTER_DELIMITER
        return True

    def _after_delimiter(self, events: list[Event]) -> bool:
        buffer = self._buffer
        if len(buffer) < 2:
            return False
        if buffer[:2] == b"--":
            self._state = _State.EPILOGUE
            buffer.clear()
            return False
        i = 0
        while i < len(buffer) and buffer[i] in _LWSP:
            i += 1
            if i > 1024:
                raise FramingError("a delimiter line goes on with too much padding")
        if i >= len(buffer) or (buffer[i] == 0x0D and i + 1 >= len(buffer)):
            return False
        if buffer[i:i + 2] == _CRLF:
            end = i + 2
        elif buffer[i] == 0x0A:
            end = i + 1
        else:
            raise FramingError("a delimiter is followed by something other than a line break")
        del buffer[:end]
        self._index += 1
        self._state = _State.HEADERS
        return True

    def _headers(self, events: list[Event]) -> bool:
        buffer = self._buffer
        # No headers at all: the delimiter's line break is directly followed by another one.
        if buffer[:2] == _CRLF or buffer[:1] == b"\n":
            cut = 2 if buffer[:2] == _CRLF else 1
            del buffer[:cut]
            events.append(PartStart(self._index, {}))
            self._state = _State.BODY
            return True
        if buffer[:1] == b"\r" and len(buffer) < 2:
            return False
        ends = [(at, size) for at, size in ((buffer.find(b"\r\n\r\n"), 4),
                                            (buffer.find(b"\n\n"), 2),
                                            (buffer.find(b"\n\r\n"), 3)) if at >= 0]
        if not ends:
            if len(buffer) > MAX_HEADER_BYTES:
                raise FramingError(f"part {self._index + 1}: headers longer than "
                                   f"{MAX_HEADER_BYTES} bytes (or no empty line after them)")
            return False
        at, size = min(ends)
        if at > MAX_HEADER_BYTES:
            raise FramingError(f"part {self._index + 1}: headers longer than {MAX_HEADER_BYTES} "
                               "bytes")
        headers = _parse_headers(bytes(buffer[:at]))
        del buffer[:at + size]
        events.append(PartStart(self._index, headers))
        self._state = _State.BODY
        return True

    def _body(self, events: list[Event]) -> bool:
        buffer = self._buffer
        at, complete = self._scan()
        if at < 0 or not complete:
            # Keep what could still be the start of a delimiter; hand on the rest.
            cut = at if at >= 0 else len(buffer) - min(len(buffer), len(self._delimiter) - 1)
            if cut > 0:
                events.append(PartData(self._index, bytes(buffer[:cut])))
                del buffer[:cut]
            return False
        if at > 0:
            events.append(PartData(self._index, bytes(buffer[:at])))
        events.append(PartEnd(self._index))
        del buffer[:at + len(self._delimiter)]
        self._state = _State.AFTER_DELIMITER
        return True
