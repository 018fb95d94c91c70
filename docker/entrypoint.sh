#!/bin/sh
# web: migrate the database, then gunicorn. worker: an RQ worker. Anything else runs as given.
set -eu
case "${1:-web}" in
  web)
    flask --app app db upgrade
    # Each gunicorn worker runs its own ONNX Runtime: share the cores between them unless told otherwise.
    workers="${WEB_WORKERS:-2}"
    cores=$(nproc 2>/dev/null || echo 2)
    export PREDICT_THREADS="${PREDICT_THREADS:-$(( cores / workers > 0 ? cores / workers : 1 ))}"
    exec gunicorn -c /app/gunicorn.conf.py --bind "0.0.0.0:${PORT:-8000}" \
      --workers "$workers" --threads "${WEB_THREADS:-4}" --access-logfile - wsgi:app
    ;;
  worker)
    shift
    exec python worker.py "$@"
    ;;
  *)
    exec "$@"
    ;;
esac
