from __future__ import annotations

import pytest

from regional_archive.errors import BadRequest
from regional_archive.qido import core_uri, decoded_query


def test_values_are_percent_decoded_as_utf8() -> None:
    query = decoded_query({"PatientName": "%E5%BC%A0*", "limit": "%31", "includefield": "00081030%2C00100010"})
    assert query == "PatientName=张*&limit=1&includefield=00081030,00100010"


def test_plain_values_pass_unchanged() -> None:
    assert decoded_query({"StudyDate": "20240101-20241231", "PatientID": "P*"}) == (
        "StudyDate=20240101-20241231&PatientID=P*"
    )


def test_person_name_groups_keep_their_equals_sign() -> None:
    assert decoded_query({"PatientName": "Li%5ENa%3D%E6%9D%8E%5E%E5%A8%9C"}) == "PatientName=Li^Na=李^娜"


@pytest.mark.parametrize("value", ["a%26b", "x%23", "%0A"])
def test_characters_that_would_split_the_query_are_refused(value: str) -> None:
    with pytest.raises(BadRequest, match="PatientID"):
        decoded_query({"PatientID": value})


def test_invalid_utf8_is_an_error() -> None:
    with pytest.raises(UnicodeDecodeError):
        decoded_query({"PatientName": "%FF%FE"})


def test_core_uri_joins_root_path_and_query() -> None:
    assert core_uri("/dicom-web/", "/studies", {}) == "/dicom-web/studies"
    assert core_uri("/dicom-web/", "/studies/1.2/series", {"Modality": "CT"}) == (
        "/dicom-web/studies/1.2/series?Modality=CT"
    )
