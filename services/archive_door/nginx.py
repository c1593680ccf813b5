"""nginx.conf for the door, from the packaged templates and the archive's settings.

What the door does and why is in ``docs/decisions.md`` ("The door and the process model"); the
rendered files say it again in comments, for the sysadmin who opens ``DATA/run/nginx.conf``.
"""

from __future__ import annotations

import json
import re
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from archive_config.settings import ArchiveSettings

from . import viewer as ohif
from .credential import Credential
from .layout import Layout
from .templating import indent, render, template
from .tls import CertificatePair

#: Problem details (RFC 9457) for the errors nginx answers itself.
PROBLEMS: Final[Mapping[int, tuple[str, str]]] = {
    400: ("Bad Request", "The door cannot read this request (its request line, a header or a "
          "cookie is malformed or too large)."),
    401: ("Unauthorized", "This request needs credentials."),
    403: ("Forbidden", "The credentials given do not allow this request."),
    404: ("Not Found", "There is no such resource on this archive."),
    405: ("Method Not Allowed", "This resource does not accept that method; see the Allow header."),
    413: ("Content Too Large", "The request body is larger than Archive.Door.MaxUploadSize."),
    414: ("URI Too Long", "The URL of the request, with its query, is longer than the door "
          "accepts (8 KiB): shorten the query."),
    500: ("Internal Server Error", "The door could not complete the request: the authorization "
          "check or a service failed. The details are in the log of the door."),
    502: ("Bad Gateway", "The archive service behind this path is not answering yet; try again "
          "shortly."),
    503: ("Service Unavailable", "The archive is not available right now; try again shortly."),
    504: ("Gateway Timeout", "The archive service behind this path did not answer in time."),
}

#: Errors nginx answers while it reads the request line, before the request has a URI (a
#: request line past 8 KiB, a path that climbs above the root): an error_page to a named location
#: fails there (nginx answers 500: "empty URI in redirect to named location"), so these go to
#: an internal location by its URI.
REQUEST_LINE_ERRORS: Final = frozenset({400, 414})


def problem_location(status: int) -> str:
    """Where ``error_page`` sends ``status``: ``@door-<status>``, or ``/_door/problem/<status>``
    for :data:`REQUEST_LINE_ERRORS`."""
    return f"/_door/problem/{status}" if status in REQUEST_LINE_ERRORS else f"@door-{status}"


_STATIC_CHARSET = (
    "charset utf-8;\n"
    "charset_types text/css text/plain text/xml application/javascript application/json "
    "application/manifest+json image/svg+xml;"
)

_ASSET_REGEX = r"\.(?:" + "|".join(ohif.ASSET_SUFFIXES) + ")$"


@dataclass(frozen=True)
class DoorFiles:
    nginx_conf: str
    routes_conf: str


def listen(address: str, port: int, extra: str = "") -> str:
    host = f"[{address}]" if ":" in address and not address.startswith("[") else address
    return f"listen {host}:{port}{' ' + extra if extra else ''};"


def user_directive(euid: int | None = None) -> str:
    """Workers run as the user who starts the door.

    nginx started by root would drop its workers to ``nobody``, who may not reach a data folder
    that is private to root (the default under ``/root`` or a 0700 temporary folder). Started as
    root, the whole archive runs as root (Orthanc too); production runs it as an unprivileged
    user instead (``python -m archive_door systemd --user``), and nginx then keeps that user.
    """
    euid = os.geteuid() if euid is None else euid
    if euid != 0:
        return "# Workers run as the user who started the door (no 'user' directive needed)."
    return ("# Started as root: the workers stay root, like the rest of the archive started so\n"
            "# (production runs everything as an unprivileged user: archive_door systemd --user).\n"
            "user root;")


def _problem_locations() -> str:
    lines: list[str] = []
    for status in PROBLEMS:
        lines.append(f"error_page {status} {problem_location(status)};")
    for status, (title, detail) in PROBLEMS.items():
        body = json.dumps({"type": "about:blank", "title": title, "status": status, "detail": detail},
                          ensure_ascii=True)
        assert "'" not in body and "$" not in body, body
        target = problem_location(status)
        lines += [
            "",
            f"location {'= ' if target.startswith('/') else ''}{target} {{",
            *(["    internal;"] if target.startswith("/") else []),
            "    auth_request off;",
            "    # Whatever the path's extension (/app/explorer.html), the body is JSON.",
            "    types { }",
            "    default_type application/problem+json;",
            '    add_header Cache-Control "no-store" always;',
        ]
        if status == 405:
            lines.append("    add_header Allow $door_allow always;")
        lines += [f"    return {status} '{body}';", "}"]
    return "\n".join(lines)


