"""Security of a region of two archives through the real door, cell by cell (issue 8).

Two archives share one control database (users, roles, organisation units, API keys, sessions,
tokens and the audit trail, ``Archive.Database.Control``), as docs/security.md ("Several
archives, one region") describes: the city hospital's (tenant ``default``) and the township
clinic's (tenant ``zhen``). People and keys are made once, at the city's API, and hold on both.

What is proved here, every cell through the door with real clients (``requests``,
``dicomweb-client``, ``http.client`` for paths no client may normalise):

1. the matrix of callers × archives × endpoints (:data:`CITY` and :data:`TOWN`, one
   parametrised case per endpoint and archive, every caller in it), with what an allowed answer
   holds: never the other tenant's data;
2. an expired bearer token and an expired session stop at the door within the cache time;
3. a tampered token, key or cookie, a logged-out session and a revoked token are refused;
4. path traversal at the door reaches neither Orthanc's REST nor files outside;
5. injection strings in every search parameter: no 5xx, a problem where a value is refused,
   never more than the caller may see, and the databases intact;
6. the audit trail holds a row for every action of the matrix with its actor, tenant,
   session, study, patient and address (views and downloads folded from the door's log), and
   ``/api/audit/verify`` names a row changed in the database.
"""

from __future__ import annotations

import base64
import http.client
import json
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import requests
from dicomweb_client.api import DICOMwebClient

from archive_api.orthanc import InternalCredential, SyncOrthanc
from archive_audit.chain import AuditLog, key_path, load_or_create_key
from archive_audit.door_tail import DoorLogTailer
# Imported for their tables: ControlBase's and StateBase's metadata then hold every table of
# the control and of the state database.
from archive_state import models_audit, models_modalities, models_security  # noqa: F401
from archive_state.db import make_engine
from archive_state.models import ControlBase, StateBase
from archive_tools import synthetic
from archive_tools.synthetic import PatientInfo, StudyInfo
from archive_worker.audit_door_log import LOG_FILE, orthanc_patients
from testkit import dicom_data as dd
from testkit.stack import StartupFailed, Stack

pytestmark = pytest.mark.integration

PASSWORD = "Qu-Yu-Dang-An-2026"
PROBLEM = "application/problem+json"
FRAME_ACCEPT = 'multipart/related; type="application/octet-stream"'
INSTANCE_ACCEPT = 'multipart/related; type="application/dicom"'
LOOPBACK = "127.0.0.1"
#: Archive.Door.AuthCacheSeconds (the shipped default), and slack for a loaded machine.
CACHE_SECONDS = 5
SLACK_SECONDS = 3
#: The township archive's short lifetimes (its Archive.Security): 3 s tokens, 3.6 s sessions.
TOWN_TOKEN_MINUTES = 0.05
TOWN_SESSION_HOURS = 0.001


# --- the region ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Study:
    """One stored study, and the names of its parts."""

    uid: str
    series: str
    instance: str
    patient_id: str
    patient_name: str

    def fields(self) -> dict[str, str]:
        return {"study": self.uid, "series": self.series, "instance": self.instance,
                "patient": self.patient_id}


@dataclass(frozen=True)
class Site:
    """One archive of the region: its tenant, its stack, its study and where uploads go."""

    name: str
    tenant: str
    stack: Stack
    study: Study
    uploads: StudyInfo
    upload_patient: PatientInfo

    @property
    def url(self) -> str:
        return self.stack.url


@dataclass(frozen=True)
class Caller:
    """A column of the matrix: how it authenticates and how the audit trail names it."""

    name: str
    headers: Mapping[str, str]
    #: the audit trail's actor (the user name or the API key's name; None: anonymous)
    actor: str | None = None
    #: the credential's public id (the token's or key's), the audit rows' ``session``
    session: str | None = None


@dataclass
class Region:
    sites: dict[str, Site]
    control: Path
    callers: dict[str, Caller]

    @property
    def city(self) -> Site:
        return self.sites["city"]

    @property
    def town(self) -> Site:
        return self.sites["town"]

    def token(self, username: str, site: Site | None = None) -> dict[str, str]:
        """A fresh bearer token of ``username`` from ``site``'s API (the city's by default).
        Tests other than the matrix use fresh credentials, so that the audit rows of the
        matrix's own credentials are exactly the matrix's requests (the audit tests count
        them)."""
        where = site or self.city
        answer = requests.post(where.url + "/api/auth/token", timeout=30,
                               json={"username": username, "password": PASSWORD})
        assert answer.status_code == 200, answer.text
        return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def _overrides(tenant: str, control: Path, security: Mapping[str, Any]) -> dict[str, Any]:
    return {"archive.json": {"Archive": {
        "Tenant": tenant, "Security": {"Enabled": True, **security},
        "Database": {"Control": f"sqlite:///{control}"}}}}


def _unit(stack: Stack, kind: str, name: str, parent: int, tenant: str | None) -> int:
    made = stack.http.post(stack.url + "/api/org-units", timeout=10, json={
        "kind": kind, "name": name, "parentId": parent, "tenant": tenant})
    assert made.status_code == 201, made.text
    return int(made.json()["id"])


def _region_unit(stack: Stack) -> int:
    units = stack.http.get(stack.url + "/api/org-units", timeout=10).json()
    return int(next(u["id"] for u in units if u["kind"] == "region"))


def _user(stack: Stack, username: str, role: str, unit: int) -> None:
    made = stack.http.post(stack.url + "/api/users", timeout=10, json={
        "username": username, "displayName": username, "password": PASSWORD,
        "mustChangePassword": False, "grants": [{"roleId": role, "unitId": unit}]})
    assert made.status_code == 201, made.text


def _key(stack: Stack, name: str, permissions: list[str], tenants: list[str]) -> tuple[str, str]:
    """A new API key: (its id, the whole key)."""
    made = stack.http.post(stack.url + "/api/api-keys", timeout=10, json={
        "name": name, "permissions": permissions, "tenants": tenants})
    assert made.status_code == 201, made.text
    return str(made.json()["id"]), str(made.json()["key"])


def _credential_id(site: Site, headers: Mapping[str, str]) -> str:
    me = requests.get(site.url + "/api/auth/me", headers=dict(headers), timeout=10)
    assert me.status_code == 200, me.text
    return str(me.json()["session"])


#: Users of the region: name → (role, the unit granted on). Each name is also a column.
USERS: Mapping[str, tuple[str, str]] = {
    "admin": ("admin", "region"),
    "ta-city": ("tenant-admin", "city"),
    "ta-town": ("tenant-admin", "town"),
    "radio": ("radiologist", "city-radiology"),
    "clin": ("clinician", "city"),
    "tech": ("technician", "city-radiology"),
    "audit": ("auditor", "region"),
    "audit-town": ("auditor", "town"),
    "clin-town": ("clinician", "town"),
}


