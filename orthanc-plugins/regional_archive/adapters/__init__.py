"""The only code that touches Orthanc's SDK (the ``orthanc`` module, passed in, never imported).

:mod:`.sdk` types the parts of the SDK we use as a Protocol; :mod:`.host` registers callbacks,
keeps them alive, maps the SDK's enumerations to names and hides the differences between
Python plugin 4.0 (Debian bookworm, Orthanc 1.10.1) and 5.0 (Debian trixie, Orthanc 1.12.x);
:mod:`.orthanc_logging` bridges Python logging to Orthanc's log.
"""
