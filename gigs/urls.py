from django.urls import path

from . import views

app_name = "gigs"

urlpatterns = [
    path("", views.GigListCreateView.as_view(), name="list"),
    path("<int:gig_id>/", views.GigDetailView.as_view(), name="detail"),
]