def _people(region: Region) -> None:
    """Organisation units, users with their grants and API keys, made at the city's API by
    the region's first administrator; the matrix's callers with their credentials."""
    city = region.city.stack
    units = {"region": _region_unit(city)}
    units["city"] = _unit(city, "hospital", "市人民医院", units["region"], "default")
    units["city-radiology"] = _unit(city, "department", "放射科", units["city"], None)
    # The township clinic is a hospital unit of the tree: the unit that names a tenant.
    units["town"] = _unit(city, "hospital", "镇卫生院", units["region"], "zhen")
    for username, (role, unit) in USERS.items():
        _user(city, username, role, units[unit])
    callers = {"anon": Caller("anon", {})}
    for username in USERS:
        headers = region.token(username)
        callers[username] = Caller(username, headers, username,
                                   _credential_id(region.city, headers))
    # The three ways a key is sent: X-API-Key, Bearer, HTTP Basic (user = the key's id).
    view_id, view = _key(city, "key-view", ["view"], ["default"])
    upload_id, upload = _key(city, "key-up", ["upload"], ["default"])
    town_id, town = _key(city, "key-town", ["view", "download"], ["zhen"])
    basic = base64.b64encode(f"{town_id}:{town}".encode()).decode()
    callers["key-view"] = Caller("key-view", {"X-API-Key": view}, "key-view", view_id)
    callers["key-up"] = Caller("key-up", {"Authorization": f"Bearer {upload}"}, "key-up",
                               upload_id)
    callers["key-town"] = Caller("key-town", {"Authorization": f"Basic {basic}"}, "key-town",
                                 town_id)
    region.callers = callers
    # A failed login at the township's archive: its audit row is the township's.
    failed = requests.post(region.town.url + "/api/auth/login", timeout=30,
                           json={"username": "clin", "password": "not-the-password-1A"})
    assert failed.status_code == 401, failed.text


def _store_study(site_stack: Stack, patient: PatientInfo, description: str) -> Study:
    """A two-slice CT study stored by the administrator with dicomweb-client (STOW-RS)."""
    info = StudyInfo(date="20250610", description=description)
    slices = synthetic.ct_volume(2, 32, 32, patient=patient, study=info)
    client = DICOMwebClient(url=site_stack.url + "/dicom-web", headers=site_stack.auth_headers())
    client.store_instances(slices)
    first = slices[0]
    return Study(str(first.StudyInstanceUID), str(first.SeriesInstanceUID),
                 str(first.SOPInstanceUID), patient.patient_id, patient.name)


@pytest.fixture(scope="module")
def region(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Region]:
    root = tmp_path_factory.mktemp("region")
    control = root / "control.sqlite"
    token = dd.unique_token()
    city = Stack(root / "city", overrides=_overrides("default", control, {}))
    town = Stack(root / "town", overrides=_overrides("zhen", control, {
        "TokenMinutes": TOWN_TOKEN_MINUTES, "SessionHours": TOWN_SESSION_HOURS}))
    try:
        city.start()
        # Every archive of one control database signs the one audit chain with the same key
        # (docs/security.md): the township's gets a copy of the city's before it starts.
        town.state_dir.mkdir(parents=True)
        key = key_path(town.state_dir)
        key.write_bytes(key_path(city.state_dir).read_bytes())
        key.chmod(0o600)
        town.administrator = str(city.http.headers["Authorization"])
        town.start()
        sites = {
            "city": Site("city", "default", city, _store_study(
                city, PatientInfo("张^伟", f"CITY-{token}", "19620418", "M"), "city CT"),
                StudyInfo(date="20250611", description="city uploads"),
                PatientInfo("王^芳", f"CITY-UP-{token}", "19800101", "F")),
            "town": Site("town", "zhen", town, _store_study(
                town, PatientInfo("李^娜", f"TOWN-{token}", "19750301", "F"), "town CT"),
                StudyInfo(date="20250612", description="town uploads"),
                PatientInfo("赵^强", f"TOWN-UP-{token}", "19900101", "M")),
        }
        made = Region(sites, control, {})
        _people(made)
        yield made
    finally:
        town.stop()
        city.stop()


# --- the matrix ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """A row of the matrix: a request, its path a template of the site's study (``{study}``,
    ``{series}``, ``{instance}``, ``{patient}``)."""

    name: str
    method: str
    path: str
    accept: str | None = None

    def url_path(self, site: Site) -> str:
        return self.path.format(**site.study.fields())


_INSTANCE = "/dicom-web/studies/{study}/series/{series}/instances/{instance}"
_WADO_URI = "/wado?requestType=WADO&studyUID={study}&seriesUID={series}&objectUID={instance}"
ENDPOINTS: Mapping[str, Endpoint] = {e.name: e for e in (
    Endpoint("qido-studies", "GET", "/dicom-web/studies?PatientID={patient}"),
    Endpoint("qido-series", "GET", "/dicom-web/studies/{study}/series"),
    Endpoint("qido-instances", "GET", "/dicom-web/studies/{study}/series/{series}/instances"),
    Endpoint("metadata", "GET", "/dicom-web/studies/{study}/metadata"),
    Endpoint("frame", "GET", _INSTANCE + "/frames/1", FRAME_ACCEPT),
    Endpoint("instance", "GET", _INSTANCE, INSTANCE_ACCEPT),
    Endpoint("wado-uri-jpeg", "GET", _WADO_URI + "&contentType=image/jpeg"),
    Endpoint("wado-uri-dicom", "GET", _WADO_URI + "&contentType=application/dicom"),
    Endpoint("stow", "POST", "/dicom-web/studies"),
    Endpoint("viewer", "GET", "/ohif/"),
    Endpoint("viewer-link", "GET", "/ohif/viewer?StudyInstanceUIDs={study}"),
    Endpoint("console", "GET", "/ui/"),
    Endpoint("me", "GET", "/api/auth/me"),
    Endpoint("users", "GET", "/api/users"),
    Endpoint("jobs", "GET", "/api/jobs"),
    Endpoint("audit", "GET", "/api/audit?limit=1000"),
    Endpoint("quarantine", "GET", "/api/quarantine"),
    Endpoint("modalities", "GET", "/api/modalities"),
    Endpoint("orthanc", "GET", "/orthanc/system"),
    Endpoint("fhir", "GET", "/fhir/metadata"),
    Endpoint("orthanc-system", "GET", "/system"),
    Endpoint("orthanc-instances", "GET", "/instances"),
    Endpoint("orthanc-shutdown", "POST", "/tools/shutdown"),
    Endpoint("health", "GET", "/api/health"),
)}


def _table(text: str) -> dict[str, dict[str, int]]:
    """endpoint → caller → expected status, from a table whose first line names the callers."""
    lines = [line.split() for line in text.strip().splitlines()]
    callers, rows = lines[0], lines[1:]
    table = {row[0]: dict(zip(callers, map(int, row[1:]), strict=True)) for row in rows}
    assert set(table) == set(ENDPOINTS), set(table) ^ set(ENDPOINTS)
    return table


# The city hospital's archive (tenant "default"). The region's administrator may do everything
# but reach Orthanc's REST outside /orthanc/; a hospital administrator administers users of its
# own hospital from either archive (the list is cut to them) but configures only its own; the
# auditor of the region reads the audit trail of both, the township's auditor only there.
# /fhir/ is reserved: the door sends it to the API, which has no FHIR route yet (404 problem,
# for anyone).
CITY = _table("""
                  anon admin ta-city ta-town radio clin tech audit audit-town clin-town key-view key-up key-town
