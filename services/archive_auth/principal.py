"""Who a request is: the one shape every credential resolves to."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from .permissions import ALL_TENANTS, PERMISSIONS, on_tenant, ordered

Kind = Literal["session", "token", "api-key", "anonymous"]


@dataclass(frozen=True)
class Principal:
    """A resolved credential.

    ``permissions`` maps a tenant (or ``"*"``: every tenant) to the permissions held there, as
    granted (``admin`` not yet expanded). ``public_id`` is the session's, token's or key's id,
    safe to log; ``csrf_token`` is set for browser sessions only. ``anonymous`` is what every
    request is when ``Archive.Security.Enabled`` is false.
    """

    kind: Kind
    user_id: int | None
    name: str
    permissions: Mapping[str, frozenset[str]]
    public_id: str | None = None
    csrf_token: str | None = field(default=None, repr=False)
    display_name: str | None = None
    must_change_password: bool = False

    @classmethod
    def anonymous(cls) -> "Principal":
        return cls(kind="anonymous", user_id=None, name="anonymous",
                   permissions={ALL_TENANTS: frozenset(PERMISSIONS)})

    @property
    def session_public_id(self) -> str | None:
        """The design's name for :attr:`public_id`."""
        return self.public_id

    @property
    def actor_kind(self) -> Literal["user", "api-key", "anonymous"]:
        """How the audit trail names this kind of actor."""
        if self.kind == "api-key":
            return "api-key"
        return "anonymous" if self.kind == "anonymous" else "user"

    def on(self, tenant: str) -> frozenset[str]:
        """Every permission held on ``tenant`` (``admin`` expanded)."""
        return on_tenant(self.permissions, tenant)

    def allows(self, permission: str, tenant: str) -> bool:
        return permission in self.on(tenant)

    def tenants_with(self, permission: str) -> frozenset[str]:
        """The tenants (``"*"`` for all) on which ``permission`` is held."""
        return frozenset(t for t in self.permissions if permission in on_tenant(
            {t: self.permissions[t]}, t))

    def describe(self) -> dict[str, list[str]]:
        """Permissions per tenant, expanded, for ``/api/auth/me``."""
        return {t: ordered(on_tenant({t: p}, t)) for t, p in sorted(self.permissions.items())}
