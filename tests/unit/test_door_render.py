"""The launcher's run folder: Orthanc's enforced keys, nginx.conf (checked by nginx -t), the
supervisord configuration (parsed by supervisor's own parser), ports, credential, atomic swap."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from archive_config.config_check import Configuration, load
from archive_config.errors import ConfigError
from archive_door import credential
from archive_door.errors import AlreadyRunning
from archive_door.launcher import check_not_running, door_urls, environment, prepare
from archive_door.layout import REPO, Executables, Layout
from archive_door.nginx import (PROBLEMS, REQUEST_LINE_ERRORS, dicomweb_area_rules,
                                problem_location, qido_pattern, stow_pattern)
from archive_door.ports import check_ports
from archive_door.render import Rendered, render_run_folder
from testkit.orthanc_process import deep_merge, render_config

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def _configuration(tmp_path: Path, overrides: Mapping[str, Mapping[str, Any]] | None = None) -> tuple[Configuration, dict[str, str]]:
    config = render_config(tmp_path / "config", overrides or {})
    env = environment(tmp_path / "data", None, {"PATH": os.environ.get("PATH", "")})
    return load(config, env), env


def _render(tmp_path: Path, overrides: Mapping[str, Mapping[str, Any]] | None = None,
            console: Path | None = None) -> Rendered:
    configuration, env = _configuration(tmp_path, overrides)
    layout = Layout(home=REPO, data=tmp_path / "data", state=Path(configuration.archive.state_directory))
    made = credential.ensure(layout.credential)
    return render_run_folder(configuration, env, layout, made, Executables.from_environment(env),
                             console_build=console or tmp_path / "no-console")


def _door(https: Mapping[str, Any] | None = None, **door: Any) -> dict[str, Any]:
    section: dict[str, Any] = dict(door)
    if https is not None:
        section["Https"] = dict(https)
    return {"archive.json": {"Archive": {"Door": section}}}


def _nginx_t(layout: Layout) -> subprocess.CompletedProcess[str]:
    return subprocess.run([NGINX, "-t", "-p", f"{layout.run}/", "-c", str(layout.nginx_conf),
                           "-e", "stderr"], capture_output=True, text=True, timeout=60)


def _locations(routes: str) -> list[str]:
    return re.findall(r"^location\s+(.+?)\s*\{", routes, re.M)


# --- the run folder -------------------------------------------------------------------------


def test_run_folder_holds_the_rendered_set(tmp_path: Path) -> None:
    layout = _render(tmp_path).layout
    run = layout.run
    names = {p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file()}
    assert {"orthanc/orthanc.json", "orthanc/archive.json", "orthanc/dicomweb.json", "nginx.conf",
            "nginx-routes.conf", "supervisord.conf", "ohif/index.html", "ohif/app-config.js"} <= names
    assert not (run / "tls").exists()
    # What holds the internal credential is private.
    for private in ("nginx.conf", "nginx-routes.conf", "orthanc/orthanc.json"):
        assert stat.S_IMODE((run / private).stat().st_mode) == 0o600, private
    assert stat.S_IMODE(layout.credential.stat().st_mode) == 0o600
    assert not [p for p in layout.data.iterdir() if p.name.startswith(".run-")]


def test_re_render_replaces_the_folder_whole(tmp_path: Path) -> None:
    layout = _render(tmp_path).layout
    (layout.run / "stale-file").write_text("from an older version")
    _render(tmp_path, _door(HttpPort=9000))
    assert not (layout.run / "stale-file").exists()
    assert "listen 127.0.0.1:9000;" in layout.nginx_conf.read_text()
    assert not [p for p in layout.data.iterdir() if p.name.startswith(".run-")]


def test_a_failed_render_leaves_the_previous_folder(tmp_path: Path) -> None:
    layout = _render(tmp_path).layout
    before = layout.nginx_conf.read_text()
    bad = {"archive.json": {"Archive": {"Viewer": {"AppConfig": str(tmp_path / "missing.js")}}}}
    with pytest.raises(ConfigError, match="Archive.Viewer.AppConfig"):
        _render(tmp_path, bad)
    assert layout.nginx_conf.read_text() == before
    assert not [p for p in layout.data.iterdir() if p.name.startswith(".run-")]


def test_orthanc_configuration_is_expanded_and_enforced(tmp_path: Path) -> None:
    users = {"orthanc.json": {"RegisteredUsers": {"alice": "pw"}, "HttpCompressionEnabled": True,
                              "RemoteAccessAllowed": True, "AuthenticationEnabled": False}}
    layout = _render(tmp_path, users).layout
    rendered = load(layout.orthanc_config)  # Orthanc's merge rules hold: no key twice
    orthanc = rendered.orthanc
    made = credential.load(layout.credential)
    assert orthanc["HttpPort"] == 18042  # the internal port, as configured
    assert orthanc["RemoteAccessAllowed"] is False
    assert orthanc["AuthenticationEnabled"] is True
    assert orthanc["HttpCompressionEnabled"] is False
    assert orthanc["RegisteredUsers"] == {"alice": "pw", made.username: made.password}
    assert orthanc["PythonScript"] == f"{REPO}/orthanc-plugins/entry.py"
    assert "/usr/share/orthanc/plugins/libOrthancDicomWeb.so" in orthanc["Plugins"]
    assert rendered.archive.state_directory == str(tmp_path / "data" / "state")
    text = "".join(p.read_text() for p in layout.orthanc_config.iterdir())
    assert "${" not in text


def test_internal_credential_is_made_once(tmp_path: Path) -> None:
    path = tmp_path / "state" / "internal-credential.json"
    first = credential.ensure(path)
    assert credential.ensure(path) == first
    assert len(first.password) >= 32
    assert json.loads(path.read_text()) == {"username": first.username, "password": first.password}
    assert first.basic_authorization().startswith("Basic ")
    assert credential.ensure(tmp_path / "other.json").password != first.password


# --- ports ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "key", "other"),
    [
        ({"orthanc.json": {"HttpPort": 8042}}, "Archive.Door.HttpPort", "HttpPort"),
        ({"archive.json": {"Archive": {"Api": {"Port": 4242}}}}, "Archive.Api.Port", "DicomPort"),
        ({"archive.json": {"Archive": {"Api": {"Port": 18042}}}}, "Archive.Api.Port", "HttpPort"),
        (_door({"Enabled": True, "Port": 8042}), "Archive.Door.Https.Port", "Archive.Door.HttpPort"),
    ],
)
def test_a_port_clash_names_both_keys(tmp_path: Path, overrides: Mapping[str, Mapping[str, Any]],
                                      key: str, other: str) -> None:
    configuration, _env = _configuration(tmp_path, overrides)
    with pytest.raises(ConfigError) as caught:
        check_ports(configuration.orthanc, configuration.archive)
    assert caught.value.key == key
    assert other in str(caught.value)


def test_https_port_counts_only_when_https_is_on(tmp_path: Path) -> None:
    configuration, _env = _configuration(tmp_path, _door({"Enabled": False, "Port": 8042}))
    assert "Archive.Door.Https.Port" not in check_ports(configuration.orthanc, configuration.archive)


def test_cli_stops_with_exit_2_naming_the_key_before_anything_runs(tmp_path: Path) -> None:
    config = render_config(tmp_path / "config", {"orthanc.json": {"HttpPort": 8042}})
    result = subprocess.run([sys.executable, "-m", "archive_door", "run", "--config", str(config),
                             "--data", str(tmp_path / "data")], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2, result.stderr
    assert "Archive.Door.HttpPort" in result.stderr and "HttpPort" in result.stderr
    assert not (tmp_path / "data" / "run").exists()
    assert not (tmp_path / "data" / "state" / "internal-credential.json").exists()


# --- nginx ----------------------------------------------------------------------------------


def test_nginx_accepts_the_rendered_configuration(tmp_path: Path) -> None:
    layout = _render(tmp_path).layout
    result = _nginx_t(layout)
    assert result.returncode == 0, result.stderr


def test_nginx_accepts_https_with_a_generated_certificate_that_survives(tmp_path: Path) -> None:
    rendered = _render(tmp_path, _door({"Enabled": True, "RedirectHttp": True}))
    layout = rendered.layout
    assert rendered.certificate is not None
    assert _nginx_t(layout).returncode == 0, _nginx_t(layout).stderr
    conf = layout.nginx_conf.read_text()
    assert "listen 127.0.0.1:8443 ssl http2;" in conf
    assert f"ssl_certificate {layout.tls / 'door.crt'};" in conf
    assert "return 301 https://$host:8443$request_uri;" in conf
    kept = (layout.generated_tls / "door.crt").read_bytes()
    assert (layout.tls / "door.crt").read_bytes() == kept
    assert stat.S_IMODE((layout.tls / "door.key").stat().st_mode) == 0o600
    text = subprocess.run(["openssl", "x509", "-noout", "-text", "-in", str(layout.tls / "door.crt")],
                          capture_output=True, text=True, check=True).stdout
    assert "DNS:localhost" in text and "IP Address:127.0.0.1" in text
    _render(tmp_path, _door({"Enabled": True}))
    assert (layout.tls / "door.crt").read_bytes() == kept  # not made again
    assert "return 301 https" not in layout.nginx_conf.read_text()


def test_https_with_half_a_certificate_names_the_missing_key(tmp_path: Path) -> None:
    cert = tmp_path / "given.crt"
    cert.write_text("x")
    with pytest.raises(ConfigError, match="Archive.Door.Https.KeyFile"):
        _render(tmp_path, _door({"Enabled": True, "CertificateFile": str(cert)}))


def test_routes_expose_only_what_the_door_serves(tmp_path: Path) -> None:
    layout = _render(tmp_path).layout
    routes = layout.nginx_routes.read_text()
    allowed = {"= /_door/auth", "= /api/auth/check", "^~ /dicom-web/", "= /wado", "^~ /api/",
               "^~ /fhir/", "= /ohif", "= /ohif/app-config.js", "= /ohif/index.html", "^~ /ohif/",
               "@ohif-index", "^~ /ui/", "= /", "= /door-health", "/", "= /_door/stow",
               "^~ /_door/qido/", "^~ /orthanc/", "= /orthanc", "@door-login",
               *(f"@door-{status}" for status in PROBLEMS if status not in REQUEST_LINE_ERRORS),
               *(f"= /_door/problem/{status}" for status in REQUEST_LINE_ERRORS)}
    assert set(_locations(routes)) == allowed
    # Orthanc is reached from three locations only, all with the internal credential: DICOMweb,
    # WADO-URI and, for administrators, /orthanc/.
    made = credential.load(layout.credential)
    assert routes.count("proxy_pass http://orthanc;") == 3
    assert routes.count(f'proxy_set_header Authorization "{made.basic_authorization()}";') == 3
    assert 'if ($request_method !~ ^(?:GET|HEAD|POST)$)' in routes
    assert "client_max_body_size 4g;" in routes and "proxy_request_buffering off;" in routes
    assert "auth_request /_door/auth;" in routes
    assert "proxy_cache_valid 204 5s;" in routes
    # No cache lock: its waiters are woken only by a 500 ms poll (docs/decisions.md).
    assert "proxy_cache_lock off;" in routes and "proxy_cache_lock on;" not in routes
    assert ('proxy_cache_key "$cookie_archive_session|$http_authorization|$http_x_api_key|'
            '$door_area|$door_tenant|$request_method";') in routes
    # Each location that the check guards names its area; the API and the console's files
    # are not guarded by the door (the API authorizes each of its routes).
    assert _location_body(routes, "^~ /orthanc/").count("set $door_area orthanc-admin;") == 1
    assert "set $door_area $door_dicomweb_area;" in _location_body(routes, "^~ /dicom-web/")
    # A backslash or a nested encoding in a DICOMweb path never reaches Orthanc (which would
    # read "..\\" as a step up): 400 before the check.
    dicomweb = _location_body(routes, "^~ /dicom-web/")
    assert 'if ($uri ~ "[\\x5c%]") {\n        return 400;' in dicomweb
    assert dicomweb.index("return 400;") < dicomweb.index("set $door_area")
    assert "set $door_area $door_wado_area;" in _location_body(routes, "= /wado")
    assert "set $door_area viewer;" in _location_body(routes, "^~ /ohif/")
    assert "error_page 401 @door-login;" in _location_body(routes, "^~ /ohif/")
    # nginx's own errors before a request has a URI reach their problem by URI, internally.
    for status in REQUEST_LINE_ERRORS:
        assert f"error_page {status} {problem_location(status)};" in routes
        assert "internal;" in _location_body(routes, f"= /_door/problem/{status}")
    for public in ("^~ /api/", "^~ /fhir/", "^~ /ui/", "= /door-health"):
        assert "auth_request off;" in _location_body(routes, public), public
    assert 'set $door_tenant "default";' in routes
    # STOW-RS goes to the API service, streamed, with the client's URI.
    stow = routes[routes.index("location = /_door/stow {"):]
    stow = stow[:stow.index("\n}")]
    assert "internal;" in stow and "proxy_pass http://api$request_uri;" in stow
    assert "proxy_request_buffering off;" in stow and "client_max_body_size 4g;" in stow
    assert "Authorization" not in stow  # the internal credential is for Orthanc only
    assert "if ($door_stow) {\n        rewrite ^ /_door/stow last;" in routes
    # QIDO-RS searches go to the API's search route, with the client's query string.
    qido = routes[routes.index("location ^~ /_door/qido/ {"):]
    qido = qido[:qido.index("\n}")]
    assert "internal;" in qido and "proxy_pass http://api/api/dicom-web/;" in qido
    assert "Authorization" not in qido
    assert "rewrite ^/dicom-web/(.*)$ /_door/qido/$1 last;" in routes
    conf = layout.nginx_conf.read_text()
    assert "server 127.0.0.1:18042;" in conf and "server 127.0.0.1:18043;" in conf
    gzip_types = re.search(r"gzip_types([^;]*);", conf)
    assert gzip_types is not None
    types = set(gzip_types.group(1).split())
    assert {"application/json", "application/dicom+json", "application/javascript", "text/css"} <= types
    assert not types & {"application/dicom", "application/octet-stream", "multipart/related",
                        "image/jpeg", "image/png", "image/jp2"}
    assert "HttpCompressionEnabled" not in conf  # nginx does not rely on Orthanc's gzip
    assert f"access_log {layout.logs}/door-access.log door;" in conf


def _location_body(routes: str, name: str) -> str:
    start = routes.index(f"location {name} {{")
    return routes[start:routes.index("\n}", start)]


def test_security_off_lets_everything_through(tmp_path: Path) -> None:
    overrides = {"archive.json": {"Archive": {"Security": {"Enabled": False}}}}
    layout = _render(tmp_path, overrides).layout
    routes = layout.nginx_routes.read_text()
    assert "auth_request /_door/auth;" not in routes
    assert "# Archive.Security.Enabled is false" in routes
    assert _nginx_t(layout).returncode == 0


@pytest.mark.parametrize(("line", "area"), [
    ("GET /dicom-web/studies", "dicomweb-view"),
    ("HEAD /dicom-web/studies", "dicomweb-view"),
    ("GET /dicom-web/studies/1.2.3/series", "dicomweb-view"),
    ("GET /dicom-web/studies/1.2.3/metadata", "dicomweb-view"),
    ("GET /dicom-web/studies/1.2.3/series/1.4/metadata", "dicomweb-view"),
    ("GET /dicom-web/studies/1.2.3/series/1.4/instances/1.5/frames/1,2", "dicomweb-view"),
    ("GET /dicom-web/studies/1.2.3/series/1.4/instances/1.5/rendered", "dicomweb-view"),
    ("GET /dicom-web/studies/1.2.3/series/1.4/thumbnail", "dicomweb-view"),
    ("GET /dicom-web/studies/1.2.3/series/1.4/instances/1.5/bulk/00420011", "dicomweb-view"),
    ("GET /dicom-web/studies/1.2.3", "dicomweb-download"),
    ("GET /dicom-web/studies/1.2.3/series/1.4", "dicomweb-download"),
    ("GET /dicom-web/studies/1.2.3/series/1.4/instances/1.5", "dicomweb-download"),
    ("GET /dicom-web/studies/metadata", "dicomweb-download"),
    ("POST /dicom-web/studies", "dicomweb-upload"),
    ("POST /dicom-web/studies/1.2.3", "dicomweb-upload"),
    ("GET /dicom-web/servers", "orthanc-admin"),
    ("POST /dicom-web/servers/pacs/stow", "orthanc-admin"),
    ("POST /dicom-web/studies/1.2.3/series", "orthanc-admin"),
    ("GET /dicom-web/serversx", "dicomweb-download"),
])
def test_dicomweb_areas_first_match_wins(line: str, area: str) -> None:
    matched = [a for pattern, a in dicomweb_area_rules("/dicom-web/") if re.search(pattern, line)]
    assert (matched[0] if matched else "dicomweb-download") == area


def test_routes_follow_the_configuration(tmp_path: Path, ) -> None:
    overrides = deep_merge(_door(AuthCacheSeconds=0, MaxUploadSize="100m", ListenAddress="0.0.0.0"),
                           {"archive.json": {"Archive": {"Viewer": {"Enabled": False}}},
                            "dicomweb.json": {"DicomWeb": {"Root": "/dw/"}}})
    layout = _render(tmp_path, overrides).layout
    routes = layout.nginx_routes.read_text()
    assert "proxy_cache off;" in routes and "proxy_cache door_auth;" not in routes
    assert "client_max_body_size 100m;" in routes
    assert "location ^~ /dw/ {" in routes and "/dicom-web/" not in _locations(routes)
    assert not [loc for loc in _locations(routes) if "ohif" in loc]
    assert "listen 0.0.0.0:8042;" in layout.nginx_conf.read_text()
    assert f'"~{stow_pattern("/dw/")}"  1;' in layout.nginx_conf.read_text()
    assert _nginx_t(layout).returncode == 0


@pytest.mark.parametrize(("line", "stow"), [
    ("POST /dicom-web/studies", True),
    ("POST /dicom-web/studies/", True),
    ("POST /dicom-web/studies/1.2.840.99.1", True),
    ("POST /dicom-web/studies/1.2.840.99.1/", True),
    ("GET /dicom-web/studies", False),
    ("HEAD /dicom-web/studies/1.2.3", False),
    ("POST /dicom-web/studies/1.2.3/series", False),
    ("POST /dicom-web/studiesx", False),
    ("POST /dicom-webx/studies", False),
    ("POST /api/dicom-web/studies", False),
])
def test_stow_pattern_matches_only_stow_resources(line: str, stow: bool) -> None:
    # nginx's map runs PCRE; Python's re agrees on this subset (anchors, groups, classes).
    assert bool(re.search(stow_pattern("/dicom-web/"), line)) is stow


@pytest.mark.parametrize(("line", "qido"), [
    ("GET /dicom-web/studies", True),
    ("GET /dicom-web/series", True),
    ("GET /dicom-web/instances/", True),
    ("GET /dicom-web/studies/1.2.3/series", True),
    ("GET /dicom-web/studies/1.2.3/instances", True),
    ("GET /dicom-web/studies/1.2.3/series/1.2.3.4/instances", True),
    ("HEAD /dicom-web/studies", False),
    ("POST /dicom-web/studies", False),
    ("GET /dicom-web/studies/1.2.3", False),
    ("GET /dicom-web/studies/1.2.3/metadata", False),
    ("GET /dicom-web/studies/1.2.3/series/1.2.3.4", False),
    ("GET /dicom-web/studies/1.2.3/series/1.2.3.4/instances/1.5/frames/1", False),
    ("GET /dicom-web/studies/1.2.3/series/1.2.3.4/instances/1.5", False),
    ("GET /api/dicom-web/studies", False),
])
def test_qido_pattern_matches_only_the_search_resources(line: str, qido: bool) -> None:
    assert bool(re.search(qido_pattern("/dicom-web/"), line)) is qido


def test_console_build_is_served_when_present(tmp_path: Path) -> None:
    console = tmp_path / "console-dist"
    (console / "assets").mkdir(parents=True)
    (console / "index.html").write_text("<!doctype html><title>console</title>")
    layout = _render(tmp_path, console=console).layout
    routes = layout.nginx_routes.read_text()
    assert f"alias {console}/;" in routes and "install-console" not in routes
    assert _nginx_t(layout).returncode == 0
    missing = _render(tmp_path).layout.nginx_routes.read_text()
    assert "return 503" in missing and "scripts/install-console" in missing


# --- supervisord ----------------------------------------------------------------------------


def test_supervisord_configuration_parses_with_supervisors_own_parser(tmp_path: Path) -> None:
    from supervisor.datatypes import RestartUnconditionally
    from supervisor.options import ServerOptions

    layout = _render(tmp_path, {"archive.json": {"Archive": {"Jobs": {"Workers": 3}}}}).layout
    options = ServerOptions()
    options.realize(args=["-c", str(layout.supervisord_conf)])
    configs = {p.name: p for g in options.process_group_configs for p in g.process_configs}
    assert list(configs) == ["orthanc", "api", "worker-1", "worker-2", "worker-3", "door"]
    assert options.serverurl == f"unix://{layout.supervisor_socket}"
    assert options.server_configs[0]["file"] == str(layout.supervisor_socket)
    assert options.server_configs[0]["chmod"] == 0o700
    for name, program in configs.items():
        assert program.autorestart is RestartUnconditionally, name
        assert program.stdout_logfile == str(layout.logs / f"{name}.log")
        assert program.redirect_stderr
    # Archive.Dicom.Audit (on by default): the log lines the DICOM audit reads.
    assert configs["orthanc"].command == (
        f"/usr/sbin/Orthanc --verbose-generic --verbose-dicom {layout.orthanc_config}")
    assert configs["orthanc"].environment["TCP_NODELAY"] == "1"
    preload = [Path(p).name for p in configs["orthanc"].environment["LD_PRELOAD"].split()]
    assert preload == ["libarchive-thread-stack.so", "libarchive-charls-route.so",
                       "libarchive-quick-ack.so"]
    # Codecs' temporary files: a private folder, and every program's files private.
    assert configs["orthanc"].environment["TMPDIR"] == str(layout.orthanc_tmp)
    assert {name: program.umask for name, program in configs.items()} == dict.fromkeys(configs, 0o077)
    assert layout.orthanc_tmp.is_dir() and layout.orthanc_tmp.stat().st_mode & 0o777 == 0o700
    assert not list(layout.orthanc_tmp.iterdir())
    assert configs["orthanc"].environment["ARCHIVE_QUICKACK"] == "1"
    assert configs["worker-2"].command.endswith("--name worker-2")
    assert "-m archive_api --config " + str(layout.orthanc_config) in configs["api"].command
    assert configs["door"].command.endswith(f"-m archive_door nginx --run {layout.run} --nginx {NGINX}")
    assert options.environ_expansions["ENV_ARCHIVE_RUN"] == str(layout.run)
    assert options.environ_expansions["ENV_ARCHIVE_DATA"] == str(layout.data)
    # Stopping goes door, workers, api, Orthanc: supervisord stops the highest priority first.
    priorities = [configs[n].priority for n in configs]
    assert priorities == sorted(priorities)


def test_orthanc_command_comes_from_the_environment(tmp_path: Path) -> None:
    configuration, env = _configuration(tmp_path)
    env["ARCHIVE_ORTHANC"] = "/opt/x/orthanc-wrapper"
    layout = Layout(home=REPO, data=tmp_path / "data", state=Path(configuration.archive.state_directory))
    rendered = render_run_folder(configuration, env, layout, credential.ensure(layout.credential),
                                 Executables.from_environment(env), console_build=tmp_path / "none")
    assert rendered.programs[0].command[0] == "/opt/x/orthanc-wrapper"
    assert environment(tmp_path, "trixie", {})["ARCHIVE_ORTHANC"].endswith("scripts/orthanc-trixie")


# --- the launcher ---------------------------------------------------------------------------


@pytest.fixture
def listening_socket(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "data" / "run" / "supervisor.sock"
    path.parent.mkdir(parents=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)
    try:
        yield path
    finally:
        server.close()


def test_launcher_refuses_a_data_folder_whose_supervisord_answers(tmp_path: Path, listening_socket: Path) -> None:
    config = render_config(tmp_path / "config", {})
    with pytest.raises(AlreadyRunning):
        prepare(config, tmp_path / "data", base_env={"PATH": os.environ["PATH"]}, run_migrations=False)
    listening_socket.parent.joinpath("nginx.conf").write_text("kept")
    assert listening_socket.parent.joinpath("nginx.conf").read_text() == "kept"


def test_a_stale_socket_does_not_stop_the_launcher(tmp_path: Path) -> None:
    layout = Layout(home=REPO, data=tmp_path, state=tmp_path / "state")
    layout.run.mkdir()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.bind(str(layout.supervisor_socket))  # bound, never listening: a killed supervisord's
    check_not_running(layout)


def test_door_urls(tmp_path: Path) -> None:
    configuration, _env = _configuration(tmp_path, _door({"Enabled": True, "Port": 9443}, HttpPort=9080))
    assert door_urls(configuration.archive) == ["http://127.0.0.1:9080/", "https://127.0.0.1:9443/"]
    everywhere, _env = _configuration(tmp_path, _door(ListenAddress="0.0.0.0"))
    assert door_urls(everywhere.archive) == [f"http://{socket.gethostname()}:8042/",
                                             "http://127.0.0.1:8042/"]
