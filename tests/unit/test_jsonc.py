from __future__ import annotations

from pathlib import Path

import pytest

from archive_config import jsonc


def test_comments_outside_strings_are_removed() -> None:
    text = '{\n  // a comment\n  "url": "http://host/x", /* block\n  comment */ "n": 1\n}'
    assert jsonc.loads(text) == {"url": "http://host/x", "n": 1}


def test_comment_markers_inside_strings_survive() -> None:
    assert jsonc.loads('{"a": "/* not */ // kept", "b": "q\\"//"}') == {
        "a": "/* not */ // kept",
        "b": 'q"//',
    }


def test_line_numbers_are_kept_for_errors(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('{\n /* one\n two */\n "a": ,\n}')
    with pytest.raises(ValueError, match=r"x\.json:4:"):
        jsonc.load_file(path)


def test_unterminated_block_comment() -> None:
    with pytest.raises(ValueError, match="unterminated"):
        jsonc.loads('{"a": 1 /* open')


def test_find_section_file(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text('{"Name": "x"}')
    (tmp_path / "b.json").write_text('{ // ours\n "Archive": {}}')
    (tmp_path / "notes.txt").write_text("Archive")
    assert jsonc.find_section_file(tmp_path, "Archive") == tmp_path / "b.json"
    assert jsonc.find_section_file(tmp_path, "Missing") is None
    assert jsonc.find_section_file(tmp_path / "a.json", "Name") == tmp_path / "a.json"
