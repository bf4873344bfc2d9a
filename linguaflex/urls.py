from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from .health import HealthView, ReadinessView
from .index import IndexView
from .metrics import metrics_view

urlpatterns = [
    path("", IndexView.as_view(), name="index"),
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    path("gigs/", include("gigs.urls")),
    path("bookings/", include("bookings.urls")),
    path("bookings/", include("stripe_payments.booking_urls")),  # decline, cancel: they move money
    path("stripe-payments/", include("stripe_payments.urls")),
    path("health/", HealthView.as_view(), name="health"),
    path("health/ready/", ReadinessView.as_view(), name="health-ready"),
    # Prometheus: a bearer token (METRICS_TOKEN), or loopback without a proxy; never public.
    path("metrics/", metrics_view, name="metrics"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # Public, like the schema (SPECTACULAR_SETTINGS: SERVE_AUTHENTICATION), from local static files.
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema", template_name="linguaflex/redoc.html"),
         name="redoc"),
]

handler400 = "linguaflex.errors.json_400"
handler403 = "linguaflex.errors.json_403"
handler404 = "linguaflex.errors.json_404"
handler500 = "linguaflex.errors.json_500"
