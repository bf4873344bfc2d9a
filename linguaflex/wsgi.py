import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "linguaflex.settings.production")

django_application = get_wsgi_application()

# Imported once the apps are loaded (get_wsgi_application runs django.setup()).
from .chunked import ChunkedBodyMiddleware  # noqa: E402

# Chunked request bodies get a Content-Length before Django reads them (linguaflex.chunked).
application = ChunkedBodyMiddleware(django_application)
