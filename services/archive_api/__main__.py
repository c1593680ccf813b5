"""``python -m archive_api --config DATA/run/orthanc``: the API on uvicorn, loopback only."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

import uvicorn

from archive_config.config_check import load
from archive_config.errors import ConfigError
from archive_worker.kinds import KindsModuleError

from .orthanc import CredentialMissing, load_credential
from .wiring import CONFIG_ENV, KINDS_ENV, kind_infos


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m archive_api", description=__doc__)
    parser.add_argument("--config", required=True, type=Path,
                        help="the run folder's Orthanc configuration (DATA/run/orthanc)")
    parser.add_argument("--kinds-module", action="append", default=[],
                        help="extra job kinds (a module with KINDS), as the workers run them")
    parser.add_argument("--port", type=int, default=None,
                        help="override Archive.Api.Port (tests)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # httpx logs every request at INFO: one line per Orthanc call would drown the log.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        config = load(args.config)
        load_credential(config.archive.state_directory)
        kind_infos(args.kinds_module)
    except (ConfigError, ValueError, OSError, CredentialMissing, KindsModuleError) as exc:
        print(f"archive_api: {exc}", file=sys.stderr)
        return 1
    os.environ[CONFIG_ENV] = str(args.config.resolve())
    os.environ[KINDS_ENV] = ",".join(args.kinds_module)
    uvicorn.run("archive_api.wiring:app_from_environment", factory=True, host="127.0.0.1",
                port=args.port or config.archive.api.port,
                workers=config.archive.api.processes, log_config=None,
                proxy_headers=True, forwarded_allow_ips="127.0.0.1", access_log=False,
                http="archive_api.nodelay:NoDelayH11Protocol")
    return 0


if __name__ == "__main__":
    sys.exit(main())
