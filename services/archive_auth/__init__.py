"""Who may do what: users, organisation units, roles and grants, passwords and lockout, browser
sessions, bearer tokens and API keys, all in the region's control database.

Every credential resolves to a :class:`Principal` through :meth:`Authenticator.authenticate`;
:func:`decide` answers the door's question for one request. The API's dependency and routes
are in :mod:`archive_api.authz`, :mod:`archive_api.auth_routes` and :mod:`archive_api.admin_routes`;
:mod:`archive_auth.service` builds everything from ``Archive.Security``.
"""

from .authenticate import Authenticator
from .decide import Decision, decide
from .principal import Principal

__all__ = ["Authenticator", "Decision", "Principal", "decide"]
