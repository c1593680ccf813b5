"""The launcher: renders the run folder (Orthanc, nginx, supervisord) and runs the archive.

``python -m archive_door run --config CONFIG --data DATA`` checks the configuration, makes the
internal credential once, runs the database migrations, writes ``DATA/run/`` and then becomes
supervisord, which runs Orthanc, the API service, the workers and nginx (the door) and restarts
any of them that dies. ``python -m archive_door systemd`` writes the same processes as systemd
units for production. Nothing here runs at import.
"""