def _static_site(root: str, build: Path, name: str, cache_variable: str,
                 overrides: Mapping[str, Path], area: str | None) -> str:
    """A single-page app under ``root`` from ``build``: files, or index.html for client routes.
    With an ``area``, its files are for those the authorization check lets into that area (a
    browser without a login is sent to the login page); without, for everyone."""
    if area is None:
        access, nested = "    auth_request off;", ""
    else:
        access = f"    set $door_area {area};\n" + indent(_login_redirect_pages())
        # rewrite-module directives (set) are not inherited by nested locations
        nested = f"        set $door_area {area};\n"
    lines: list[str] = [f"location = {root.rstrip('/')} {{", "    auth_request off;",
                        f"    return 301 {root};", "}"]
    for file_name, path in overrides.items():
        lines += [
            "",
            f"location = {root}{file_name} {{",
            access,
            '    set $door_allow "GET, HEAD, OPTIONS";',
            "    if ($request_method = OPTIONS) {",
            "        add_header Allow $door_allow always;",
            "        return 204;",
            "    }",
            f"    alias {path};",
            indent(_STATIC_CHARSET),
            '    add_header Cache-Control "no-cache" always;',
            "}",
        ]
    index_home = overrides.get(ohif.INDEX, build / ohif.INDEX).parent
    lines += [
        "",
        f"location ^~ {root} {{",
        access,
        '    set $door_allow "GET, HEAD, OPTIONS";',
        "    if ($request_method = OPTIONS) {",
        "        add_header Allow $door_allow always;",
        "        return 204;",
        "    }",
        f"    alias {build}/;",
        "    # A symbolic link inside the build must not lead out of it.",
        f"    disable_symlinks on from={build};",
        indent(_STATIC_CHARSET),
        f"    add_header Cache-Control ${cache_variable} always;",
        "    # A path that is no file is a client-side route: answer index.html ...",
        f"    try_files $uri @{name}-index;",
        "    # ... unless it names a missing asset, or a hidden file such as the install stamp.",
        '    location ~ "/\\." {',
        nested + "        return 404;",
        "    }",
        f'    location ~* "{_ASSET_REGEX}" {{',
        nested + "        try_files $uri =404;",
        "    }",
        "}",
        "",
        "# Reached only from the location above, after its authorization.",
        f"location @{name}-index {{",
        "    auth_request off;",
        f"    root {index_home};",
        indent(_STATIC_CHARSET),
        '    add_header Cache-Control "no-cache" always;',
        f"    try_files /{ohif.INDEX} =404;",
        "}",
    ]
    return "\n".join(lines)


def _viewer(settings: ArchiveSettings, build: Path | None, layout: Layout) -> str:
    if build is None:
        return "# The OHIF viewer is switched off (Archive.Viewer.Enabled)."
    root = settings.viewer.root
    return (f"# The OHIF viewer: the build in {build}, with index.html and app-config.js\n"
            f"# rendered into {layout.ohif}.\n"
            + _static_site(root, build, "ohif", "door_ohif_cache",
                           {ohif.APP_CONFIG: layout.ohif / ohif.APP_CONFIG,
                            ohif.INDEX: layout.ohif / ohif.INDEX}, "viewer"))


def _console(build: Path) -> str:
    if (build / "index.html").is_file():
        return (f"# The admin console (Vue): the build in {build}. Its files are public: they hold\n"
                "# the login page and no data; every page asks the API, which authorizes.\n"
                + _static_site("/ui/", build, "ui", "door_ui_cache", {}, None))
    page = ("<!doctype html><html><head><meta charset=utf-8><title>Console not installed</title>"
            "</head><body><h1>The admin console is not installed</h1><p>No build at "
            f"{build}. Run <code>scripts/install-console</code> (or <code>scripts/setup</code>)"
            " and restart the archive.</p></body></html>")
    assert "'" not in page and "$" not in page
    return "\n".join([
        f"# The admin console: no build at {build} when the door started (scripts/install-console).",
        "location ^~ /ui/ {",
        "    auth_request off;",
        "    default_type text/html;",
        '    add_header Cache-Control "no-store" always;',
        f"    return 503 '{page}';",
        "}",
    ])


