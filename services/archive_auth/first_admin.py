"""``scripts/archive_tools create-admin``: the first administrator, on a new installation.

There is no default password: this command is how the first person gets in. It reads the
configuration as the launcher does (``--config``, default ``$ARCHIVE_CONFIG`` or the
repository's ``config/``; ``--data``, default ``$ARCHIVE_DATA`` or ``./data``) to find the
control database (``Archive.Database.Control``), migrates it, makes the region unit if missing
and a user holding the ``admin`` role on it. The password comes from a prompt (twice) or, with
``--password-stdin``, from the first line of standard input. An existing user is refused unless
``--reset-password`` is given: then its password is replaced, it is unlocked and enabled, and it
gets the ``admin`` role on the region if it lacked it.

Exit status: 0 done, 1 refused or failed (the message says why), 2 wrong command line.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO

from archive_config.config_check import load
from archive_config.errors import ConfigError
from archive_config.security_settings import SecuritySettings
from archive_config.settings import control_database_url
from archive_state.db import make_engine, migrate
from archive_state.errors import MigrationError

from .errors import AuthError
from .service import AuthService
from .users import Grant

log = logging.getLogger(__name__)

PROG = "create-admin"
REPO = Path(__file__).resolve().parents[2]
ADMIN_ROLE = "admin"


class Refused(Exception):
    """Why no administrator was made; shown as it is."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("--username", required=True, help="the administrator's username")
    parser.add_argument("--display-name", default="", help="the name shown (e.g. 张伟)")
    parser.add_argument("--password-stdin", action="store_true",
                        help="read the password from the first line of standard input")
    parser.add_argument("--reset-password", action="store_true",
                        help="the user exists: set a new password (and make it admin)")
    parser.add_argument("--config", type=Path, default=None,
                        help="configuration folder (default $ARCHIVE_CONFIG or config/)")
    parser.add_argument("--data", type=Path, default=None,
                        help="data folder (default $ARCHIVE_DATA or ./data)")
    return parser


def _read_password(from_stdin: bool, stdin: TextIO) -> str:
    if from_stdin:
        line = stdin.readline()
        return line[:-1] if line.endswith("\n") else line
    first = getpass.getpass("密码 / password: ")
    if getpass.getpass("再次输入 / again: ") != first:
        raise Refused("两次输入的密码不一致 / the two passwords differ")
    return first


def read_configuration(config: Path, data: Path,
                       env: Mapping[str, str]) -> tuple[str, SecuritySettings]:
    """The control database's URL and ``Archive.Security``, from the configuration expanded as
    the launcher expands it."""
    environ = {**env, "ARCHIVE_HOME": str(REPO), "ARCHIVE_DATA": str(data)}
    archive = load(config, environ).archive
    # Before the archive's first start the state folder (the default SQLite file's) is missing.
    Path(archive.state_directory).mkdir(parents=True, exist_ok=True)
    return control_database_url(archive), archive.security


def create_admin(auth: AuthService, username: str, display_name: str, password: str, *,
                 reset: bool) -> str:
    """Make (or with ``reset`` repair) the administrator; returns what was done."""
    region = auth.org.ensure_region()
    existing = auth.users.find(username)
    if existing is not None and not reset:
        raise Refused(f"用户 {existing.username} 已存在（使用 --reset-password 重设密码）/ "
                      f"user {existing.username} exists (--reset-password to reset it)")
    if existing is None:
        user = auth.accounts.create_user(username, display_name, password,
                                         must_change_password=False)
        done = "created"
    else:
        user = auth.accounts.set_password(existing.id, password, must_change=False)
        auth.users.update(user.id, disabled=False,
                          display_name=display_name or None)
        auth.users.unlock(user.id)
        done = "reset"
    grants = auth.users.grants(user.id)
    admin = Grant(ADMIN_ROLE, region.id)
    if admin not in grants:
        auth.users.set_grants(user.id, [*grants, admin], by=PROG)
    return done


def main(argv: Sequence[str] | None = None, *, stdin: TextIO | None = None,
         env: Mapping[str, str] | None = None) -> int:
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    environ = dict(os.environ if env is None else env)
    config = args.config or Path(environ.get("ARCHIVE_CONFIG") or REPO / "config")
    data = (args.data or Path(environ.get("ARCHIVE_DATA") or Path.cwd() / "data")).resolve()
    try:
        url, settings = read_configuration(config, data, environ)
        password = _read_password(args.password_stdin, stdin or sys.stdin)
        migrate(url, "control")
        engine = make_engine(url)
        try:
            auth = AuthService.build(engine, settings)
            done = create_admin(auth, args.username, args.display_name, password,
                                reset=args.reset_password)
        finally:
            engine.dispose()
    except (Refused, AuthError, ConfigError, MigrationError, ValueError, OSError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    print(f"{PROG}: administrator {args.username} {done} "
          f"(role {ADMIN_ROLE} on the region)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