qido-studies       401  200   200     403     200  200  200  403   403        403       200      403    403
qido-series        401  200   200     403     200  200  200  403   403        403       200      403    403
qido-instances     401  200   200     403     200  200  200  403   403        403       200      403    403
metadata           401  200   200     403     200  200  200  403   403        403       200      403    403
frame              401  200   200     403     200  200  200  403   403        403       200      403    403
instance           401  200   200     403     200  403  403  403   403        403       403      403    403
wado-uri-jpeg      401  200   200     403     200  200  200  403   403        403       200      403    403
wado-uri-dicom     401  200   200     403     200  403  403  403   403        403       403      403    403
stow               401  200   200     403     200  403  200  403   403        403       403      200    403
viewer             401  200   200     403     200  200  200  403   403        403       200      403    403
viewer-link        401  200   200     403     200  200  200  403   403        403       200      403    403
console            200  200   200     200     200  200  200  200   200        200       200      200    200
me                 401  200   200     200     200  200  200  200   200        200       200      200    200
users              401  200   200     200     403  403  403  403   403        403       403      403    403
jobs               401  200   200     403     403  403  403  403   403        403       403      403    403
audit              401  200   403     403     403  403  403  200   403        403       403      403    403
quarantine         401  200   200     403     200  200  200  403   403        403       200      403    403
modalities         401  200   200     403     403  403  403  403   403        403       403      403    403
orthanc            401  200   403     403     403  403  403  403   403        403       403      403    403
fhir               404  404   404     404     404  404  404  404   404        404       404      404    404
orthanc-system     404  404   404     404     404  404  404  404   404        404       404      404    404
orthanc-instances  404  404   404     404     404  404  404  404   404        404       404      404    404
orthanc-shutdown   404  404   404     404     404  404  404  404   404        404       404      404    404
health             200  200   200     200     200  200  200  200   200        200       200      200    200
""")

# The township clinic's archive (tenant "zhen"): the city's people and keys reach nothing of its
# data, its own do; region-level grants reach both.
TOWN = _table("""
                  anon admin ta-city ta-town radio clin tech audit audit-town clin-town key-view key-up key-town
qido-studies       401  200   403     200     403  403  403  403   403        200       403      403    200
qido-series        401  200   403     200     403  403  403  403   403        200       403      403    200
qido-instances     401  200   403     200     403  403  403  403   403        200       403      403    200
metadata           401  200   403     200     403  403  403  403   403        200       403      403    200
frame              401  200   403     200     403  403  403  403   403        200       403      403    200
instance           401  200   403     200     403  403  403  403   403        403       403      403    200
wado-uri-jpeg      401  200   403     200     403  403  403  403   403        200       403      403    200
wado-uri-dicom     401  200   403     200     403  403  403  403   403        403       403      403    200
stow               401  200   403     200     403  403  403  403   403        403       403      403    403
viewer             401  200   403     200     403  403  403  403   403        200       403      403    200
viewer-link        401  200   403     200     403  403  403  403   403        200       403      403    200
console            200  200   200     200     200  200  200  200   200        200       200      200    200
me                 401  200   200     200     200  200  200  200   200        200       200      200    200
users              401  200   200     200     403  403  403  403   403        403       403      403    403
jobs               401  200   403     200     403  403  403  403   403        403       403      403    403
audit              401  200   403     403     403  403  403  200   200        403       403      403    403
quarantine         401  200   403     200     403  403  403  403   403        200       403      403    200
modalities         401  200   403     200     403  403  403  403   403        403       403      403    403
orthanc            401  200   403     403     403  403  403  403   403        403       403      403    403
fhir               404  404   404     404     404  404  404  404   404        404       404      404    404
orthanc-system     404  404   404     404     404  404  404  404   404        404       404      404    404
orthanc-instances  404  404   404     404     404  404  404  404   404        404       404      404    404
orthanc-shutdown   404  404   404     404     404  404  404  404   404        404       404      404    404
health             200  200   200     200     200  200  200  200   200        200       200      200    200
""")

EXPECTED: Mapping[str, Mapping[str, Mapping[str, int]]] = {"city": CITY, "town": TOWN}
CALLERS: Sequence[str] = tuple(next(iter(CITY.values())))
#: Endpoints whose door-log lines are views of the site's study, and downloads of it.
STUDY_VIEWS = ("qido-series", "qido-instances", "metadata", "frame", "wado-uri-jpeg")
STUDY_DOWNLOADS = ("instance", "wado-uri-dicom")
#: Endpoints the door checks itself (auth_request), and the area each is checked in.
DOOR_AREAS: Mapping[str, str] = {
    **{e: "dicomweb-view" for e in (*STUDY_VIEWS, "qido-studies")},
    **{e: "dicomweb-download" for e in STUDY_DOWNLOADS},
    "stow": "dicomweb-upload", "viewer": "viewer", "viewer-link": "viewer",
    "orthanc": "orthanc-admin"}
#: Endpoints of the API that record their refusals.
API_CHECKED = ("users", "jobs", "audit", "quarantine", "modalities")


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    body: bytes
    headers: Mapping[str, str]
    #: the SOP Instance UID a STOW-RS request sent
    sent: str | None = None

    def json(self) -> Any:
        return json.loads(self.body)


def _stow_body(site: Site) -> tuple[bytes, str, str]:
    """A multipart/related body of one new instance of the site's upload study: (body,
    Content-Type, its SOP Instance UID)."""
    [instance] = synthetic.ct_volume(1, 32, 32, patient=site.upload_patient, study=site.uploads)
    boundary = f"matrix-{dd.unique_token()}"
    body = (f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
            + synthetic.to_bytes(instance) + f"\r\n--{boundary}--\r\n".encode())
    content_type = f'multipart/related; type="application/dicom"; boundary={boundary}'
    return body, content_type, str(instance.SOPInstanceUID)


def _ask(site: Site, endpoint: Endpoint, caller: Caller) -> Answer:
    headers = dict(caller.headers)
    if endpoint.accept:
        headers["Accept"] = endpoint.accept
    body: bytes | None = None
    sent: str | None = None
    if endpoint.name == "stow":
        body, headers["Content-Type"], sent = _stow_body(site)
        headers["Accept"] = "application/dicom+json"
    answer = requests.request(endpoint.method, site.url + endpoint.url_path(site), data=body,
                              headers=headers, timeout=60, allow_redirects=False)
    return Answer(answer.status_code, answer.headers.get("Content-Type", ""), answer.content,
                  answer.headers, sent)


Matrix = dict[tuple[str, str, str], Answer]


@pytest.fixture(scope="module")
def matrix(region: Region) -> Matrix:
    """Every cell asked once: (site, endpoint, caller) → the answer."""
    for site in region.sites.values():
        site.stack.wait_healthy()
    return {(site.name, endpoint.name, caller.name): _ask(site, endpoint, caller)
            for site in region.sites.values() for endpoint in ENDPOINTS.values()
            for caller in (region.callers[c] for c in CALLERS)}


def _study_uids(items: list[dict[str, Any]]) -> set[str]:
    return {str(item["0020000D"]["Value"][0]) for item in items}


def _check_allowed(site: Site, other: Site, endpoint: str, caller: str, answer: Answer) -> None:
    """What a 200 holds: this archive's data only, in the form asked for."""
    where = (site.name, endpoint, caller)
    if endpoint in ("qido-studies", "qido-series", "qido-instances", "metadata"):
        assert answer.content_type.startswith("application/dicom+json"), where
        items = answer.json()
        assert items and _study_uids(items) == {site.study.uid}, (where, items)
    elif endpoint == "frame":
        assert answer.content_type.startswith("multipart/related"), where
        assert "application/octet-stream" in answer.content_type, where
        assert len(answer.body) > 32 * 32 * 2, where
    elif endpoint in ("instance", "wado-uri-dicom"):
        assert site.study.instance.encode() in answer.body and b"DICM" in answer.body, where
        assert other.study.uid.encode() not in answer.body, where
    elif endpoint == "wado-uri-jpeg":
        # A JPEG, rendered. Its Content-Type is the DICOMweb plugin's: some versions label every
        # WADO-URI preview image/png (its AnswerPreview), whatever was rendered.
        assert answer.body[:3] == b"\xff\xd8\xff", (where, answer.body[:4])
        assert answer.content_type in ("image/jpeg", "image/png"), where
    elif endpoint == "stow":
        assert answer.content_type.startswith("application/dicom+json"), where
        assert answer.sent is not None and answer.sent.encode() in answer.body, where
    elif endpoint in ("viewer", "viewer-link", "console"):
        assert answer.content_type.startswith("text/html"), where
    elif endpoint == "orthanc":
        assert "ApiVersion" in answer.json(), where
    elif endpoint == "audit":
        _check_audit_page(site, caller, answer.json())
    elif endpoint == "users":
        _check_user_list(caller, {u["username"] for u in answer.json()})
    elif endpoint == "me":
        assert answer.json()["tenant"] == site.tenant, where
    elif endpoint in ("jobs", "quarantine"):
        assert isinstance(answer.json()["items"], list), where
    elif endpoint == "modalities":
        assert "test-dimsetest" in {m["name"] for m in answer.json()}, where
    elif endpoint == "health":
        assert answer.json()["tenant"] == site.tenant, where


