from django.apps import AppConfig


class LinguaflexConfig(AppConfig):
    name = "linguaflex"
    verbose_name = "LinguaFlex platform"

    def ready(self) -> None:
        # The Celery app is made with Django, so @shared_task binds to it (linguaflex/celery.py).
        # Not in the package's __init__: importing it sets a default DJANGO_SETTINGS_MODULE, which
        # must not win over the one a test runner or gunicorn chooses before Django is set up.
        from . import celery  # noqa: F401
