"""The script Orthanc's Python plugin loads (configuration key ``PythonScript``).

Glue only: put the plugin's virtual environment and the checkout's packages on ``sys.path``,
hand Orthanc's SDK to ``regional_archive.bootstrap``, and keep what it returns referenced for
the life of the process (the callbacks registered with Orthanc live in it; plugin 5.0 crashed
at shutdown when they were collected). The environment is ``$ARCHIVE_PLUGIN_VENV``, else
``$ARCHIVE_VENV``, else ``<checkout>/.venv``.
"""

import os
import site
import sys

import orthanc

_here = os.path.dirname(os.path.abspath(__file__))
_checkout = os.path.dirname(_here)
_venv = (os.environ.get("ARCHIVE_PLUGIN_VENV") or os.environ.get("ARCHIVE_VENV")
         or os.path.join(_checkout, ".venv"))
_site = os.path.join(_venv, "lib", "python%d.%d" % sys.version_info[:2], "site-packages")
if os.path.isdir(_site):
    site.addsitedir(_site)
for _path in (os.path.join(_checkout, "services"), _here):
    if os.path.isdir(_path) and _path not in sys.path:
        sys.path.insert(0, _path)

from regional_archive import bootstrap  # noqa: E402

PLUGIN = bootstrap.start(orthanc)