def _auth_cache(seconds: int) -> str:
    if seconds <= 0:
        return "# Archive.Door.AuthCacheSeconds is 0: every request is checked.\nproxy_cache off;"
    return "\n".join([
        f"# Cached up to {seconds} s per credential, area, tenant and method "
        "(Archive.Door.AuthCacheSeconds);",
        "# the check's X-Accel-Expires says less (0: 401, state-changing requests).",
        "proxy_cache door_auth;",
        'proxy_cache_key "$cookie_archive_session|$http_authorization|$http_x_api_key|'
        '$door_area|$door_tenant|$request_method";',
        f"proxy_cache_valid 204 {seconds}s;",
        "# No cache lock: a request that waits for another one's check of the same key is woken",
        "# only by nginx's 500 ms poll, never when that check ends. A new credential's first",
        "# concurrent requests waited 0.5 s, and requests whose answer is never kept (401)",
        "# queued in 0.5 s steps (the sixth of six after 2.5 s); without it each asks the check.",
        "proxy_cache_lock off;",
        "proxy_ignore_headers Cache-Control Expires Set-Cookie;",
    ])


def _auth_request(enabled: bool) -> str:
    if not enabled:
        return ("# Archive.Security.Enabled is false: the door lets every request through.\n"
                "auth_request off;")
    return "auth_request /_door/auth;"


def _login_redirect_pages() -> str:
    """error_page lines for locations a person opens in a browser (the viewer, Orthanc Explorer):
    without a valid login the answer is 401 with a page that sends the browser to the console's
    login page and back (its ``next`` is built in the page: nginx cannot percent-encode). A
    location that has its own error_page inherits none from the server, so the rest are here."""
    lines = ["error_page 401 @door-login;"]
    lines += [f"error_page {status} {problem_location(status)};" for status in PROBLEMS
              if status != 401]
    return "\n".join(lines)


_LOGIN_PAGE = (
    "<!doctype html><html lang=zh-CN><head><meta charset=utf-8><title>请登录 Sign in</title>"
    '<script>location.replace("/ui/login?next="+encodeURIComponent(location.pathname+'
    "location.search+location.hash))</script></head><body><p>请先<a href=/ui/login>登录</a>。"
    " Please <a href=/ui/login>sign in</a> first.</p></body></html>")


def _login_location() -> str:
    assert "'" not in _LOGIN_PAGE and "$" not in _LOGIN_PAGE
    return "\n".join([
        "location @door-login {",
        "    auth_request off;",
        "    default_type text/html;",
        "    charset utf-8;",
        '    add_header Cache-Control "no-store" always;',
        '    add_header WWW-Authenticate "Bearer realm=\\"archive\\"" always;',
        f"    return 401 '{_LOGIN_PAGE}';",
        "}",
    ])


def _servers(settings: ArchiveSettings, layout: Layout, certificate: CertificatePair | None) -> str:
    door = settings.door
    routes = f"include {layout.nginx_routes};"
    blocks: list[str] = []
    if door.https.enabled and door.https.redirect_http:
        blocks.append("\n".join([
            "# Plain HTTP only redirects to HTTPS (Archive.Door.Https.RedirectHttp).",
            "server {",
            "    " + listen(door.listen_address, door.http_port),
            "    location = /door-health {",
            "        access_log off;",
            "        return 204;",
            "    }",
            "    location / {",
            f"        return 301 https://$host:{door.https.port}$request_uri;",
            "    }",
            "}",
        ]))
    else:
        blocks.append("\n".join([
            "# HTTP (Archive.Door.ListenAddress, Archive.Door.HttpPort).",
            "server {",
            "    " + listen(door.listen_address, door.http_port),
            "    " + routes,
            "}",
        ]))
    if door.https.enabled:
        assert certificate is not None
        blocks.append("\n".join([
            "# HTTPS (Archive.Door.Https).",
            "server {",
            "    " + listen(door.listen_address, door.https.port, "ssl http2"),
            f"    ssl_certificate {certificate.certificate};",
            f"    ssl_certificate_key {certificate.key};",
            "    ssl_protocols TLSv1.2 TLSv1.3;",
            "    ssl_prefer_server_ciphers off;",
            "    ssl_session_cache shared:door_tls:10m;",
            "    ssl_session_timeout 1d;",
            "    " + routes,
            "}",
        ]))
    return indent("\n\n".join(blocks))


def stow_pattern(dicomweb_root: str) -> str:
    """The regex of ``$door_stow`` over ``"$request_method $uri"``: STOW-RS's two resources."""
    root = "/" + dicomweb_root.strip("/")
    return f"^POST {re.escape(root)}/studies(/[^/]+)?/?$"


def qido_pattern(dicomweb_root: str, methods: str = "GET") -> str:
    """The regex of ``$door_qido`` over ``"$request_method $uri"``: the six QIDO-RS search
    resources of PS3.18 10.6.1 (``HEAD`` stays with Orthanc, as the door sends it a GET).
    ``methods`` is a regex alternative of the methods that match."""
    root = re.escape("/" + dicomweb_root.strip("/"))
    searches = ("(studies|series|instances)", "studies/[^/]+/(series|instances)",
                "studies/[^/]+/series/[^/]+/instances")
    return f"^({methods}) {root}/({'|'.join(searches)})/?$"


