"""Reading and fixing quarantined DICOM bytes with pydicom, forgivingly (pure: bytes in, out).

A quarantined instance is malformed by definition, so reading never raises: pydicom reads with
``force=True`` (no preamble or meta needed), each element's value is converted on its own, and
what cannot be read is shown as such. A fix edits and removes top-level attributes of the data set
and writes it back in the transfer syntax it came in; every other element keeps its bytes.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydicom import dcmread, dcmwrite
from pydicom.datadict import dictionary_VR, keyword_for_tag
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag, Tag

__all__ = ["EditError", "TagView", "apply_fix", "describe", "parse_tag"]

MAX_TEXT = 256
_TAG = re.compile(r"\(?([0-9A-Fa-f]{4}),?([0-9A-Fa-f]{4})\)?")
_BINARY_VRS = {"OB", "OD", "OF", "OL", "OV", "OW", "UN"}
_INT_VRS = {"US", "SS", "UL", "SL", "UV", "SV", "IS"}
_FLOAT_VRS = {"FL", "FD", "DS"}


class EditError(ValueError):
    """A fix the data set cannot take (an unknown tag, a value its VR cannot hold …)."""


@dataclass(frozen=True)
class TagView:
    """One element as the console shows it."""

    tag: str
    keyword: str
    vr: str
    value: str
    error: str | None = None


def format_tag(tag: BaseTag) -> str:
    return f"({tag.group:04X},{tag.element:04X})"


def parse_tag(text: str) -> BaseTag:
    """``(0010,0020)``, ``0010,0020`` or ``00100020`` (or a keyword such as ``PatientID``)."""
    match = _TAG.fullmatch(text.strip())
    if match:
        return Tag(int(match.group(1), 16), int(match.group(2), 16))
    try:
        return Tag(text.strip())
    except (ValueError, TypeError):
        raise EditError(f"not a DICOM tag: {text!r}") from None


def _read(data: bytes) -> Dataset:
    # pydicom's default reading validation (warn, never raise) is the forgiving mode we want.
    return dcmread(io.BytesIO(data), force=True)


def _text(element: DataElement) -> str:
    if element.VR == "SQ":
        return f"<sequence of {len(element.value)} item(s)>"
    if element.VR in _BINARY_VRS or isinstance(element.value, (bytes, bytearray)):
        size = len(element.value) if element.value is not None else 0
        return f"<{size} bytes>"
    value = element.value
    text = "\\".join(str(v) for v in value) if isinstance(value, (list, tuple)) or \
        type(value).__name__ == "MultiValue" else str(value if value is not None else "")
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "…"


def _views(ds: Dataset) -> list[TagView]:
    views: list[TagView] = []
    for tag in list(ds.keys()):
        try:
            raw = ds.get_item(tag)
            vr = str(getattr(raw, "VR", None) or "")
        except Exception as exc:  # pydicom's own errors are many and not one tree
            views.append(TagView(format_tag(Tag(tag)), keyword_for_tag(tag) or "", "", "",
                                 f"{type(exc).__name__}: {exc}"))
            continue
        try:
            element = ds[tag]
            views.append(TagView(format_tag(element.tag), element.keyword or "",
                                 str(element.VR), _text(element)))
        except Exception as exc:
            views.append(TagView(format_tag(Tag(tag)), keyword_for_tag(tag) or "", vr, "",
                                 f"{type(exc).__name__}: {exc}"))
    return views


def describe(data: bytes) -> tuple[list[TagView], str | None]:
    """The file meta and top-level data set elements, and why reading stopped (or None)."""
    try:
        ds = _read(data)
    except Exception as exc:  # whatever pydicom raises on a broken file
        return [], f"{type(exc).__name__}: {exc}"
    meta = _views(ds.file_meta) if getattr(ds, "file_meta", None) is not None else []
    try:
        views = meta + _views(ds)
    except Exception as exc:
        return meta, f"{type(exc).__name__}: {exc}"
    return views, None if views else "no DICOM element could be read"


def _value(vr: str, text: str) -> Any:
    parts = text.split("\\")
    try:
        if vr in _INT_VRS:
            numbers: list[Any] = [int(p) for p in parts]
        elif vr in _FLOAT_VRS:
            numbers = [float(p) for p in parts]
        else:
            return text
    except ValueError:
        raise EditError(f"{text!r} is not a value of VR {vr}") from None
    if vr in ("IS", "DS"):
        return text
    return numbers[0] if len(numbers) == 1 else numbers


def _edit(ds: Dataset, tag: BaseTag, change: str | Mapping[str, Any]) -> None:
    if isinstance(change, Mapping):
        text = str(change.get("value", ""))
        vr = str(change.get("vr") or "") or None
    else:
        text, vr = str(change), None
    if vr is None:
        if tag in ds:
            vr = str(ds.get_item(tag).VR or "")  # raw element: its VR as received
        if not vr or vr == "UN":
            try:
                vr = dictionary_VR(tag)
            except KeyError:
                raise EditError(f"{format_tag(tag)} is not in the DICOM dictionary: give its VR")
    if vr in _BINARY_VRS or vr == "SQ":
        raise EditError(f"{format_tag(tag)} has VR {vr}: only text and number values are edited")
    ds[tag] = DataElement(tag, vr, _value(vr, text))


def apply_fix(data: bytes, edits: Mapping[str, str | Mapping[str, Any]],
              remove: Sequence[str]) -> bytes:
    """``data`` with ``edits`` (tag → new value, or {"vr", "value"} to set the VR too) and the
    ``remove`` tags removed; group 0002 (file meta) cannot be edited."""
    if not edits and not remove:
        raise EditError("a fix needs at least one edit or removal")
    try:
        ds = _read(data)
    except Exception as exc:
        raise EditError(f"the bytes cannot be read as DICOM: {exc}") from None
    for key in [*edits, *remove]:
        if parse_tag(key).group == 0x0002:
            raise EditError(f"{key}: the file meta group is written by the archive, not edited")
    for key, change in edits.items():
        _edit(ds, parse_tag(key), change)
    for key in remove:
        tag = parse_tag(key)
        if tag in ds:
            del ds[tag]
    out = io.BytesIO()
    meta = getattr(ds, "file_meta", None)
    complete = meta is not None and "TransferSyntaxUID" in meta
    try:
        dcmwrite(out, ds, enforce_file_format=complete)
    except Exception as exc:
        raise EditError(f"the fixed data set cannot be written: {exc}") from None
    return out.getvalue()
