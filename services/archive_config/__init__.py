"""The archive's configuration: Orthanc-style JSON folders, our ``Archive`` section as frozen settings.

Shared by every process role: the plugin inside Orthanc, the launcher, the API service and the
worker all parse the same section with the same rules, so a key means one thing everywhere.
Nothing here imports ``orthanc`` or opens a connection.
"""

from .errors import ConfigError

__all__ = ["ConfigError"]
