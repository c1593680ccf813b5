"""``python -m archive_door run|render|systemd``: the archive's launcher (see the package doc)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from archive_config.errors import ConfigError

from .errors import DoorError
from .launcher import door_urls, exec_supervisord, prepare
from .nginx_start import exec_nginx
from .systemd import write_units

CONFIG_ERROR_EXIT = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m archive_door", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("run", "check, migrate, render DATA/run and run everything under supervisord"),
        ("render", "check, migrate and render DATA/run, then exit (systemd's first step)"),
        ("systemd", "write systemd units that run the same processes"),
    ):
        sub = commands.add_parser(name, help=text, description=text)
        sub.add_argument("--config", type=Path, required=True, help="configuration folder")
        sub.add_argument("--data", type=Path, required=True, help="data folder (ARCHIVE_DATA)")
        sub.add_argument("--platform", choices=("bookworm", "trixie"), default=None,
                         help="Orthanc platform (default: $ARCHIVE_ORTHANC or /usr/sbin/Orthanc)")
        if name == "systemd":
            sub.add_argument("--out", type=Path, required=True, help="folder for the unit files")
            sub.add_argument("--user", default=None, help="user the services run as (User=)")
    return parser


def main(argv: list[str] | None = None) -> int:
    raw = sys.argv[1:] if argv is None else argv
    if raw[:1] == ["nginx"]:
        return _nginx(raw[1:])
    args = _parser().parse_args(raw)
    logging.basicConfig(level=logging.INFO, format="[archive_door] %(message)s", stream=sys.stderr)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        if args.command == "systemd":
            for path in write_units(args.config, args.data, args.out, platform=args.platform,
                                    user=args.user):
                print(path)
            return 0
        prepared = prepare(args.config, args.data, args.platform)
    except (ConfigError, ValueError) as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return CONFIG_ERROR_EXIT
    except DoorError as exc:
        print(f"cannot start: {exc}", file=sys.stderr)
        return exc.exit_code
    if args.command == "render":
        print(prepared.layout.run)
        return 0
    layout = prepared.layout
    for url in door_urls(prepared.configuration.archive):
        print(f"[archive] the door: {url}  (console /ui/, viewer /ohif/, API /api/)", flush=True)
    print(f"[archive] logs: {layout.logs}/   run folder: {layout.run}/   Ctrl-C stops", flush=True)
    exec_supervisord(prepared)


def _nginx(argv: list[str]) -> int:
    """``nginx --run DATA/run --nginx /usr/sbin/nginx``: the door program's command."""
    parser = argparse.ArgumentParser(prog="python -m archive_door nginx")
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--nginx", default="/usr/sbin/nginx")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[archive_door] %(message)s", stream=sys.stderr)
    exec_nginx(args.run, args.nginx)
    return 1


if __name__ == "__main__":
    sys.exit(main())
