"""The door (nginx) in front of a real archive: what it routes, hides, compresses and caches.

One stack as ``scripts/serve`` runs it (:class:`testkit.stack.Stack`), real clients
(``requests``, ``dicomweb-client``). A second stack with HTTPS on checks the generated
certificate.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from pydicom.dataset import Dataset

from archive_tools import synthetic
from archive_tools.synthetic import PatientInfo, StudyInfo
from archive_door.viewer import IMMUTABLE, REVALIDATE, REWRITTEN, rewritten_files
from testkit import dicom_data as dd
from testkit.orthanc_process import deep_merge
from testkit.stack import SECURED, Stack

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"
FRAME_ACCEPT = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with Stack(tmp_path_factory.mktemp("door"), overrides=SECURED) as running:
        yield running


@pytest.fixture(scope="module")
def stored(stack: Stack) -> list[Dataset]:
    """A small CT series stored with STOW-RS through the door."""
    token = dd.unique_token()
    study = StudyInfo(date="20240315", accession=f"D{token}", description="door test")
    series = synthetic.ct_volume(2, 64, 64, patient=PatientInfo("DOOR^TEST", f"DOOR-{token}",
                                                                "19700101", "F"), study=study)
    client = DICOMwebClient(url=stack.url + "/dicom-web", headers=stack.auth_headers())
    client.store_instances(series)
    return series


def _orthanc_is_up(stack: Stack) -> bool:
    r = requests.get(stack.orthanc_url + "/system", auth=stack.orthanc_auth, timeout=10)
    return r.status_code == 200 and "Version" in r.json()


# --- hidden: Orthanc's administrative REST ----------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/tools/shutdown"),
        ("POST", "/tools/execute-script"),
        ("PUT", "/modalities/x"),
        ("DELETE", "/studies/x"),
        ("GET", "/system"),
        ("GET", "/app/explorer.html"),
        ("GET", "/instances"),
        ("GET", "/peers"),
        ("GET", "/jobs"),
        ("POST", "/tools/reset"),
    ],
)
def test_orthanc_administration_is_not_reachable(stack: Stack, method: str, path: str) -> None:
    body = b"print('hello')" if path.endswith("execute-script") else b"{}"
    r = stack.http.request(method, stack.url + path, data=body, timeout=10)
    assert r.status_code == 404, r.text
    assert r.headers["Content-Type"] == PROBLEM
    assert r.json()["status"] == 404
    assert _orthanc_is_up(stack)


@pytest.mark.parametrize("method", ["DELETE", "PUT", "PATCH"])
def test_dicomweb_refuses_methods_it_does_not_define(stack: Stack, stored: list[Dataset], method: str) -> None:
    study = stored[0].StudyInstanceUID
    r = stack.http.request(method, f"{stack.url}/dicom-web/studies/{study}", timeout=10)
    assert r.status_code == 405
    assert r.headers["Allow"] == "GET, HEAD, POST, OPTIONS"
    assert r.headers["Content-Type"] == PROBLEM
    # Still there: DELETE never reached Orthanc.
    assert requests.get(f"{stack.orthanc_url}/dicom-web/studies/{study}/metadata",
                        auth=stack.orthanc_auth, timeout=10).status_code == 200


def test_orthanc_itself_requires_the_internal_credential(stack: Stack) -> None:
    assert requests.get(stack.orthanc_url + "/system", timeout=10).status_code == 401
    assert _orthanc_is_up(stack)


# --- DICOMweb through the door ---------------------------------------------------------------


def test_stow_qido_wado_through_the_door(stack: Stack, stored: list[Dataset]) -> None:
    client = DICOMwebClient(url=stack.url + "/dicom-web", headers=stack.auth_headers())
    study = stored[0].StudyInstanceUID
    [found] = client.search_for_studies(search_filters={"StudyInstanceUID": study})
    assert found["0020000D"]["Value"] == [study]
    # Orthanc builds its links from the Host the client sent (forwarded by the door): they point
    # at the door, not at Orthanc's 18042. (dicomweb-client sends Host without the port.)
    [plain] = stack.http.get(f"{stack.url}/dicom-web/studies?StudyInstanceUID={study}", timeout=30).json()
    assert plain["00081190"]["Value"] == [f"{stack.url}/dicom-web/studies/{study}"]
    instances = client.search_for_instances(study_instance_uid=study)
    assert {i["00080018"]["Value"][0] for i in instances} == dd.sop_instance_uids(stored)
    first = stored[0]
    [frame] = client.retrieve_instance_frames(study, first.SeriesInstanceUID, first.SOPInstanceUID,
                                              frame_numbers=[1], media_types=("application/octet-stream",))
    assert frame == dd.frame_bytes(first, 0)


def test_pixel_data_is_never_gzipped_json_is(stack: Stack, stored: list[Dataset]) -> None:
    first = stored[0]
    base = (f"{stack.url}/dicom-web/studies/{first.StudyInstanceUID}/series/"
            f"{first.SeriesInstanceUID}/instances/{first.SOPInstanceUID}")
    frame = stack.http.get(base + "/frames/1", headers={"Accept": FRAME_ACCEPT,
                                                      "Accept-Encoding": "gzip"}, timeout=30)
    assert frame.status_code == 200
    assert frame.headers["Content-Type"].startswith("multipart/related")
    assert "Content-Encoding" not in frame.headers
    dicom = stack.http.get(base, headers={"Accept": 'multipart/related; type="application/dicom"',
                                        "Accept-Encoding": "gzip"}, timeout=30)
    assert dicom.status_code == 200 and "Content-Encoding" not in dicom.headers
    metadata = stack.http.get(f"{stack.url}/dicom-web/studies/{first.StudyInstanceUID}/metadata",
                            headers={"Accept-Encoding": "gzip"}, timeout=30)
    assert metadata.status_code == 200
    assert metadata.headers["Content-Type"].startswith("application/dicom+json")
    assert metadata.headers["Content-Encoding"] == "gzip"
    assert len(metadata.json()) == len(stored)  # requests decoded it


def test_head_and_options_are_answered(stack: Stack, stored: list[Dataset]) -> None:
    url = f"{stack.url}/dicom-web/studies?StudyInstanceUID={stored[0].StudyInstanceUID}"
    get = stack.http.get(url, timeout=10)
    head = stack.http.head(url, timeout=10)
    assert head.status_code == get.status_code == 200  # Orthanc alone answers HEAD with 404
    assert head.headers["Content-Type"] == get.headers["Content-Type"]
    assert head.content == b""
    for path, allow in (("/dicom-web/studies", "GET, HEAD, POST, OPTIONS"), ("/wado", "GET, HEAD, OPTIONS")):
        options = stack.http.options(stack.url + path, timeout=10)
        assert options.status_code == 204
        assert options.headers["Allow"] == allow
    static = stack.http.head(stack.url + "/ohif/", timeout=10)
    assert static.status_code == 200 and static.headers["Content-Type"].startswith("text/html")
    for path in ("/ohif/", "/ohif/app-config.js"):
        options = stack.http.options(stack.url + path, timeout=10)
        assert (options.status_code, options.headers.get("Allow")) == (204, "GET, HEAD, OPTIONS"), path


def test_wado_uri_through_the_door(stack: Stack, stored: list[Dataset]) -> None:
    first = stored[0]
    # Written out: Orthanc 1.10 hands plugins percent-encoded values ("application%2Fdicom").
    query = (f"requestType=WADO&studyUID={first.StudyInstanceUID}&seriesUID="
             f"{first.SeriesInstanceUID}&objectUID={first.SOPInstanceUID}&contentType=application/dicom")
    r = stack.http.get(f"{stack.url}/wado?{query}", timeout=30)
    assert r.status_code == 200
    assert dd.read(r.content).SOPInstanceUID == first.SOPInstanceUID
    assert stack.http.post(stack.url + "/wado", timeout=10).status_code == 405


def test_door_answers_502_problem_while_orthanc_is_down(stack: Stack) -> None:
    supervisor = stack.supervisor().supervisor
    supervisor.stopProcess("orthanc")
    try:
        r = stack.http.get(stack.url + "/dicom-web/studies/1.2.3/metadata", timeout=10)
        assert r.status_code == 502
        assert r.headers["Content-Type"] == PROBLEM and r.json()["status"] == 502
        # A QIDO-RS search is the API service's, which says what is missing behind it.
        search = stack.http.get(stack.url + "/dicom-web/studies", timeout=30)
        assert search.status_code == 503
        assert search.headers["Content-Type"] == PROBLEM and search.json()["status"] == 503
        health = stack.http.get(stack.url + "/api/health", timeout=30)
        assert health.status_code == 503 and health.json()["status"] == "degraded"
    finally:
        supervisor.startProcess("orthanc")
    stack.wait_healthy()


def test_authorization_answers_are_cached(stack: Stack) -> None:
    # A key of its own: the first request's check is a miss, the next two reuse its answer.
    made = stack.http.post(stack.url + "/api/api-keys", timeout=10, json={
        "name": "cache-test-" + dd.unique_token(), "permissions": ["view"], "tenants": None})
    assert made.status_code in (200, 201), made.text
    headers = {"Authorization": f"Bearer {made.json()['key']}"}
    path = "/dicom-web/studies?cache-test=" + dd.unique_token()

    def logged() -> list[str]:
        return [line for line in stack.log_text("door-access").splitlines() if f"GET {path} " in line]

    for _ in range(3):
        assert stack.http.get(stack.url + path, headers=headers, timeout=10).status_code == 200
    deadline = time.monotonic() + 10
    while len(lines := logged()) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)  # nginx logs a request after answering it
    states = [m.group(1) for m in (re.search(r"auth=(\S+)", line) for line in lines[-3:]) if m]
    assert states[0] in ("MISS", "EXPIRED") and states[1:] == ["HIT", "HIT"], lines[-3:]
    assert all(re.search(r"rt=\d+\.\d{3}", line) for line in lines[-3:])


# --- the viewer and the console ---------------------------------------------------------------


def test_viewer_index_deep_links_and_app_config(stack: Stack) -> None:
    for path in ("/ohif/", "/ohif/viewer", "/ohif/viewer/dicomweb?StudyInstanceUIDs=1.2.3",
                 "/ohif/index.html"):
        r = stack.http.get(stack.url + path, timeout=10)
        assert r.status_code == 200, path
        assert r.headers["Content-Type"].startswith("text/html")
        assert r.headers["Cache-Control"] == REVALIDATE
        assert 'window.PUBLIC_URL = "/ohif/"' in r.text
        assert 'src="/ohif/app-config.js"' in r.text
    config = stack.http.get(stack.url + "/ohif/app-config.js", timeout=10)
    assert config.status_code == 200 and config.headers["Cache-Control"] == REVALIDATE
    assert '"qidoRoot": "/api/dicom-web"' in config.text
    assert '"dicomWebRoot": "/dicom-web"' in config.text
    moved = stack.http.get(stack.url + "/ohif", allow_redirects=False, timeout=10)
    assert moved.status_code == 301 and moved.headers["Location"] == "/ohif/"


def _app_bundle(stack: Stack) -> str:
    """The app bundle's content-hashed name, from index.html."""
    index = stack.http.get(stack.url + "/ohif/", timeout=10).text
    [app] = re.findall(r'src="/ohif/(app\.bundle\.[0-9a-f]{16,}\.js)"', index)
    return str(app)


