"""The incremental multipart/related parser of STOW-RS (archive_api.multipart)."""

from __future__ import annotations

import os
import random

import pytest

from archive_api.multipart import (
    MAX_HEADER_BYTES, Ending, Event, FramingError, MediaTypeError, MultipartParser, PartData,
    PartEnd, PartStart, check_boundary, parse_media_type,
)

B = b"7d3a9f0c-boundary"


def run(body: bytes, chunk: int | None = None,
        boundary: bytes = B) -> tuple[list[tuple[dict[str, str], bytes, bool]], Ending]:
    """Feed ``body`` in chunks of ``chunk`` bytes (all at once when None); the parts as
    (headers, bytes, complete) and the ending."""
    parser = MultipartParser(boundary)
    events: list[Event] = []
    size = chunk or max(1, len(body))
    for start in range(0, len(body), size):
        events += parser.feed(body[start:start + size])
    tail, ending = parser.finish()
    events += tail
    parts: list[tuple[dict[str, str], bytes, bool]] = []
    for event in events:
        if isinstance(event, PartStart):
            assert event.index == len(parts)
            parts.append((dict(event.headers), b"", False))
        elif isinstance(event, PartData):
            headers, data, done = parts[event.index]
            assert not done
            parts[event.index] = (headers, data + event.data, False)
        elif isinstance(event, PartEnd):
            headers, data, _ = parts[event.index]
            parts[event.index] = (headers, data, True)
    return parts, ending


def body_of(*payloads: bytes, preamble: bytes = b"", epilogue: bytes = b"",
            close: bool = True, content_type: bytes = b"application/dicom") -> bytes:
    out = preamble
    for payload in payloads:
        out += b"\r\n--" + B + b"\r\nContent-Type: " + content_type + b"\r\n\r\n" + payload
    out += b"\r\n--" + B + (b"--" if close else b"") + b"\r\n" + epilogue
    if not preamble:
        out = out[2:]  # the first delimiter opens the body
    return out


@pytest.mark.parametrize("chunk", [None, 1, 2, 3, 7, 19, 64, 4096])
def test_parts_come_out_whole_whatever_the_chunking(chunk: int | None) -> None:
    payloads = [os.urandom(3000), b"", b"short", bytes(range(256)) * 8]
    parts, ending = run(body_of(*payloads), chunk)
    assert ending is Ending.CLOSED
    assert [data for _, data, _ in parts] == payloads
    assert all(done for _, _, done in parts)
    assert all(h == {"content-type": "application/dicom"} for h, _, _ in parts)


def test_preamble_and_epilogue_are_ignored() -> None:
    body = body_of(b"one", b"two", preamble=b"This is a preamble.\r\n--not-the-boundary",
                   epilogue=b"epilogue --" + B + b"\r\nmore")
    parts, ending = run(body, 5)
    assert [d for _, d, _ in parts] == [b"one", b"two"]
    assert ending is Ending.CLOSED


def test_lookalikes_of_the_boundary_are_data() -> None:
    tricky = [b"--" + B + b"\r\n",                 # not preceded by CRLF
              b"\r\n--" + B + b"x\r\n",             # goes on with other characters
              b"ends with CR\r", b"ends with CRLF\r\n", b"\r\n-", b"\r\n--" + B[:-1]]
    for chunk in (None, 1, 4, 11):
        parts, ending = run(body_of(*tricky), chunk)
        assert [d for _, d, _ in parts] == tricky, chunk
        assert ending is Ending.CLOSED


def test_random_binary_payloads_with_crlf_edges() -> None:
    rng = random.Random(7)
    payloads = [bytes(rng.choice(b"\r\n-ab") for _ in range(rng.randrange(0, 400)))
                for _ in range(30)]
    for chunk in (1, 13, 97):
        parts, _ = run(body_of(*payloads), chunk)
        assert [d for _, d, _ in parts] == payloads


def test_part_headers_lf_only_folded_and_several() -> None:
    body = (b"--" + B + b"\nContent-Type: application/dicom;\n transfer-syntax=1.2.840.10008.1.2.1"
            b"\nContent-Location: x\n\nDATA\r\n--" + B + b"--")
    parts, ending = run(body, 3)
    assert parts == [({"content-type": "application/dicom; transfer-syntax=1.2.840.10008.1.2.1",
                       "content-location": "x"}, b"DATA", True)]
    assert ending is Ending.CLOSED


def test_a_part_without_headers() -> None:
    body = b"--" + B + b"\r\n\r\nRAW\r\n--" + B + b"--\r\n"
    assert run(body, 1) == ([({}, b"RAW", True)], Ending.CLOSED)


def test_transport_padding_after_the_delimiter() -> None:
    body = b"--" + B + b" \t\r\nContent-Type: a/b\r\n\r\nX\r\n--" + B + b"--  \r\n"
    assert run(body, 2) == ([({"content-type": "a/b"}, b"X", True)], Ending.CLOSED)


