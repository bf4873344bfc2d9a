"""gunicorn for LinguaFlex: ``gunicorn -c deploy/gunicorn.conf.py`` from the repository root, behind
deploy/nginx.conf.

Environment: GUNICORN_BIND (default 127.0.0.1:8000, nginx's upstream), GUNICORN_WORKERS (default
2 per core + 1) and GUNICORN_THREADS (default 4), gthread workers: a request mostly waits on Stripe
and PostgreSQL, so threads serve the waiting and processes the CPU. Timeouts nest: Stripe's connect
and read timeouts (5 s + 20 s, with retries inside the request's deadline) < the app's request
deadline (25 s, REQUEST_DEADLINE_SECONDS) < nginx's proxy_read_timeout (60 s) < gunicorn's worker
timeout (65 s), so a slow Stripe call ends in the contract's 504 from the app, never in a killed
worker. SIGTERM stops gracefully: requests in flight get GUNICORN_GRACEFUL_TIMEOUT (30 s) to finish.
gunicorn's control socket is off: nothing but signals (systemd, the stack script) manages a
running instance, and no socket is left behind in the home directory.

With PROMETHEUS_MULTIPROC_DIR (an empty directory per instance), each worker keeps its metrics
there and ``/metrics/`` adds them up; a worker that exits is marked dead (``child_exit``) so its
live gauges go and its counters stay.

The access log goes to stdout and holds the path without the query string (%(U)s, never %(r)s or
%(q)s): a client that puts a card number in a URL must not put it in our logs (the app refuses such
a request with a 400, linguaflex.middleware). ``RedactingLogger`` also masks anything shaped like a
card number in every access and error line, the path included, as a second guard.
"""

import os
import sys
from pathlib import Path

from gunicorn.glogging import Logger

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from linguaflex.logging import CardDataRedactingFilter  # noqa: E402  (needs ROOT on sys.path)

wsgi_app = "linguaflex.wsgi:application"
chdir = str(ROOT)
bind = [address.strip() for address in os.environ.get("GUNICORN_BIND", "127.0.0.1:8000").split(",") if address.strip()]
worker_class = "gthread"
workers = int(os.environ.get("GUNICORN_WORKERS") or 2 * (os.cpu_count() or 1) + 1)
threads = int(os.environ.get("GUNICORN_THREADS") or 4)
timeout = 65
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT") or 30)
control_socket_disable = True
# nginx keeps idle upstream connections for 4 s (deploy/nginx.conf), under this: it never reuses one
# gunicorn has closed.
keepalive = 5

accesslog = "-"
errorlog = "-"
# Path only (%(U)s), status, bytes, time taken, and nginx's request id when it sends one.
access_log_format = (
    '%(h)s %(t)s "%(m)s %(U)s %(H)s" status=%(s)s bytes=%(b)s ms=%(M)s request_id=%({x-request-id}i)s'
)


class RedactingLogger(Logger):
    """gunicorn's logger, with card numbers and CVCs masked in every access and error record."""

    def setup(self, cfg):
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            if not any(isinstance(existing, CardDataRedactingFilter) for existing in log.filters):
                log.addFilter(CardDataRedactingFilter())


logger_class = RedactingLogger


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def post_worker_init(worker):
    """Import everything a request reaches (the URLconf imports every view, serializer and
    service), then move what is loaded so far out of the garbage collector's sight (gc.freeze): its
    full collections then walk only what requests allocate, not Django's and the app's hundreds of
    thousands of long-lived objects (bench: 2.5 ms of CPU a payment went to them). Per worker,
    after fork, so nothing is shared copy-on-write that a collection would have touched anyway."""
    import gc

    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018  (the import of every view is the point)
    gc.collect()
    gc.freeze()
