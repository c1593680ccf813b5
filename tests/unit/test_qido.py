"""QIDO-RS decoding, the pure part (:mod:`archive_api.qido`): parsing and planning."""

from __future__ import annotations

import pytest

from archive_api.qido import (
    DirectPlan,
    QueryError,
    ResolvedPlan,
    SearchPath,
    decode_query_string,
    find_constraint,
    ignored_warning,
    parse_query,
    plan,
    refused_by_orthanc,
    uids_of,
)


def test_values_are_percent_decoded_as_utf8_and_plus_is_a_space() -> None:
    assert decode_query_string(b"PatientName=%E5%BC%A0*&limit=%31&StudyDescription=CT+chest") == [
        ("PatientName", "张*"), ("limit", "1"), ("StudyDescription", "CT chest")]


def test_person_name_groups_keep_their_equals_sign() -> None:
    assert decode_query_string(b"PatientName=Li%5ENa%3D%E6%9D%8E%5E%E5%A8%9C") == [
        ("PatientName", "Li^Na=李^娜")]


def test_invalid_utf8_is_refused() -> None:
    with pytest.raises(QueryError, match="UTF-8"):
        decode_query_string(b"PatientName=%FF%FE")


def test_parse_sorts_filters_from_search_parameters() -> None:
    query = parse_query([("PatientName", "张*"), ("limit", "10"), ("offset", "20"),
                         ("includefield", "00081030"), ("includefield", "StudyID,00081030"),
                         ("fuzzymatching", "false"), ("00100020", "P1"), ("_", "123")])
    assert query.filters == (("PatientName", "张*"), ("00100020", "P1"))
    assert (query.limit, query.offset, query.fuzzy) == (10, 20, "false")
    assert query.includefield == ("00081030", "StudyID")
    assert query.ignored == (("_", "123"),)


@pytest.mark.parametrize("pairs, parameter", [
    ([("limit", "x")], "limit"), ([("offset", "-1")], "offset"),
    ([("limit", "1"), ("limit", "2")], "limit"),
    ([("PatientID", "a"), ("PatientID", "b")], "PatientID"),
    ([("fuzzymatching", "yes")], "fuzzymatching"),
    ([("includefield", "Patient Name")], "includefield"), ([("PatientID", "a\nb")], "PatientID"),
])
def test_what_dicomweb_would_refuse_is_named(pairs: list[tuple[str, str]], parameter: str) -> None:
    with pytest.raises(QueryError) as caught:
        parse_query(pairs)
    assert caught.value.parameter == parameter


def test_ascii_values_go_straight_to_dicomweb_undecoded() -> None:
    result = plan(SearchPath("studies"), parse_query(decode_query_string(
        b"PatientName=Zhang%5EWei%2A&StudyDate=20240101-20240131&limit=%32&includefield=StudyID")))
    assert result == DirectPlan("/studies", "PatientName=Zhang^Wei*&StudyDate=20240101-20240131"
                                             "&limit=2&includefield=StudyID")


def test_a_chinese_name_is_resolved_through_tools_find() -> None:
    query = parse_query(decode_query_string(
        "PatientName=张*&StudyDate=20240101-&limit=2&offset=1&includefield=StudyID".encode()))
    result = plan(SearchPath("studies"), query, case_sensitive=False)
    assert isinstance(result, ResolvedPlan)
    assert result.find == {"Level": "Study",
                           "Query": {"PatientName": "张*", "StudyDate": "20240101-"},
                           "Expand": True, "CaseSensitive": False}
    assert result.uid_key == "StudyInstanceUID"
    # the page is cut here, from every match (offset 1, limit 2), not by /tools/find
    assert result.page(["1.1", "1.2", "1.3", "1.4"]) == ["1.2", "1.3"]
    assert result.page(["1.1"]) == []
    # DICOMweb gets no limit/offset again; the dropped key is included
    assert list(result.dicomweb_queries(["1.2", "1.3"])) == [
        "StudyDate=20240101-&includefield=StudyID,PatientName&StudyInstanceUID=1.2,1.3"]


def test_a_space_or_equals_sign_also_needs_resolution() -> None:
    for raw in (b"StudyDescription=CT+chest", b"PatientName=Li%5ENa%3DX"):
        assert isinstance(plan(SearchPath("studies"), parse_query(decode_query_string(raw))),
                          ResolvedPlan)


