"""Gunicorn settings (loaded automatically when gunicorn starts in this folder, or with -c).

Command-line options override these. The hooks let the app find the master process: workers
inherit STUDIO_GUNICORN_MASTER_PID, and the pid file is what `flask shutdown` reads.
"""
import os

_ROOT = os.path.dirname(os.path.abspath(__file__))

graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "60"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "300"))
# Flask's own request lines go to stderr via app/logging_setup.py; gunicorn's error log joins them.
errorlog = "-"
# The runtime control socket is not used; a shared default path would clash between servers.
control_socket_disable = True


def _pid_file() -> str:
    instance = os.environ.get("INSTANCE_PATH") or os.path.join(_ROOT, "instance")
    return os.environ.get("SERVER_PID_FILE") or os.path.join(instance, "gunicorn.pid")


def on_starting(server):
    os.environ["STUDIO_GUNICORN_MASTER_PID"] = str(os.getpid())


def when_ready(server):
    # Written by hand instead of gunicorn's `pidfile`, which refuses to start when another
    # server (a test, a second port) left its pid there.
    path = _pid_file()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as fh:
        fh.write(f"{os.getpid()}\n")


def on_exit(server):
    path = _pid_file()
    try:
        with open(path) as fh:
            mine = fh.read().strip() == str(os.getpid())
        if mine:
            os.remove(path)
    except OSError:
        pass
