"""DICOM security on a real Orthanc (issue 8, 001 4.3): known AEs, their addresses, retrieves
and DICOM TLS, with the keys the launcher renders (``archive_door.orthanc_config.dicom_keys``)
and the modalities registered through the API's sync (``archive_api.modality_sync``).

Orthanc runs without our plugin (what is tested is Orthanc's own DICOM server under our keys),
on the platform ``ARCHIVE_PLATFORM`` names; the peers are DCMTK's storescu/findscu/movescu/
getscu/echoscu and pynetdicom (to call from another loopback address). Certificates are made
with openssl for each run: a test region CA, the archive's certificate, a site's client
certificate, and a stranger's signed by another CA.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage, Verification  # type: ignore[attr-defined]

from archive_api.modality_sync import ModalitySync
from archive_api.orthanc import AsyncOrthanc
from archive_config.settings import parse_settings
from archive_door.orthanc_config import dicom_keys
from archive_state.db import make_engine, migrate
from archive_state.modalities import ModalitySpec, ModalityStore, Operation
from archive_tools import synthetic
from archive_tools.synthetic import PatientInfo, StudyInfo
from testkit import dcmtk
from testkit import dicom_data as dd
from testkit.orthanc_process import DROP, OrthancProcess, Overrides

pytestmark = pytest.mark.integration

k = dcmtk.keys
ALL: frozenset[Operation] = frozenset(op for op in Operation)


# --- set-up: Orthanc with the launcher's DICOM keys, the store and its sync ---------------------

def orthanc_overrides(dicom: Mapping[str, Any]) -> Overrides:
    """The shipped orthanc.json without plugins, plus the DICOM keys of ``Archive.Dicom``."""
    settings = parse_settings({"Archive": {"StateDirectory": "/unused", "Viewer": {
        "Enabled": False}, "Dicom": dict(dicom)}}, "test").dicom
    return {"archive.json": DROP, "dicomweb.json": DROP,
            "orthanc.json": {"Plugins": [], "PythonScript": DROP, "PythonVerbose": DROP,
                             **dicom_keys(settings)}}


@dataclass
class Archive:
    """A running Orthanc and the tenant's modality store synced into it."""

    orthanc: OrthancProcess
    store: ModalityStore

    @property
    def port(self) -> int:
        return self.orthanc.dicom_port

    @property
    def aet(self) -> str:
        return self.orthanc.aet

    def register(self, name: str, aet: str, host: str = "127.0.0.1", port: int = 104,
                 operations: frozenset[Operation] = ALL) -> None:
        """Register through the store, then sync Orthanc as the API does after a change."""
        self.store.create(ModalitySpec(name=name, ae_title=aet, host=host, port=port,
                                       operations=operations), by="test")
        report = self.sync()
        assert report.ok and name in report.plan.put, report

    def sync(self) -> Any:
        async def reconcile() -> Any:
            orthanc = AsyncOrthanc(self.orthanc.url, None, timeout=10)
            try:
                return await ModalitySync(self.store, orthanc).reconcile()
            finally:
                await orthanc.aclose()
        return asyncio.run(reconcile())

    def modalities(self) -> dict[str, Any]:
        answer = requests.get(f"{self.orthanc.url}/modalities?expand", timeout=10)
        answer.raise_for_status()
        result: dict[str, Any] = answer.json()
        return result

    def has_instance(self, sop_instance_uid: str) -> bool:
        r = requests.post(f"{self.orthanc.url}/tools/lookup", data=sop_instance_uid, timeout=10)
        r.raise_for_status()
        return any(item.get("Type") == "Instance" for item in r.json())


def start_archive(workdir: Path, dicom: Mapping[str, Any]) -> Archive:
    url = f"sqlite:///{workdir / 'state.sqlite'}"
    workdir.mkdir(parents=True, exist_ok=True)
    migrate(url, "state")
    orthanc = OrthancProcess(workdir / "orthanc", overrides=orthanc_overrides(dicom),
                             ready_path="/system", ready_statuses=(200,))
    orthanc.start()
    return Archive(orthanc, ModalityStore(make_engine(url), "default"))


@dataclass(frozen=True)
class Instance:
    path: Path
    ds: Dataset

    @property
    def uid(self) -> str:
        return str(self.ds.SOPInstanceUID)

    @property
    def study(self) -> str:
        return str(self.ds.StudyInstanceUID)


