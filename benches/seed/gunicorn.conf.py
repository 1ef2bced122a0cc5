# gunicorn settings of the seed baseline: `gunicorn -c gunicorn.conf.py app:app`.
import os

# Sync workers, one per core: what a default gunicorn deployment runs
# (worker_class defaults to "sync"; the docs suggest a few per core).
workers = os.cpu_count() or 1
worker_class = "sync"
bind = os.environ.get("BIND", "127.0.0.1:8000")
accesslog = None  # no access log: it would cost every request a write
errorlog = "-"  # stderr
# No preload_app: each worker imports app.py after the fork, so each has its
# own boto3 / gRPC client (gRPC does not survive a fork).
# gunicorn >= 25.1 opens a control socket at one fixed path per user
# ($HOME/.gunicorn/gunicorn.ctl): off, so that two instances (one per store)
# can run side by side.
control_socket_disable = True