def _check_audit_page(site: Site, caller: str, page: dict[str, Any]) -> None:
    """A tenant's auditor reads that tenant's rows only; the region's every tenant's."""
    tenants = {row["tenant"] for row in page["items"]}
    if caller == "audit-town":
        assert tenants == {"zhen"}, tenants
    else:
        assert {"default", "zhen"} <= tenants, (site.name, caller, tenants)


def _check_user_list(caller: str, names: set[str]) -> None:
    """A hospital administrator sees the users of its own hospital, not the other's."""
    city_people = {"radio", "clin", "tech", "ta-city"}
    town_people = {"clin-town", "audit-town", "ta-town"}
    if caller == "ta-city":
        assert city_people <= names and not names & town_people, names
    elif caller == "ta-town":
        assert town_people <= names and not names & city_people, names
    else:
        assert city_people | town_people | {"admin", "audit"} <= names, names


def _check_refused(site: Site, endpoint: Endpoint, caller: str, answer: Answer) -> None:
    """A refusal says so as a problem, or, for a page a browser opens, as the login page."""
    where = (site.name, endpoint.name, caller, answer.body[:200])
    assert site.study.uid.encode() not in answer.body, where
    if answer.status == 401 and endpoint.name in ("viewer", "viewer-link", "orthanc"):
        assert answer.content_type.startswith("text/html") and b"/ui/login" in answer.body, where
    else:
        assert answer.content_type.startswith(PROBLEM), where
        assert answer.json()["status"] == answer.status, where
    if answer.status == 401:
        assert answer.headers.get("WWW-Authenticate", "").startswith("Bearer"), where


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
@pytest.mark.parametrize("site_name", ["city", "town"])
def test_each_caller_reaches_only_what_it_may(region: Region, matrix: Matrix, site_name: str,
                                              endpoint: str) -> None:
    """One row of :data:`CITY` or :data:`TOWN`: every caller's status, what an allowed
    answer holds (this archive's data, never the other's) and how a refusal says so."""
    site = region.sites[site_name]
    other = region.town if site is region.city else region.city
    actual = {caller: matrix[(site_name, endpoint, caller)].status for caller in CALLERS}
    assert actual == EXPECTED[site_name][endpoint]
    for caller in CALLERS:
        answer = matrix[(site_name, endpoint, caller)]
        if answer.status == 200:
            _check_allowed(site, other, endpoint, caller, answer)
        elif answer.status in (401, 403, 404):
            _check_refused(site, ENDPOINTS[endpoint], caller, answer)


def test_each_archive_holds_only_its_own_tenants_studies(region: Region) -> None:
    """Even the region's administrator finds a study only in the archive that holds it."""
    admin = region.token("admin")
    for site, other in ((region.city, region.town), (region.town, region.city)):
        found = requests.get(site.url + "/dicom-web/studies", headers=admin, timeout=30,
                             params={"StudyInstanceUID": other.study.uid})
        assert found.status_code == 200 and found.json() == [], found.text
        metadata = requests.get(f"{site.url}/dicom-web/studies/{other.study.uid}/metadata",
                                headers=admin, timeout=30)
        assert metadata.status_code == 404, metadata.text


def test_the_door_ignores_a_callers_own_area_and_tenant_headers(region: Region) -> None:
    """X-Door-Area and X-Door-Tenant are the door's to set: a township clinician who claims
    the township's tenant at the city's door is still refused."""
    headers = {**region.token("clin-town"), "X-Door-Tenant": "zhen",
               "X-Door-Area": "dicomweb-view", "X-Archive-User": "admin"}
    refused = requests.get(region.city.url + "/dicom-web/studies", headers=headers, timeout=30)
    assert refused.status_code == 403, refused.text


def test_real_dicomweb_clients_with_each_kind_of_credential(region: Region) -> None:
    """dicomweb-client with a user's bearer token, a key sent as Basic, and a refused one."""
    city, town = region.city, region.town
    radiologist = DICOMwebClient(url=city.url + "/dicom-web", headers=region.token("radio"))
    [study] = radiologist.search_for_studies(search_filters={"PatientID": city.study.patient_id})
    assert study["0020000D"]["Value"] == [city.study.uid]
    frames = radiologist.retrieve_instance_frames(
        city.study.uid, city.study.series, city.study.instance, frame_numbers=[1],
        media_types=(("application/octet-stream", "1.2.840.10008.1.2.1"),))
    assert len(frames) == 1 and len(frames[0]) == 32 * 32 * 2
    instance = radiologist.retrieve_instance(city.study.uid, city.study.series,
                                             city.study.instance)
    assert str(instance.SOPInstanceUID) == city.study.instance
    key_id, key = _key(city.stack, "key-town-client", ["view"], ["zhen"])
    basic = base64.b64encode(f"{key_id}:{key}".encode()).decode()
    keyed = DICOMwebClient(url=town.url + "/dicom-web", headers={"Authorization": f"Basic {basic}"})
    metadata = keyed.retrieve_study_metadata(town.study.uid)
    assert {m["0020000D"]["Value"][0] for m in metadata} == {town.study.uid}
    outsider = DICOMwebClient(url=town.url + "/dicom-web", headers=region.token("clin"))
    with pytest.raises(requests.HTTPError) as refused:
        outsider.search_for_studies()
    assert refused.value.response.status_code == 403


# --- expiry, tampering, revocation --------------------------------------------------------


def _status(url: str, headers: Mapping[str, str] | None = None,
            cookies: Mapping[str, str] | None = None) -> int:
    return requests.get(url, headers=dict(headers or {}), cookies=dict(cookies or {}),
                        timeout=30, allow_redirects=False).status_code


def _until_refused(url: str, deadline: float, headers: Mapping[str, str] | None = None,
                   cookies: Mapping[str, str] | None = None) -> tuple[int, float]:
    """Ask ``url`` until it stops answering 200 or ``deadline`` (monotonic) passes: the last
    status and when it came."""
    status = 200
    while status == 200 and time.monotonic() < deadline:
        time.sleep(0.2)
        status = _status(url, headers, cookies)
    return status, time.monotonic()