def new_instance(folder: Path, seed: int) -> Instance:
    token = dd.unique_token()
    patient = PatientInfo("安全^测试", f"SEC-{token}", "19700101", "F")
    (ds,) = synthetic.ct_volume(1, 16, 16, patient=patient, study=StudyInfo(), seed=seed)
    folder.mkdir(parents=True, exist_ok=True)
    return Instance(synthetic.write_file(ds, folder / f"{token}.dcm"), ds)


def storescu(archive: Archive, aet: str, instance: Instance, *tls: str | Path) -> dcmtk.ToolResult:
    return dcmtk.run("storescu", "-v", *tls, "-aet", aet, "-aec", archive.aet, "127.0.0.1",
                     archive.port, instance.path, check=False, timeout=30)


def refused(result: dcmtk.ToolResult) -> bool:
    return result.returncode != 0


@pytest.fixture(scope="module")
def refusing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Archive]:
    """``Archive.Dicom.RefuseUnknownAe: true``."""
    archive = start_archive(tmp_path_factory.mktemp("refusing"), {"RefuseUnknownAe": True})
    try:
        yield archive
    finally:
        archive.orthanc.stop()


@pytest.fixture(scope="module")
def open_archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Archive]:
    """The default: unknown AEs may echo, store and find."""
    archive = start_archive(tmp_path_factory.mktemp("open"), {})
    try:
        yield archive
    finally:
        archive.orthanc.stop()


# --- RefuseUnknownAe on ---------------------------------------------------------------------

def test_unknown_ae_is_refused_everything(refusing: Archive, tmp_path: Path) -> None:
    instance = new_instance(tmp_path, 1)
    stored = storescu(refusing, "STRANGER", instance)
    assert refused(stored), stored.output
    assert "Association Rejected" in stored.output, stored.output
    assert not refusing.has_instance(instance.uid)
    found = dcmtk.run("findscu", "-S", "-aet", "STRANGER", "-aec", refusing.aet,
                      *k(QueryRetrieveLevel="STUDY", StudyInstanceUID=""), "127.0.0.1",
                      refusing.port, check=False)
    assert refused(found) and "Association Rejected" in found.output, found.output
    echo = dcmtk.run("echoscu", "-aet", "STRANGER", "-aec", refusing.aet, "127.0.0.1",
                     refusing.port, check=False)
    assert refused(echo), echo.output


def test_registered_ae_may_store_and_find(refusing: Archive, tmp_path: Path) -> None:
    refusing.register("ct-site-a", "CT_SITE_A",
                      operations=frozenset({Operation.ECHO, Operation.STORE, Operation.FIND}))
    instance = new_instance(tmp_path, 2)
    stored = storescu(refusing, "CT_SITE_A", instance)
    assert stored.returncode == 0, stored.output
    assert refusing.has_instance(instance.uid)
    found = dcmtk.run("findscu", "-v", "-S", "-aet", "CT_SITE_A", "-aec", refusing.aet,
                      *k(QueryRetrieveLevel="STUDY", StudyInstanceUID=instance.study),
                      "127.0.0.1", refusing.port)
    assert "Received Final Find Response (Success)" in found.output, found.output
    assert instance.study in found.output


def test_an_operation_not_allowed_is_refused(refusing: Archive, tmp_path: Path) -> None:
    refusing.register("us-echo-only", "US_ECHO_ONLY", operations=frozenset({Operation.ECHO}))
    dcmtk.run("echoscu", "-aet", "US_ECHO_ONLY", "-aec", refusing.aet, "127.0.0.1",
              refusing.port)
    instance = new_instance(tmp_path, 3)
    assert refused(storescu(refusing, "US_ECHO_ONLY", instance))
    assert not refusing.has_instance(instance.uid)


def associate_from(archive: Archive, address: str, aet: str) -> bool:
    ae = AE(ae_title=aet)
    ae.add_requested_context(Verification)
    ae.add_requested_context(CTImageStorage)
    assoc = ae.associate("127.0.0.1", archive.port, ae_title=archive.aet,
                         bind_address=(address, 0))
    if not assoc.is_established:
        return False
    try:
        status = assoc.send_c_echo()
        return bool(status) and int(status.Status) == 0
    finally:
        assoc.release()


def test_a_registered_ae_from_another_address_is_refused(refusing: Archive,
                                                         tmp_path: Path) -> None:
    refusing.register("mr-site-b", "MR_SITE_B", host="127.0.0.2")
    instance = new_instance(tmp_path, 4)
    stored = storescu(refusing, "MR_SITE_B", instance)  # from 127.0.0.1
    assert refused(stored), stored.output
    assert not refusing.has_instance(instance.uid)
    assert not associate_from(refusing, "127.0.0.1", "MR_SITE_B")
    assert associate_from(refusing, "127.0.0.2", "MR_SITE_B")


