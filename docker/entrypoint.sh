#!/usr/bin/env bash
# Entrypoint of the archive image: one role per container (docker/compose.yaml), running the
# commands of the launcher's supervisord programs (services/archive_door/programs.py).
#
#   render   check the configuration with the container's environment (render_config.py: refuses
#            missing variables and change-me secrets), then `archive_door render`: migrations,
#            internal credential, DATA/run/ (nginx.conf, Orthanc's configuration …). One-shot.
#   orthanc  Orthanc with the rendered configuration, through the base image's entrypoint (which
#            enables the plugins); the thread-stack, CharLS-routing and (unless switched
#            off) quick-ACK shims preloaded; TMPDIR private, umask 0077.
#   api | worker | door   the API service, a job worker ($ARCHIVE_WORKER_NAME), nginx.
#   (anything else)       the image alone: check, then the base image's entrypoint with "$@".
set -euo pipefail
run="$ARCHIVE_DATA/run"
python="$ARCHIVE_VENV/bin/python"

case "${1:-}" in
  render)
    python3 "$ARCHIVE_HOME/docker/render_config.py" check /etc/orthanc/archive.json \
      --out "$ARCHIVE_DATA/config/archive.json"
    exec "$python" -m archive_door render --config "$ARCHIVE_DATA/config" --data "$ARCHIVE_DATA"
    ;;
  orthanc)
    # The launcher's rendering adds the internal credential and enforces the internal port.
    install -m 0600 "$run/orthanc/archive.json" /etc/orthanc/archive.json
    export LD_PRELOAD="$ARCHIVE_HOME/.cache/lib/libarchive-thread-stack.so"
    # GDCM's CharLS calls to CharLS 2, not DCMTK's copy (orthanc-plugins/native/charls_route.c).
    LD_PRELOAD="$LD_PRELOAD $ARCHIVE_HOME/.cache/lib/libarchive-charls-route.so"
    # Temporary files (codecs' decoded pixels) in a private folder, private files.
    export TMPDIR="$run/tmp/orthanc"
    install -d -m 0700 "$TMPDIR"
    umask 0077
    # Archive.Dicom.SuppressDelayedAck (on by default): the quick-ACK shim too, as the launcher's
    # orthanc program has it (services/archive_door/programs.py).
    quick_ack="$("$python" -c 'import sys; from pathlib import Path
from archive_config.config_check import load
print(int(load(Path(sys.argv[1])).archive.dicom.suppress_delayed_ack))' "$run/orthanc")"
    if [[ "$quick_ack" == 1 ]]; then
      LD_PRELOAD="$LD_PRELOAD $ARCHIVE_HOME/.cache/lib/libarchive-quick-ack.so"
    fi
    export ARCHIVE_QUICKACK="$quick_ack"
    exec /docker-entrypoint.sh /tmp/orthanc.json
    ;;
  api)
    exec "$python" -m archive_api --config "$run/orthanc"
    ;;
  worker)
    exec "$python" -m archive_worker --config "$run/orthanc" --name "${ARCHIVE_WORKER_NAME:-worker-1}"
    ;;
  door)
    exec "$python" -m archive_door nginx --run "$run" --nginx /usr/sbin/nginx
    ;;
  *)
    python3 "$ARCHIVE_HOME/docker/render_config.py" check /etc/orthanc/archive.json
    exec /docker-entrypoint.sh "$@"
    ;;
esac
