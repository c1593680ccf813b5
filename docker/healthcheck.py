#!/usr/bin/env python3
"""Docker HEALTHCHECK: ``GET /api/health`` inside the container; exit 0 only when it says "ok".

``/api/health`` answers 503 when a dependency (a plugin, the state folder) is missing, and it
reads Orthanc's own ``/system``, so a live HTTP server with a broken archive is reported
unhealthy. Orthanc's authentication covers every route, so the administrator's credentials from
the container's environment are sent. The image has no curl: standard library only.
``ARCHIVE_HEALTHCHECK_URL`` overrides the address (tests; a changed HttpPort).
"""

from __future__ import annotations

import base64
import json
import os
import sys
import urllib.error
import urllib.request

DEFAULT_URL = "http://127.0.0.1:8042/api/health"


def main() -> int:
    url = os.environ.get("ARCHIVE_HEALTHCHECK_URL", DEFAULT_URL)
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    user = os.environ.get("ARCHIVE_ADMIN_USER")
    if user:
        token = f"{user}:{os.environ.get('ARCHIVE_ADMIN_PASSWORD', '')}".encode()
        request.add_header("Authorization", "Basic " + base64.b64encode(token).decode("ascii"))
    try:
        with urllib.request.urlopen(request, timeout=8) as response:
            document = json.load(response)
    except urllib.error.HTTPError as exc:
        print(f"unhealthy: HTTP {exc.code} {exc.read(500).decode(errors='replace')}")
        return 1
    except (OSError, ValueError) as exc:
        print(f"unhealthy: {exc}")
        return 1
    status = document.get("status")
    version = (document.get("orthanc") or {}).get("version")
    print(f"{status}: tenant={document.get('tenant')} orthanc={version}")
    return 0 if status == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