def test_move_only_to_a_known_destination(refusing: Archive, tmp_path: Path) -> None:
    refusing.register("ws-site-a", "WS_SITE_A")
    instance = new_instance(tmp_path / "data", 5)
    assert storescu(refusing, "WS_SITE_A", instance).returncode == 0
    query = k(QueryRetrieveLevel="STUDY", StudyInstanceUID=instance.study)
    unknown = dcmtk.run("movescu", "-v", "-S", "-aet", "WS_SITE_A", "-aec", refusing.aet,
                        "-aem", "NOWHERE", *query, "127.0.0.1", refusing.port, check=False)
    assert "Received Final Move Response (Failed" in unknown.output, unknown.output
    with dcmtk.StoreScp(tmp_path / "received", aet="WS_SITE_A_SCP") as scp:
        refusing.register("ws-site-a-scp", "WS_SITE_A_SCP", port=scp.port,
                          operations=frozenset())
        moved = dcmtk.run("movescu", "-v", "-S", "-aet", "WS_SITE_A", "-aec", refusing.aet,
                          "-aem", scp.aet, *query, "127.0.0.1", refusing.port)
        assert "Received Final Move Response (Success)" in moved.output, moved.output
        assert [dd.read(p).SOPInstanceUID for p in scp.received()] == [instance.uid]


def getscu(archive: Archive, aet: str, study: str, out: Path) -> dcmtk.ToolResult:
    out.mkdir(parents=True, exist_ok=True)
    return dcmtk.run("getscu", "-v", "-S", "-aet", aet, "-aec", archive.aet,
                     *k(QueryRetrieveLevel="STUDY", StudyInstanceUID=study), "-od", out,
                     "127.0.0.1", archive.port, check=False)


def test_get_only_by_an_ae_allowed_to(refusing: Archive, tmp_path: Path) -> None:
    refusing.register("ws-getter", "WS_GETTER")
    refusing.register("ct-no-get", "CT_NO_GET",
                      operations=frozenset({Operation.ECHO, Operation.STORE}))
    instance = new_instance(tmp_path / "data", 6)
    assert storescu(refusing, "CT_NO_GET", instance).returncode == 0
    for aet in ("STRANGER", "CT_NO_GET"):
        denied = getscu(refusing, aet, instance.study, tmp_path / aet)
        assert "Received C-GET Response (Success)" not in denied.output, denied.output
        assert list((tmp_path / aet).iterdir()) == []
    got = getscu(refusing, "WS_GETTER", instance.study, tmp_path / "getter")
    assert "Received C-GET Response (Success)" in got.output, got.output
    assert [dd.read(p).SOPInstanceUID for p in (tmp_path / "getter").iterdir()] == [instance.uid]


def test_sync_is_idempotent_and_removes_what_the_store_lacks(refusing: Archive) -> None:
    refusing.register("sync-check", "SYNC_CHECK")
    assert refusing.sync().plan.empty  # Orthanc lists the managed keys as we sent them
    r = requests.put(f"{refusing.orthanc.url}/modalities/behind-our-back",
                     json={"AET": "SNEAKY", "Host": "127.0.0.1", "Port": 104}, timeout=10)
    assert r.status_code == 200, r.text
    report = refusing.sync()
    assert report.plan.delete == ("behind-our-back",) and report.ok
    assert "behind-our-back" not in refusing.modalities()
    assert set(refusing.modalities()) == {m.name for m in refusing.store.list()}


def test_registrations_survive_an_orthanc_restart(tmp_path: Path) -> None:
    archive = start_archive(tmp_path, {"RefuseUnknownAe": True})
    try:
        archive.register("ct-restart", "CT_RESTART")
        archive.orthanc.stop()
        archive.orthanc.start()  # same data folder: DicomModalitiesInDatabase keeps them
        assert "ct-restart" in archive.modalities()
        instance = new_instance(tmp_path / "data", 7)
        stored = storescu(archive, "CT_RESTART", instance)
        assert stored.returncode == 0, stored.output
        assert archive.sync().plan.empty
    finally:
        archive.orthanc.stop()


# --- RefuseUnknownAe off (the default) --------------------------------------------------------

