#!/bin/sh
# web: migrate the database, then gunicorn. worker: an RQ worker. Anything else runs as given.
set -eu
case "${1:-web}" in
  web)
    flask --app app db upgrade
    exec gunicorn -c /app/gunicorn.conf.py --bind "0.0.0.0:${PORT:-8000}" \
      --workers "${WEB_WORKERS:-2}" --threads "${WEB_THREADS:-4}" --access-logfile - wsgi:app
    ;;
  worker)
    shift
    exec python worker.py "$@"
    ;;
  *)
    exec "$@"
    ;;
esac