def test_missing_close_delimiter_after_complete_parts_is_unclosed() -> None:
    parts, ending = run(body_of(b"one", b"two", close=False))
    assert [d for _, d, done in parts if done] == [b"one", b"two"]
    assert ending is Ending.UNCLOSED


def test_body_ending_inside_a_part_is_truncated() -> None:
    body = body_of(b"one") [:-len(b"\r\n--" + B + b"--\r\n")]  # no delimiter after "one"
    parts, ending = run(body, 4)
    assert ending is Ending.TRUNCATED
    assert parts == [({"content-type": "application/dicom"}, b"one", False)]


def test_body_ending_inside_headers_is_truncated() -> None:
    parts, ending = run(b"--" + B + b"\r\nContent-Type: appl", 3)
    assert (parts, ending) == ([], Ending.TRUNCATED)


@pytest.mark.parametrize("body", [b"", b"just some text", b"--other\r\n\r\nx\r\n--other--"])
def test_no_delimiter_is_no_parts(body: bytes) -> None:
    assert run(body, 3) == ([], Ending.NO_PARTS)


def test_close_delimiter_first_is_no_parts_but_closed() -> None:
    assert run(b"--" + B + b"--\r\n") == ([], Ending.CLOSED)


def test_garbage_after_a_delimiter_is_broken_framing() -> None:
    with pytest.raises(FramingError):
        run(b"--" + B + b"\r\nContent-Type: a/b\r\n\r\nX\r\n--" + B + b" junk\r\n")


def test_endless_headers_are_broken_framing() -> None:
    with pytest.raises(FramingError, match="headers longer"):
        run(b"--" + B + b"\r\nX-Long: " + b"a" * (MAX_HEADER_BYTES + 10), 1000)


def test_a_header_line_without_colon_is_broken_framing() -> None:
    with pytest.raises(FramingError, match="Name: value"):
        run(b"--" + B + b"\r\nnot a header\r\n\r\nX\r\n--" + B + b"--")


def test_memory_held_stays_small_while_data_streams() -> None:
    parser = MultipartParser(B)
    parser.feed(b"--" + B + b"\r\nContent-Type: application/dicom\r\n\r\n")
    handed = 0
    for _ in range(200):
        for event in parser.feed(os.urandom(65536)):
            if isinstance(event, PartData):
                handed += len(event.data)
    assert 200 * 65536 - handed <= len(B) + 4


@pytest.mark.parametrize(("value", "kind", "params"), [
    ('multipart/related; type="application/dicom"; boundary="a b:c"', "multipart/related",
     {"type": "application/dicom", "boundary": "a b:c"}),
    ("Multipart/Related;Boundary=xyz;type=application/dicom", "multipart/related",
     {"boundary": "xyz", "type": "application/dicom"}),
    ('multipart/related; boundary="q\\"uoted"', "multipart/related", {"boundary": 'q"uoted'}),
    ("application/dicom; transfer-syntax=1.2.840.10008.1.2.4.50;", "application/dicom",
     {"transfer-syntax": "1.2.840.10008.1.2.4.50"}),
])
def test_media_types(value: str, kind: str, params: dict[str, str]) -> None:
    media = parse_media_type(value)
    assert media.type == kind and dict(media.params) == params


@pytest.mark.parametrize("value", ["multipart", "/related", 'a/b; boundary="open',
                                   "a/b; novalue", "a/b x"])
def test_bad_media_types(value: str) -> None:
    with pytest.raises(MediaTypeError):
        parse_media_type(value)


def test_boundaries() -> None:
    assert check_boundary("a b:c") == b"a b:c"
    for bad in ("", "x" * 71, "ends with space ", "bad\x00", "é"):
        with pytest.raises(MediaTypeError):
            check_boundary(bad)


def test_lookalikes_across_chunk_edges_of_every_size() -> None:
    """Data handed on straight from the chunks (inside a part) is the same, wherever a chunk
    ends: in a lookalike, in a CR, just before or inside the real delimiter."""
    rng = random.Random(11)
    tokens = [b"\r", b"\n", b"-", b"a", b"\r\n--" + B + b"X", b"\r\n--" + B[:-1], b"\r\n-"]
    payloads = [b"".join(rng.choice(tokens) for _ in range(rng.randrange(0, 80)))
                for _ in range(12)]
    whole = body_of(*payloads)
    for _ in range(40):
        parser = MultipartParser(B)
        events: list[Event] = []
        at = 0
        while at < len(whole):
            size = rng.randrange(1, 3 * len(B) + 12)
            events += parser.feed(whole[at:at + size])
            at += size
        tail, ending = parser.finish()
        got: dict[int, bytes] = {}
        for event in events + tail:
            if isinstance(event, PartData):
                got[event.index] = got.get(event.index, b"") + bytes(event.data)
        assert ending is Ending.CLOSED
        assert [got.get(i, b"") for i in range(len(payloads))] == payloads
