"""Everything :mod:`archive_auth` offers, built once from ``Archive.Security`` over the control
database (the API service's wiring and the first-run command build one each)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.engine import Engine

from archive_config.security_settings import SecuritySettings
from archive_state.clock import Clock, utc_now

from .accounts import Accounts
from .api_keys import ApiKeys
from .authenticate import Authenticator
from .lockout import LockoutPolicy
from .org import OrgUnits
from .passwords import HashCost, Passwords
from .roles import Roles
from .sessions import SessionPolicy, Sessions
from .tokens import AccessTokens
from .users import Users


@dataclass(frozen=True)
class AuthService:
    settings: SecuritySettings
    users: Users
    org: OrgUnits
    roles: Roles
    sessions: Sessions
    tokens: AccessTokens
    api_keys: ApiKeys
    accounts: Accounts
    authenticator: Authenticator
    clock: Clock

    @classmethod
    def build(cls, engine: Engine, settings: SecuritySettings, *, clock: Clock = utc_now,
              hash_cost: HashCost = HashCost()) -> "AuthService":
        passwords = Passwords(hash_cost)
        users = Users(engine, passwords, clock=clock)
        sessions = Sessions(engine, SessionPolicy.of(settings), clock=clock)
        tokens = AccessTokens(engine, timedelta(minutes=settings.token_minutes), clock=clock)
        api_keys = ApiKeys(engine, clock=clock)
        accounts = Accounts(engine, users, passwords, LockoutPolicy.of(settings),
                            password_min_length=settings.password_min_length, clock=clock)
        return cls(settings=settings, users=users, org=OrgUnits(engine, clock=clock),
                   roles=Roles(engine, clock=clock), sessions=sessions, tokens=tokens,
                   api_keys=api_keys, accounts=accounts,
                   authenticator=Authenticator(users, sessions, tokens, api_keys), clock=clock)