def test_unknown_ae_may_store_but_not_get_nor_move(open_archive: Archive,
                                                   tmp_path: Path) -> None:
    instance = new_instance(tmp_path / "data", 8)
    stored = storescu(open_archive, "ANY_CLINIC", instance)
    assert stored.returncode == 0, stored.output
    assert open_archive.has_instance(instance.uid)
    got = getscu(open_archive, "ANY_CLINIC", instance.study, tmp_path / "got")
    assert "Received C-GET Response (Success)" not in got.output, got.output
    assert list((tmp_path / "got").iterdir()) == []
    with dcmtk.StoreScp(tmp_path / "received", aet="KNOWN_DEST") as scp:
        open_archive.register("known-dest", "KNOWN_DEST", port=scp.port, operations=frozenset())
        moved = dcmtk.run("movescu", "-v", "-S", "-aet", "ANY_CLINIC", "-aec", open_archive.aet,
                          "-aem", scp.aet, *k(QueryRetrieveLevel="STUDY",
                                              StudyInstanceUID=instance.study),
                          "127.0.0.1", open_archive.port, check=False)
        assert "Received Final Move Response (Success)" not in moved.output, moved.output
        assert scp.received() == []
    open_archive.register("ws-open", "WS_OPEN")
    got = getscu(open_archive, "WS_OPEN", instance.study, tmp_path / "registered")
    assert "Received C-GET Response (Success)" in got.output, got.output


# --- DICOM TLS ------------------------------------------------------------------------------

def openssl(*args: str | Path, cwd: Path) -> None:
    subprocess.run(["openssl", *(str(a) for a in args)], cwd=cwd, check=True,
                   capture_output=True, timeout=60)


def make_ca(folder: Path, name: str) -> None:
    openssl("req", "-x509", "-newkey", "rsa:3072", "-nodes", "-sha256", "-days", "2",
            "-subj", f"/CN={name}", "-keyout", f"{name}.key", "-out", f"{name}.crt", cwd=folder)


def make_certificate(folder: Path, name: str, ca: str) -> None:
    openssl("req", "-newkey", "rsa:3072", "-nodes", "-sha256", "-subj", f"/CN={name}",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=folder)
    # as docs/dicom-security.md makes them: usable by a server and by a client
    (folder / f"{name}.ext").write_text("subjectAltName = IP:127.0.0.1\n"
                                        "extendedKeyUsage = serverAuth, clientAuth\n")
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-days", "2", "-sha256", "-extfile", f"{name}.ext",
            "-out", f"{name}.crt", cwd=folder)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("pki")
    make_ca(folder, "region-ca")
    make_certificate(folder, "archive", "region-ca")
    make_certificate(folder, "site-b", "region-ca")
    make_ca(folder, "other-ca")
    make_certificate(folder, "stranger", "other-ca")
    return folder


@pytest.fixture(scope="module")
def tls_archive(tmp_path_factory: pytest.TempPathFactory,
                certificates: Path) -> Iterator[Archive]:
    archive = start_archive(tmp_path_factory.mktemp("tls"), {"Tls": {
        "Enabled": True, "Certificate": str(certificates / "archive.crt"),
        "PrivateKey": str(certificates / "archive.key"),
        "TrustedCertificates": str(certificates / "region-ca.crt")}})
    try:
        yield archive
    finally:
        archive.orthanc.stop()


def test_tls_client_with_a_trusted_certificate_is_accepted(tls_archive: Archive,
                                                           certificates: Path,
                                                           tmp_path: Path) -> None:
    instance = new_instance(tmp_path, 9)
    stored = storescu(tls_archive, "SITE_B", instance,
                      "+tls", certificates / "site-b.key", certificates / "site-b.crt",
                      "+cf", certificates / "region-ca.crt")
    assert stored.returncode == 0, stored.output
    assert tls_archive.has_instance(instance.uid)


def test_plain_tcp_is_refused_when_tls_is_on(tls_archive: Archive, tmp_path: Path) -> None:
    instance = new_instance(tmp_path, 10)
    stored = storescu(tls_archive, "SITE_B", instance)
    assert refused(stored), stored.output
    assert not tls_archive.has_instance(instance.uid)


def test_tls_client_of_another_ca_is_refused(tls_archive: Archive, certificates: Path,
                                             tmp_path: Path) -> None:
    instance = new_instance(tmp_path, 11)
    stored = storescu(tls_archive, "STRANGER", instance,
                      "+tls", certificates / "stranger.key", certificates / "stranger.crt",
                      "+cf", certificates / "region-ca.crt")
    assert refused(stored), stored.output
    assert not tls_archive.has_instance(instance.uid)
