#!/usr/bin/env bash
# Archive container entrypoint: check the rendered configuration, then hand over to the
# orthancteam/orthanc entrypoint, which substitutes ${VAR}s in /etc/orthanc/*.json, applies
# ORTHANC__* variables, enables the plugins named by *_PLUGIN_ENABLED and execs Orthanc.
set -euo pipefail
python3 "$ARCHIVE_HOME/docker/render_config.py" check /etc/orthanc/archive.json
exec /docker-entrypoint.sh "$@"