def test_viewer_bundles_are_cached_by_name_and_revalidated(stack: Stack) -> None:
    rewritten = rewritten_files(Path(_viewer_build(stack)))
    app = _app_bundle(stack)
    r = stack.http.get(f"{stack.url}/ohif/{app}", headers={"Accept-Encoding": "gzip"}, timeout=30)
    assert r.status_code == 200
    assert r.headers["Cache-Control"] == (REWRITTEN if app in rewritten else IMMUTABLE)
    assert r.headers["Content-Type"].startswith("application/javascript")
    assert r.headers["Content-Encoding"] == "gzip"
    hashed = [name for name in _build_files(stack) if re.search(r"[.-][0-9a-f]{16,}\.[a-z0-9]+$", name)
              and name not in rewritten]
    assert hashed
    immutable = stack.http.head(f"{stack.url}/ohif/{hashed[0]}", timeout=10)
    assert immutable.headers["Cache-Control"] == IMMUTABLE
    # index.html is revalidated, and nginx answers 304 when it has not changed.
    first = stack.http.get(stack.url + "/ohif/index.html", timeout=10)
    again = stack.http.get(stack.url + "/ohif/index.html", timeout=10,
                         headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304
    since = stack.http.get(f"{stack.url}/ohif/{app}", timeout=10,
                         headers={"If-Modified-Since": r.headers["Last-Modified"]})
    assert since.status_code == 304


def _viewer_build(stack: Stack) -> str:
    routes = (stack.run_dir / "nginx-routes.conf").read_text()
    match = re.search(r"location \^~ /ohif/ \{.*?\n    alias (\S+)/;", routes, re.S)
    assert match, "the viewer's location"
    return match.group(1)


def _build_files(stack: Stack) -> list[str]:
    build = Path(_viewer_build(stack))
    return sorted(p.name for p in build.iterdir() if p.is_file())


@pytest.mark.parametrize("path", ["/ohif/app.bundle.0000000000000000dead.js", "/ohif/assets/missing.png",
                                  "/ohif/.archive-ohif-install.json", "/ohif/viewer/x.json"])
def test_viewer_missing_assets_and_hidden_files_are_404(stack: Stack, path: str) -> None:
    r = stack.http.get(stack.url + path, timeout=10)
    assert r.status_code == 404
    assert r.headers["Content-Type"] == PROBLEM


def test_console_root_and_health(stack: Stack) -> None:
    root = stack.http.get(stack.url + "/", allow_redirects=False, timeout=10)
    assert root.status_code == 302 and root.headers["Location"] == "/ui/"
    ui = stack.http.get(stack.url + "/ui/", timeout=10)
    if ui.status_code == 503:
        assert "scripts/install-console" in ui.text
    else:
        assert ui.status_code == 200 and ui.headers["Content-Type"].startswith("text/html")
        deep = stack.http.get(stack.url + "/ui/jobs/123", timeout=10)
        assert deep.status_code == 200 and deep.text == ui.text
    assert stack.http.get(stack.url + "/door-health", timeout=10).status_code == 204
    health = stack.http.get(stack.url + "/api/health", timeout=30)
    assert health.status_code == 200, health.text


def test_api_and_fhir_go_to_the_api_service(stack: Stack) -> None:
    r = stack.http.get(stack.url + "/api/openapi.json", timeout=10)
    assert r.status_code == 200 and "openapi" in r.json()
    fhir = stack.http.get(stack.url + "/fhir/metadata", timeout=10)
    assert fhir.headers["Content-Type"].startswith(("application/json", PROBLEM)), fhir.headers
    assert fhir.headers.get("Server") == "nginx" and fhir.status_code != 502


# --- HTTPS ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def https_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    overrides: dict[str, Any] = {"archive.json": {"Archive": {"Door": {"Https": {"Enabled": True}}}}}
    with Stack(tmp_path_factory.mktemp("door-https"),
               overrides=deep_merge(overrides, SECURED)) as running:
        yield running


def test_https_with_the_generated_certificate(https_stack: Stack) -> None:
    certificate = https_stack.state_dir / "tls" / "door.crt"
    assert certificate.is_file()
    r = https_stack.http.get(https_stack.https_url + "/api/health", verify=str(certificate), timeout=30)
    assert r.status_code == 200, r.text
    localhost = https_stack.https_url.replace("127.0.0.1", "localhost")
    assert requests.get(localhost + "/door-health", verify=str(certificate), timeout=10).status_code == 204
    with pytest.raises(requests.exceptions.SSLError):
        https_stack.http.get(https_stack.https_url + "/door-health", timeout=10)  # not a public CA's
    assert https_stack.http.get(https_stack.url + "/door-health", timeout=10).status_code == 204
    # DICOMweb links in answers over HTTPS are HTTPS links to the door.
    token = dd.unique_token()
    DICOMwebClient(url=https_stack.url + "/dicom-web", headers=https_stack.auth_headers()).store_instances(synthetic.ct_volume(
        1, 32, 32, patient=PatientInfo("TLS^TEST", f"TLS-{token}", "19700101", "M")))
    [study] = https_stack.http.get(f"{https_stack.https_url}/dicom-web/studies?PatientID=TLS-{token}",
                           verify=str(certificate), timeout=30).json()
    assert study["00081190"]["Value"][0].startswith(https_stack.https_url + "/dicom-web/studies/")
