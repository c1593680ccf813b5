"""Regional imaging archive: the Python plugin that Orthanc loads, as importable modules.

Only the ``adapters`` subpackage and the entry script import ``orthanc``; everything else is
plain Python and runs under test without a server.
"""

__version__ = "0.1.0"