def _session_cookie(site: Site, username: str) -> tuple[str, str]:
    """A fresh browser login at ``site``: (the cookie's value, the CSRF token)."""
    answer = requests.post(site.url + "/api/auth/login", timeout=30,
                           json={"username": username, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    return answer.cookies["archive_session"], str(answer.json()["csrfToken"])


def test_expired_tokens_and_sessions_stop_at_the_door_within_the_cache_time(
        region: Region) -> None:
    """The township's archive issues 3 s tokens and 3.6 s sessions (its Archive.Security):
    once expired they are refused at once by the API and, the door having kept the allowed
    answer, within AuthCacheSeconds at the door; the city's archive, sharing the control
    database, refuses them too."""
    town, city = region.town, region.city
    started = time.monotonic()
    token = requests.post(town.url + "/api/auth/token", timeout=30,
                          json={"username": "clin-town", "password": PASSWORD}).json()
    assert token["expires_in"] == round(TOWN_TOKEN_MINUTES * 60)
    bearer = {"Authorization": f"Bearer {token['access_token']}"}
    cookie, _ = _session_cookie(town, "clin-town")
    session = {"archive_session": cookie}
    search = town.url + "/dicom-web/studies"
    assert _status(search, bearer) == 200 and _status(search, cookies=session) == 200
    assert _status(town.url + "/ohif/", cookies=session) == 200
    token_ends = started + TOWN_TOKEN_MINUTES * 60
    session_ends = started + TOWN_SESSION_HOURS * 3600
    me = town.url + "/api/auth/me"
    status, at = _until_refused(me, token_ends + SLACK_SECONDS, bearer)
    assert status == 401 and at >= token_ends - 0.5
    status, at = _until_refused(search, token_ends + CACHE_SECONDS + SLACK_SECONDS, bearer)
    assert status == 401, "the door still lets the expired token in"
    status, at = _until_refused(me, session_ends + SLACK_SECONDS, cookies=session)
    assert status == 401 and at >= session_ends - 0.5
    status, _ = _until_refused(search, session_ends + CACHE_SECONDS + SLACK_SECONDS,
                               cookies=session)
    assert status == 401, "the door still lets the expired session in"
    viewer = town.url + "/ohif/"
    assert _until_refused(viewer, session_ends + CACHE_SECONDS + SLACK_SECONDS,
                          cookies=session)[0] == 401
    assert b"/ui/login" in requests.get(viewer, cookies=session, timeout=30).content
    assert _status(city.url + "/api/auth/me", bearer) == 401


def _flipped(text: str) -> str:
    """``text`` with its last character changed."""
    return text[:-1] + ("A" if text[-1] != "A" else "B")


def test_tampered_credentials_are_refused(region: Region) -> None:
    """Tokens, keys and cookies are random secrets checked by their hashes: any change, a
    key's secret under another key's id, a forged JWT, a bad credential beside a good cookie,
    all are 401 at the door and at the API."""
    city = region.city
    search, me = city.url + "/dicom-web/studies", city.url + "/api/auth/me"
    token = region.token("clin")["Authorization"].removeprefix("Bearer ")
    key_id, key = _key(city.stack, "tamper-me", ["view"], ["default"])
    cookie, _ = _session_cookie(city, "clin")
    assert _status(search, {"Authorization": f"Bearer {token}"}) == 200
    assert _status(search, {"X-API-Key": key}) == 200
    assert _status(search, cookies={"archive_session": cookie}) == 200
    other_id, _ = _key(city.stack, "another", ["view"], ["default"])
    secret = key.split("_", 2)[2]  # ak_<id>_<secret>
    forged_basic = base64.b64encode(f"{key_id}:{_flipped(key)}".encode()).decode()
    foreign_basic = base64.b64encode(f"{other_id}:{key}".encode()).decode()
    tampered: dict[str, tuple[Mapping[str, str], Mapping[str, str]]] = {
        "token, last character": ({"Authorization": f"Bearer {_flipped(token)}"}, {}),
        "token, cut short": ({"Authorization": f"Bearer {token[:-4]}"}, {}),
        "token, longer": ({"Authorization": f"Bearer {token}x"}, {}),
        "token, other scheme": ({"Authorization": f"Token {token}"}, {}),
        "unsigned JWT": ({"Authorization": "Bearer eyJhbGciOiJub25lIn0."
                                           "eyJzdWIiOiJhZG1pbiIsInJvbGUiOiJhZG1pbiJ9."}, {}),
        "key, secret changed": ({"X-API-Key": _flipped(key)}, {}),
        "key, another id": ({"X-API-Key": f"ak_{other_id}_{secret}"}, {}),
        "key as Basic, wrong secret": ({"Authorization": f"Basic {forged_basic}"}, {}),
        "key as Basic, another id": ({"Authorization": f"Basic {foreign_basic}"}, {}),
        "cookie changed": ({}, {"archive_session": _flipped(cookie)}),
        # A bad explicit credential is not rescued by a good cookie.
        "bad token, good cookie": ({"Authorization": f"Bearer {token}x"},
                                   {"archive_session": cookie}),
    }
    for what, (headers, cookies) in tampered.items():
        assert _status(search, headers, cookies) == 401, what
        assert _status(me, headers, cookies) == 401, what


def test_logged_out_sessions_and_tokens_stop_within_the_cache_time(region: Region) -> None:
    """Logging out ends a session (or, with the bearer token itself, a token): at once at the
    API, within AuthCacheSeconds at the door (whose allowed answer was kept), and is
    recorded."""
    city = region.city
    search, me = city.url + "/dicom-web/studies", city.url + "/api/auth/me"
    cookie, csrf = _session_cookie(city, "radio")
    session = {"archive_session": cookie}
    bearer = region.token("radio")
    assert _status(search, cookies=session) == 200 and _status(search, bearer) == 200
    session_id = requests.get(me, cookies=session, timeout=10).json()["session"]
    token_id = requests.get(me, headers=bearer, timeout=10).json()["session"]
    without_csrf = requests.post(city.url + "/api/auth/logout", cookies=session, timeout=10)
    assert without_csrf.status_code == 403 and _status(me, cookies=session) == 200
    out = requests.post(city.url + "/api/auth/logout", cookies=session, timeout=10,
                        headers={"X-CSRF-Token": csrf})
    assert out.status_code == 204
    assert requests.post(city.url + "/api/auth/logout", headers=bearer,
                         timeout=10).status_code == 204
    revoked = time.monotonic()
    assert _status(me, cookies=session) == 401 and _status(me, bearer) == 401
    deadline = revoked + CACHE_SECONDS + SLACK_SECONDS
    assert _until_refused(search, deadline, cookies=session)[0] == 401
    assert _until_refused(search, deadline, bearer)[0] == 401
    logouts = requests.get(city.url + "/api/audit", headers=region.token("audit"), timeout=30,
                           params={"action": "logout", "operator": "radio"}).json()["items"]
    assert {row["session"] for row in logouts} >= {session_id, token_id}
    assert {(row["tenant"], row["sourceIp"]) for row in logouts} == {("default", LOOPBACK)}


# --- path traversal -----------------------------------------------------------------------


def _raw_get(site: Site, path: str, headers: Mapping[str, str]) -> tuple[int, str, bytes]:
    """GET ``path`` exactly as written (no client normalises it): status, type, body."""
    port = int(site.url.rsplit(":", 1)[1])
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=30)
    try:
        connection.putrequest("GET", path, skip_accept_encoding=True)
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.endheaders()
        answer = connection.getresponse()
        return answer.status, answer.getheader("Content-Type") or "", answer.read()
    finally:
        connection.close()


TRAVERSALS = (
    "/dicom-web/../orthanc/system",
    "/dicom-web/%2e%2e/system",
    "/dicom-web/%2e%2e/orthanc/system",
    "/dicom-web/studies/..%2f..%2fsystem",
    "/dicom-web/studies/%2e%2e/%2e%2e/instances",
    "/dicom-web/%252e%252e/system",
    "/dicom-web/..%252f..%252fsystem",
    "/dicom-web/..\\..\\system",
    "/dicom-web/..%5c..%5csystem",
    "/dicom-web//../system",
    "/wado/../system",
    "/wado%2f..%2fsystem",
    "/ohif/..%2f..%2fetc/passwd",
    "/ohif/../../etc/passwd",
    "/ohif/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/ohif/..%252f..%252f..%252fetc%252fpasswd",
    "/ohif/..\\..\\..\\etc\\passwd",
    "/ohif/app-config.js/../../../etc/passwd",
    "/ui/%2e%2e/%2e%2e/etc/passwd",
    "/ui/..%2f..%2f..%2fetc%2fpasswd",
    "/ui/..%252f..%252fetc%252fpasswd",
    "/ui/..\\..\\..\\etc\\passwd",
    "/ui/../orthanc/system",
    "/api/../system",
    "/api/..%2fsystem",
    "/api/%2e%2e/instances",
    "/fhir/../system",
    "/orthanc/../system",
    "/orthanc/..%2f..%2fetc/passwd",
    "//system",
    "/./system",
    "/%2e/system",
)
#: What must never be in an answer to one of these: Orthanc's REST, a file outside.
LEAKS = (b'"ApiVersion"', b'"DicomAet"', b"root:x:0:0", b"/bin/bash", b'"MainDicomTags"')


def _spa_index(site: Site, root: str) -> bytes:
    admin = region_admin_headers(site)
    return requests.get(site.url + root, headers=admin, timeout=30).content


def region_admin_headers(site: Site) -> dict[str, str]:
    return {"Authorization": str(site.stack.http.headers["Authorization"])}


#: Paths the door itself normalises to /orthanc/system: Orthanc's REST under /orthanc/, which
#: the region's administrator may read (and no one else).
ADMIN_MAY: frozenset[str] = frozenset({"/dicom-web/../orthanc/system",
                                       "/dicom-web/%2e%2e/orthanc/system",
                                       "/ui/../orthanc/system"})


def _traversal_headers(region: Region, caller: str) -> dict[str, str]:
    if caller == "anonymous":
        return {}
    if caller == "view-key":
        return {"X-API-Key": _key(region.city.stack, "traversal", ["view"], ["default"])[1]}
    return region.token({"clinician": "clin", "radiologist": "radio", "admin": "admin"}[caller])


@pytest.mark.parametrize("caller", ["anonymous", "clinician", "view-key", "radiologist",
                                    "admin"])
def test_path_traversal_reaches_neither_orthancs_rest_nor_files_outside(
        region: Region, caller: str) -> None:
    """Each path is refused (400, 401, 403, 404) or, at most, answered with the viewer's or
    the console's own page (a client-side route of that app): never Orthanc's REST, never a
    file outside the app's folder. A radiologist may download (the area of any DICOMweb path
    the door does not know): "..\\" must not take it to Orthanc's root."""
    site = region.city
    headers = _traversal_headers(region, caller)
    pages = {_spa_index(site, "/ohif/"), _spa_index(site, "/ui/")}
    answers = {path: _raw_get(site, path, headers) for path in TRAVERSALS}
    for path, (status, content_type, body) in answers.items():
        where = (caller, path, status, body[:300])
        if caller == "admin" and path in ADMIN_MAY:
            assert status == 200 and b'"ApiVersion"' in body, where
            continue
        assert not any(leak in body for leak in LEAKS), where
        assert status in (200, 400, 401, 403, 404), where
        if status == 200:
            assert path.startswith(("/ohif/", "/ui/")) and body in pages, where
            assert content_type.startswith("text/html"), where
        if "\\" in path or "%5c" in path or "%25" in path:
            if path.startswith("/dicom-web/"):
                assert status == 400, where  # before any check: no credential helps
    # Orthanc is still there and answers the door.
    assert _status(site.url + "/api/health") == 200


# --- injection in every search parameter --------------------------------------------------


INJECTIONS: Mapping[str, str] = {
    "sql-or": "' OR 1=1 --",
    "sql-drop": '"; DROP TABLE users; --',
    "sql-union": "x' UNION SELECT username, password_hash FROM users --",
    "sql-comment": "admin'/*",
    "wildcard-star": "*",
    "wildcard-question": "?",
    "like-percent": "%",
    "like-underscore": "_",
    "nul": "a\x00b",
    "long": "A" * 10_000,
    "crlf": "x\r\nSet-Cookie: injected=1\r\nX-Injected: 1",
    "chinese": "张*",
    "traversal": "../../../etc/passwd",
    "json": '{"$ne": null}',
    "html": "<script>alert(1)</script>",
}
QIDO_PARAMETERS = ("PatientName", "PatientID", "StudyDate", "AccessionNumber",
                   "ModalitiesInStudy", "StudyInstanceUID", "limit", "offset", "includefield")
AUDIT_PARAMETERS = ("operator", "action", "patient", "study", "tenant", "unit", "from", "to",
                    "outcome", "limit", "offset")
JOB_PARAMETERS = ("state", "kind", "tenant", "limit", "offset")
QUARANTINE_PARAMETERS = ("status", "reason", "transport", "patient", "since", "until", "limit",
                         "offset")


def _injected(response: requests.Response) -> bool:
    """Whether a value made it into the answer's headers."""
    return any("injected" in name.lower() or "injected" in value.lower()
               for name, value in response.headers.items())


def _refusal_is_clear(response: requests.Response, parameter: str) -> None:
    """A refused value: 400 (or 414 from the door for a request line past its buffers) as a
    problem document that says which parameter, when the service got to read it."""
    where = (parameter, response.status_code, response.text[:300])
    assert response.status_code in (400, 414), where
    assert response.headers["Content-Type"].startswith(PROBLEM), where
    if response.status_code == 400:
        problem = response.json()
        named = {str(e.get("field", "")) for e in problem.get("errors", [])}
        assert parameter in " ".join([*named, str(problem.get("detail", "")),
                                      str(problem.get("parameter", ""))]), where


@pytest.fixture(scope="module")
def city_uploads(region: Region, matrix: Matrix) -> set[str]:
    """The studies the city's archive holds once the matrix ran: its own and the uploads."""
    return {region.city.study.uid, region.city.uploads.uid}


#: Control tables no search may change, counted before the injections and after.
CENSUS_TABLES = ("users", "roles", "grants", "org_units", "api_keys")


def _census(control: Path) -> dict[str, int]:
    with sqlite3.connect(control, timeout=30) as connection:
        return {table: int(connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
                for table in CENSUS_TABLES}


@pytest.fixture(scope="module")
def census(region: Region, matrix: Matrix) -> dict[str, int]:
    """The control tables' row counts before the injection tests."""
    return _census(region.control)


@pytest.mark.parametrize("parameter", QIDO_PARAMETERS)
def test_injection_in_qido_parameters(region: Region, city_uploads: set[str],
                                      census: dict[str, int], parameter: str) -> None:
    """No value of any QIDO-RS parameter makes a 5xx, widens a search past the archive's own
    studies, or reaches a header; a value that is not valid is a 400 naming the parameter."""
    city = region.city
    clinician = region.token("clin")
    for name, value in INJECTIONS.items():
        answer = requests.get(city.url + "/dicom-web/studies", headers=clinician, timeout=60,
                              params={parameter: value})
        where = (parameter, name, answer.status_code, answer.text[:300])
        assert answer.status_code < 500, where
        assert not _injected(answer), where
        if answer.status_code != 200:
            _refusal_is_clear(answer, parameter)
            continue
        found = _study_uids(answer.json())
        assert found <= city_uploads, where
        if (parameter, name) in (("PatientName", "chinese"),):
            assert found == {city.study.uid}, where
        elif parameter in ("PatientName", "PatientID") and name == "wildcard-star":
            assert found == city_uploads, where
        elif parameter not in ("limit", "offset", "includefield"):
            assert found == set() or name.startswith("wildcard"), where


@pytest.mark.parametrize("parameter", AUDIT_PARAMETERS)
def test_injection_in_audit_search_parameters(region: Region, census: dict[str, int],
                                              parameter: str) -> None:
    """Text filters are compared as text: an injection finds nothing; the others (action,
    outcome, times, paging) refuse what they cannot use with a 400 naming the parameter."""
    city = region.city
    auditor = region.token("audit")
    everything = requests.get(city.url + "/api/audit", headers=auditor, timeout=30,
                              params={"limit": 1}).json()["total"]
    for name, value in INJECTIONS.items():
        answer = requests.get(city.url + "/api/audit", headers=auditor, timeout=60,
                              params={parameter: value})
        where = (parameter, name, answer.status_code, answer.text[:300])
        assert answer.status_code < 500 and not _injected(answer), where
        if answer.status_code != 200:
            _refusal_is_clear(answer, parameter)
            continue
        page = answer.json()
        assert parameter in ("operator", "patient", "study", "tenant", "unit"), where
        assert page["total"] == 0 and page["items"] == [], where
    assert requests.get(city.url + "/api/audit", headers=auditor, timeout=30,
                        params={"limit": 1}).json()["total"] >= everything


@pytest.mark.parametrize(("path", "parameters"), [("/api/jobs", JOB_PARAMETERS),
                                                  ("/api/quarantine", QUARANTINE_PARAMETERS)])
def test_injection_in_other_api_list_filters(region: Region, census: dict[str, int], path: str,
                                             parameters: Sequence[str]) -> None:
    city = region.city
    administrator = region.token("ta-city")
    everything = requests.get(city.url + path, headers=administrator, timeout=30).json()
    for parameter in parameters:
        for name, value in INJECTIONS.items():
            answer = requests.get(city.url + path, headers=administrator, timeout=60,
                                  params={parameter: value})
            where = (path, parameter, name, answer.status_code, answer.text[:300])
            assert answer.status_code < 500 and not _injected(answer), where
            if answer.status_code != 200:
                _refusal_is_clear(answer, parameter)
                continue
            page = answer.json()
            assert page["total"] <= everything["total"], where
            if parameter not in ("limit", "offset"):
                assert page["total"] == 0, where


def test_after_the_injections_the_databases_and_the_archive_are_intact(
        region: Region, city_uploads: set[str], census: dict[str, int]) -> None:
    """Runs after the injection tests (file order): every table of both databases is there,
    no search changed a row of the control tables, and the archive still answers searches
    and the API."""
    with sqlite3.connect(region.control, timeout=30) as control:
        tables = {row[0] for row in control.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert set(ControlBase.metadata.tables) <= tables, set(ControlBase.metadata.tables) - tables
    assert _census(region.control) == census
    state = region.city.stack.state_dir / "tenant-default.sqlite"
    with sqlite3.connect(state, timeout=30) as tenant:
        tables = {row[0] for row in tenant.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert tenant.execute("SELECT count(*) FROM jobs").fetchone()[0] > 0
    assert set(StateBase.metadata.tables) <= tables, set(StateBase.metadata.tables) - tables
    found = requests.get(region.city.url + "/dicom-web/studies", headers=region.token("clin"),
                         timeout=30)
    assert found.status_code == 200 and _study_uids(found.json()) == city_uploads
    listed = requests.get(region.city.url + "/api/users", headers=region.token("admin"),
                          timeout=30)
    assert listed.status_code == 200 and set(USERS) <= {u["username"] for u in listed.json()}
    assert region.city.stack.wait_healthy()["status"] == "ok"


# --- the audit trail of the matrix --------------------------------------------------------


def _run_door_log_job(site: Site) -> dict[str, Any]:
    """``audit.door-log`` run by the archive's worker, as its schedule does every minute."""
    admin = region_admin_headers(site)
    made = requests.post(site.url + "/api/jobs", headers=admin, timeout=30,
                         json={"kind": "audit.door-log", "params": {}})
    assert made.status_code == 201, made.text
    deadline = time.monotonic() + 60
    job: dict[str, Any] = made.json()
    while job["state"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.2)
        job = requests.get(f"{site.url}/api/jobs/{job['id']}", headers=admin, timeout=30).json()
    assert job["state"] == "succeeded", job
    return job


def _close_open_windows(site: Site, control: Path) -> None:
    """The tailer the job runs, with a clock ten minutes ahead: the 5-minute windows of the
    matrix's views and downloads close now rather than a minute after they end."""
    engine = make_engine(f"sqlite:///{control}")
    orthanc = SyncOrthanc(site.stack.orthanc_url, InternalCredential(*site.stack.orthanc_auth))
    try:
        tailer = DoorLogTailer(
            AuditLog(engine, load_or_create_key(key_path(site.stack.state_dir))),
            site.stack.data_dir / "logs" / LOG_FILE, resolve=orthanc_patients(orthanc),
            name=f"{site.tenant}:door-audit",
            clock=lambda: datetime.now(timezone.utc) + timedelta(minutes=10))
        for _ in range(20):
            report = tailer.run()
            if report.at_end and not report.raced and report.pending == 0:
                return
        raise AssertionError(f"the door log of {site.name} did not close: {report}")
    finally:
        orthanc.close()
        engine.dispose()


def _every_row(site: Site, headers: Mapping[str, str]) -> list[dict[str, Any]]:
    """Every row the caller may read, through /api/audit, page by page."""
    rows: dict[int, dict[str, Any]] = {}
    offset = 0
    while True:
        page = requests.get(site.url + "/api/audit", headers=dict(headers), timeout=60,
                            params={"limit": 1000, "offset": offset}).json()
        rows.update({row["id"]: row for row in page["items"]})
        offset += len(page["items"])
        if not page["items"] or offset >= page["total"]:
            return sorted(rows.values(), key=lambda row: int(row["id"]))


@pytest.fixture(scope="module")
def trail(region: Region, matrix: Matrix) -> list[dict[str, Any]]:
    """The audit trail once the matrix ran and the door's log was folded in."""
    for site in region.sites.values():
        log = site.stack.data_dir / "logs" / LOG_FILE
        written = log.stat().st_size
        _run_door_log_job(site)
        # The worker read the whole log (this run or its schedule's), and keeps the windows
        # that are still open in the control database.
        with sqlite3.connect(region.control, timeout=30) as control:
            offset, pending = control.execute(
                "SELECT offset, pending FROM audit_door_log WHERE name = ?",
                (f"{site.tenant}:door-audit",)).fetchone()
        assert offset >= written and json.loads(pending), (site.name, offset, written)
        _close_open_windows(site, region.control)
    return _every_row(region.city, region.token("audit"))


def _outcome(status: int) -> str:
    return "denied" if status in (401, 403) else "failure" if status >= 400 else "success"


def _door_counts(matrix: Matrix, site: Site, caller: str,
                 endpoints: Sequence[str]) -> dict[str, int]:
    """Requests of ``caller`` at ``site`` on ``endpoints``, by audit outcome."""
    counts: dict[str, int] = {}
    for endpoint in endpoints:
        outcome = _outcome(matrix[(site.name, endpoint, caller)].status)
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts


def _folded(trail: list[dict[str, Any]], action: str, site: Site, session: str | None,
            study: str | None) -> list[dict[str, Any]]:
    return [row for row in trail if row["action"] == action and row["tenant"] == site.tenant
            and row["session"] == session and row["studyUid"] == study
            and row["detail"].get("source") == "door-log"]


@pytest.mark.parametrize("site_name", ["city", "town"])
def test_views_and_downloads_are_folded_per_study_and_session(
        region: Region, matrix: Matrix, trail: list[dict[str, Any]], site_name: str) -> None:
    """Every view and download of the matrix is counted in a row of its session and study,
    allowed or refused, with who, the patient and the address; a session's requests of one
    study in one 5-minute window are one row."""
    site = region.sites[site_name]
    for name in CALLERS[1:]:
        caller = region.callers[name]
        kind = "api-key" if name.startswith("key-") else "user"
        for action, endpoints in (("view", STUDY_VIEWS), ("download", STUDY_DOWNLOADS)):
            rows = _folded(trail, action, site, caller.session, site.study.uid)
            counted: dict[str, int] = {}
            for row in rows:
                counted[row["outcome"]] = counted.get(row["outcome"], 0) + row["detail"]["count"]
                where = (site.name, name, action, row)
                assert (row["actor"], row["actorKind"], row["sourceIp"]) == (
                    caller.actor, kind, LOOPBACK), where
                assert (row["patientId"], row["patientName"]) == (
                    site.study.patient_id, site.study.patient_name), where
            assert counted == _door_counts(matrix, site, name, endpoints), (site.name, name,
                                                                            action, rows)
            by_outcome = {row["outcome"] for row in rows}
            assert len(rows) <= 2 * len(by_outcome), rows  # at most two 5-minute windows
        searches = _folded(trail, "view", site, caller.session, None)
        assert sum(r["detail"]["count"] for r in searches) == 1, searches  # qido-studies
    anonymous = _folded(trail, "view", site, None, site.study.uid)
    assert {r["actor"] for r in anonymous} == {"anonymous"}
    assert sum(r["detail"]["count"] for r in anonymous if r["outcome"] == "denied") >= len(
        STUDY_VIEWS)


def _resource(site: Site, endpoint: str) -> str:
    """How an access-denied row names the request: the door's check names the URI as sent,
    the API the path."""
    path = ENDPOINTS[endpoint].url_path(site)
    return f"{ENDPOINTS[endpoint].method} {path if endpoint in DOOR_AREAS else path.split('?')[0]}"


@pytest.mark.parametrize("site_name", ["city", "town"])
def test_refusals_are_recorded_with_who_where_and_what(
        region: Region, matrix: Matrix, trail: list[dict[str, Any]], site_name: str) -> None:
    """Each 403 of the matrix is an access-denied row of the caller's credential, this
    archive's tenant and the request: every one at the API; at the door the first of each area,
    and of the others at least none more than were refused (the door keeps a refusal of a GET
    for AuthCacheSeconds; its log counts every request, see the test above)."""
    site = region.sites[site_name]
    for name in CALLERS[1:]:
        caller = region.callers[name]
        refused = [e for e in ENDPOINTS if matrix[(site.name, e, name)].status == 403
                   and (e in DOOR_AREAS or e in API_CHECKED)]
        rows = [row for row in trail if row["action"] == "access-denied"
                and row["session"] == caller.session and row["tenant"] == site.tenant]
        recorded = [row["resource"] for row in rows]
        where = (site.name, name, recorded)
        assert set(recorded) <= {_resource(site, e) for e in refused}, where
        for endpoint in refused:
            if endpoint in API_CHECKED or ENDPOINTS[endpoint].method == "POST":
                assert recorded.count(_resource(site, endpoint)) == 1, (endpoint, where)
        for area in set(DOOR_AREAS.values()):
            in_area = [e for e in refused if DOOR_AREAS.get(e) == area]
            if in_area:
                assert _resource(site, in_area[0]) in recorded, (area, where)
                assert sum(recorded.count(_resource(site, e)) for e in in_area) <= len(in_area)
        for row in rows:
            assert (row["actor"], row["outcome"], row["sourceIp"]) == (
                caller.actor, "denied", LOOPBACK), row
            assert row["detail"]["reason"] == "forbidden" and row["detail"]["permission"], row


def test_logins_failures_and_uploads_are_recorded(region: Region, matrix: Matrix,
                                                  trail: list[dict[str, Any]]) -> None:
    for username in USERS:
        caller = region.callers[username]
        [login] = [row for row in trail if row["action"] == "login"
                   and row["session"] == caller.session]
        assert (login["actor"], login["outcome"], login["tenant"], login["sourceIp"],
                login["detail"]["via"]) == (username, "success", "default", LOOPBACK, "token")
    failed = [row for row in trail if row["action"] == "login-failed" and row["actor"] == "clin"
              and row["tenant"] == "zhen"]
    assert failed and {(r["outcome"], r["sourceIp"]) for r in failed} == {("failure", LOOPBACK)}
    for site in region.sites.values():
        for name in CALLERS[1:]:
            caller = region.callers[name]
            uploads = [row for row in trail if row["action"] == "upload"
                       and row["session"] == caller.session and row["tenant"] == site.tenant]
            stored = matrix[(site.name, "stow", name)].status == 200
            assert len(uploads) == (1 if stored else 0), (site.name, name, uploads)
            for row in uploads:
                assert (row["actor"], row["outcome"], row["studyUid"], row["patientId"],
                        row["patientName"], row["sourceIp"], row["detail"]["count"]) == (
                    caller.actor, "success", site.uploads.uid, site.upload_patient.patient_id,
                    site.upload_patient.name, LOOPBACK, 1), row


def test_the_shared_chain_verifies_and_names_a_row_changed_in_the_database(
        region: Region, trail: list[dict[str, Any]]) -> None:
    """Both archives sign the one chain with the one key; a row changed behind the API's back
    is named by /api/audit/verify, at either archive."""
    auditor = region.token("audit")
    verdict = requests.get(region.town.url + "/api/audit/verify", headers=auditor,
                           timeout=60).json()
    assert verdict["ok"] is True and verdict["checked"] >= len(trail), verdict
    assert {"default", "zhen"} <= {row["tenant"] for row in trail}
    target = next(row for row in trail if row["action"] == "view" and row["tenant"] == "zhen")
    with sqlite3.connect(region.control, timeout=30) as control:
        control.execute("UPDATE audit_events SET patient_name = ? WHERE id = ?",
                        ("someone else", target["id"]))
    try:
        for site in region.sites.values():
            broken = requests.get(site.url + "/api/audit/verify", headers=auditor,
                                  timeout=60).json()
            assert (broken["ok"], broken["firstBadId"], broken["problem"]) == (
                False, target["id"], "changed"), broken
            assert f"row {target['id']}" in broken["message"]
    finally:
        with sqlite3.connect(region.control, timeout=30) as control:
            control.execute("UPDATE audit_events SET patient_name = ? WHERE id = ?",
                            (target["patientName"], target["id"]))
    mended = requests.get(region.city.url + "/api/audit/verify", headers=auditor,
                          timeout=60).json()
    assert mended["ok"] is True, mended


def test_an_archive_without_the_regions_audit_key_does_not_start(
        region: Region, tmp_path: Path) -> None:
    """A third archive pointed at the region's control database refuses to start without the
    key that signed the trail, or with a key of its own, before it writes a row."""
    head = requests.get(region.city.url + "/api/audit/verify", headers=region.token("audit"),
                        timeout=60).json()["headId"]
    village = Stack(tmp_path / "village", overrides=_overrides("cun", region.control, {}),
                    administrator=region_admin_headers(region.city)["Authorization"])
    with pytest.raises(StartupFailed):
        village.start()
    assert "is missing, but the audit trail" in village.log_text("launcher")
    load_or_create_key(key_path(village.state_dir))
    with pytest.raises(StartupFailed):
        village.start()
    assert "was not signed with" in village.log_text("launcher")
    with sqlite3.connect(region.control, timeout=30) as control:
        rows = control.execute("SELECT count(*) FROM audit_events WHERE tenant = 'cun'")
        assert rows.fetchone()[0] == 0
    assert requests.get(region.city.url + "/api/audit/verify", headers=region.token("audit"),
                        timeout=60).json()["headId"] >= head
