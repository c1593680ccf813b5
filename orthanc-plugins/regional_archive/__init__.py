"""Regional imaging archive: the Python plugin that Orthanc loads, as importable modules.

Only what must run inside Orthanc lives here (docs/architecture.md, decision 3): today the
change outbox. :mod:`.runtime` registers each Orthanc callback once and dispatches to the
features of :mod:`.features`; only :mod:`.adapters` touches the SDK, which the entry script
passes in. Everything else is plain Python and runs under test without a server.
"""

__version__ = "0.1.0"