def dicomweb_area_rules(dicomweb_root: str) -> list[tuple[str, str]]:
    """``$door_dicomweb_area``'s map over ``"$request_method $uri"``, in order (the first
    pattern that matches wins): what the authorization check is asked for (``docs/security.md``).

    Searches, metadata, frames, rendered images and bulk data are a view; STOW-RS an upload;
    Orthanc's DICOMweb client routes (``servers/``: send to and fetch from other servers) and
    any other POST need an administrator; retrieving whole instances, series or studies is a
    download (the default, so that a resource this list forgets is not a mere view)."""
    root = re.escape("/" + dicomweb_root.strip("/"))
    return [
        (stow_pattern(dicomweb_root), "dicomweb-upload"),
        (f"^[A-Z]+ {root}/servers(/|$)", "orthanc-admin"),
        ("^POST ", "orthanc-admin"),
        (qido_pattern(dicomweb_root, "GET|HEAD"), "dicomweb-view"),
        (f"^(GET|HEAD) {root}/studies/[^/]+/(.+/)?(frames/[^/]+|metadata|rendered|thumbnail|bulk/.+)/?$",
         "dicomweb-view"),
    ]


def _area_map(rules: list[tuple[str, str]], default: str) -> str:
    lines = [f'"~{pattern}"  {area};' for pattern, area in rules]
    assert all('"' not in pattern for pattern, _ in rules)
    return "\n".join([*lines, f"default  {default};"])


def render_door(
    *,
    settings: ArchiveSettings,
    orthanc: Mapping[str, Any],
    layout: Layout,
    credential: Credential,
    viewer_build: Path | None,
    console_build: Path,
    certificate: CertificatePair | None,
    config_path: Path,
    euid: int | None = None,
) -> DoorFiles:
    """The text of ``nginx.conf`` and ``nginx-routes.conf``."""
    dicomweb = orthanc.get("DicomWeb") or {}
    dicomweb_root = str(dicomweb.get("Root") or "/dicom-web/")
    wado_root = str(dicomweb.get("WadoRoot") or "/wado")
    rewritten = ohif.rewritten_files(viewer_build) if viewer_build else frozenset()
    ohif_entries = "\n".join(
        f'        "{settings.viewer.root}{name}"  "{ohif.REWRITTEN}";' for name in sorted(rewritten)
        if ohif.cache_control(name, rewritten) == ohif.REWRITTEN)
    common = {"run": str(layout.run), "logs": str(layout.logs)}
    proxy_values = {"internal_authorization": credential.basic_authorization()}
    routes = render(template("nginx-routes.conf"), {
        **common,
        "dicomweb_root": dicomweb_root,
        "wado_root": wado_root,
        "viewer_root": settings.viewer.root,
        "max_upload_size": settings.door.max_upload_size,
        "auth_cache": _auth_cache(settings.door.auth_cache_seconds),
        "auth_request": _auth_request(settings.security.enabled),
        "tenant": settings.tenant,
        "login": _login_location(),
        "orthanc_browser_pages": indent(_login_redirect_pages()),
        "orthanc_proxy": render(template("orthanc-proxy.conf"), proxy_values),
        "api_proxy": template("api-proxy.conf"),
        "viewer": _viewer(settings, viewer_build, layout),
        "console": _console(console_build),
        "problems": _problem_locations(),
    })
    conf = render(template("nginx.conf"), {
        **common,
        "config": str(config_path),
        "user": user_directive(euid),
        "orthanc_port": str(orthanc["HttpPort"]),
        "api_port": str(settings.api.port),
        "auth_cache_seconds": str(settings.door.auth_cache_seconds),
        "stow_pattern": stow_pattern(dicomweb_root),
        "qido_pattern": qido_pattern(dicomweb_root),
        "dicomweb_area_map": indent(_area_map(dicomweb_area_rules(dicomweb_root),
                                              "dicomweb-download"), " " * 8),
        "audit_log": str(layout.logs / "door-audit.jsonl"),
        "ohif_cache_entries": ohif_entries or "        # (no file rewritten by install-ohif)",
        "content_hash": ohif.CONTENT_HASH,
        "servers": _servers(settings, layout, certificate),
    })
    return DoorFiles(nginx_conf=conf.rstrip("\n") + "\n", routes_conf=routes.rstrip("\n") + "\n")
