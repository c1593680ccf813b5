"""The script Orthanc's Python plugin loads (configuration key ``PythonScript``).

Glue only: put the project's virtual environment on ``sys.path``, then hand Orthanc's SDK to
``regional_archive.bootstrap``. The environment is ``$ARCHIVE_VENV`` or ``<repo>/.venv``.
"""

import os
import site
import sys

import orthanc

_here = os.path.dirname(os.path.abspath(__file__))
_venv = os.environ.get("ARCHIVE_VENV") or os.path.join(os.path.dirname(_here), ".venv")
_site = os.path.join(_venv, "lib", "python%d.%d" % sys.version_info[:2], "site-packages")
if os.path.isdir(_site):
    site.addsitedir(_site)
if _here not in sys.path:
    sys.path.insert(0, _here)

from regional_archive import bootstrap  # noqa: E402

bootstrap.start(orthanc)