def test_nested_search_keeps_the_path_and_its_constraints() -> None:
    search = SearchPath("instances", "1.2.3", "1.2.3.4")
    result = plan(search, parse_query([("PatientName", "欧阳*"), ("SOPInstanceUID", "9.9")]))
    assert isinstance(result, ResolvedPlan)
    assert result.path == "/studies/1.2.3/series/1.2.3.4/instances"
    assert result.find["Level"] == "Instance"
    assert result.find["Query"] == {"PatientName": "欧阳*", "SOPInstanceUID": "9.9",
                                    "StudyInstanceUID": "1.2.3", "SeriesInstanceUID": "1.2.3.4"}
    assert "CaseSensitive" not in result.find and "Limit" not in result.find
    assert list(result.dicomweb_queries(["9.9"])) == ["includefield=PatientName&SOPInstanceUID=9.9"]


def test_series_level_hands_back_series_uids_and_keeps_includefield_all() -> None:
    result = plan(SearchPath("series"), parse_query([("PatientName", "张^伟"), ("Modality", "CT"),
                                                    ("includefield", "all")]))
    assert isinstance(result, ResolvedPlan) and result.uid_key == "SeriesInstanceUID"
    assert list(result.dicomweb_queries(["5.6"])) == [
        "Modality=CT&includefield=all&SeriesInstanceUID=5.6"]


def test_uid_lists_are_sent_in_batches_in_order() -> None:
    result = plan(SearchPath("studies"), parse_query([("PatientName", "张*")]))
    assert isinstance(result, ResolvedPlan)
    uids = [f"1.{i}" for i in range(5)]
    assert list(result.dicomweb_queries(uids, batch=2)) == [
        "includefield=PatientName&StudyInstanceUID=1.0,1.1",
        "includefield=PatientName&StudyInstanceUID=1.2,1.3",
        "includefield=PatientName&StudyInstanceUID=1.4"]
    assert list(result.dicomweb_queries([])) == []


def test_find_constraint_rewrites_lists_as_dicomweb_does() -> None:
    assert find_constraint("张*,李*") == "张*\\李*"
    assert find_constraint("a\\b") == "ab"


def test_hex_keys_become_orthanc_tag_form() -> None:
    result = plan(SearchPath("studies"), parse_query([("00100010", "张*")]))
    assert isinstance(result, ResolvedPlan) and result.find["Query"] == {"0010,0010": "张*"}


@pytest.mark.parametrize("args", [("studies", "1.2"), ("series", "x.y"), ("series", "1.2", "3.4"),
                                  ("instances", None, "1.2")])
def test_search_paths_are_checked(args: tuple[str, ...]) -> None:
    with pytest.raises(QueryError):
        SearchPath(*args)  # type: ignore[arg-type]


def test_uids_are_read_from_expanded_find_answers() -> None:
    found = [{"MainDicomTags": {"StudyInstanceUID": "1.2"}}, {"MainDicomTags": {}}, "bad"]
    assert uids_of(found, "studies") == ["1.2"]  # type: ignore[arg-type]


def test_a_keyword_outside_the_dictionary_is_refused_not_ignored() -> None:
    """``PatientNme=X`` would be ignored by DICOMweb and match every study (issue 7)."""
    with pytest.raises(QueryError) as caught:
        parse_query([("PatientNme", "X")])
    assert caught.value.parameter == "PatientNme"
    assert "keyword" in caught.value.problem
    assert parse_query([("00100010", "X"), ("PatientName", "Y")]).filters == (
        ("00100010", "X"), ("PatientName", "Y"))


def test_ignored_parameters_are_named_in_a_warning() -> None:
    assert ignored_warning(parse_query([("PatientID", "1")])) is None
    warning = ignored_warning(parse_query([("_", "1"), ("cache-buster", "2")]))
    assert warning == '299 archive "query parameters ignored (not DICOM attributes): _, cache-buster"'


@pytest.mark.parametrize("value", ["-1", "1e3", "", "１"])
def test_a_bad_limit_is_a_query_error(value: str) -> None:
    with pytest.raises(QueryError, match="limit"):
        parse_query([("limit", value)])


def test_a_search_orthanc_refuses_names_the_attributes_it_gave() -> None:
    """Orthanc answers 400 to a value it cannot match (a wildcard in a date) without saying
    which: the problem names the search's attributes, never its control parameters."""
    refused = refused_by_orthanc(parse_query([("StudyDate", "*"), ("limit", "5")]))
    assert refused.parameter == "StudyDate" and "YYYYMMDD" in refused.problem
    both = refused_by_orthanc(parse_query([("StudyInstanceUID", "x"), ("PatientID", "P1")]))
    assert both.parameter == "StudyInstanceUID, PatientID"
    assert refused_by_orthanc(parse_query([])).parameter == "(query)"
