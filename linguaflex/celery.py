"""The Celery application: webhook events, e-mails and the scheduled jobs run on it.

Worker: ``celery -A linguaflex worker -l INFO``; beat: ``celery -A linguaflex beat -l INFO``. The
broker is ``CELERY_BROKER_URL`` (Redis, or RabbitMQ's ``amqp://``). Without one (``make run``, the
tests) every task runs in-process when it is sent (``task_always_eager``), so nothing else is needed.

The request id of the code that sends a task travels in the message's headers and is bound again
while the task runs: its log lines, and the Stripe objects it creates, carry it.
"""

from __future__ import annotations

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "linguaflex.settings.local")

app = Celery("linguaflex")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

REQUEST_ID_HEADER = "linguaflex_request_id"


@signals.before_task_publish.connect(dispatch_uid="linguaflex.request_id.publish")
def _send_request_id(headers=None, **_):
    from . import request_id

    current = request_id.get()
    if headers is not None and current and REQUEST_ID_HEADER not in headers:
        headers[REQUEST_ID_HEADER] = current


_bound_tokens: dict[str, object] = {}


@signals.task_prerun.connect(dispatch_uid="linguaflex.request_id.prerun")
def _bind_request_id(task_id=None, task=None, **_):
    from . import request_id

    sent = getattr(task.request, REQUEST_ID_HEADER, None) if task is not None else None
    if task is not None and task.request.is_eager and request_id.get():
        return  # run in-process: the caller's id is already bound
    # A task sent outside any request (beat) gets an id of its own.
    _bound_tokens[task_id] = request_id.push(sent)


@signals.task_postrun.connect(dispatch_uid="linguaflex.request_id.postrun")
def _unbind_request_id(task_id=None, **_):
    from . import request_id

    token = _bound_tokens.pop(task_id, None)
    if token is not None:
        request_id.pop(token)


@signals.celeryd_after_setup.connect(dispatch_uid="linguaflex.metrics.worker")
def _worker_metrics(**_):
    from . import metrics

    metrics.install_celery_metrics()


@signals.task_success.connect(dispatch_uid="linguaflex.metrics.task_success")
def _task_succeeded(sender=None, **_):
    from . import metrics

    metrics.task_finished(getattr(sender, "name", "unknown"), "succeeded")


@signals.task_failure.connect(dispatch_uid="linguaflex.metrics.task_failure")
def _task_failed(sender=None, **_):
    from . import metrics

    metrics.task_finished(getattr(sender, "name", "unknown"), "failed")


@signals.task_retry.connect(dispatch_uid="linguaflex.metrics.task_retry")
def _task_retried(sender=None, **_):
    from . import metrics

    metrics.task_finished(getattr(sender, "name", "unknown"), "retried")


@signals.worker_process_shutdown.connect(dispatch_uid="linguaflex.metrics.process_dead")
def _pool_process_gone(pid=None, **_):
    from . import metrics

    if metrics.multiprocess_dir() and pid:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)
