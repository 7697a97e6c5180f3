"""Staff pages of experiments (mounted at the site root by config/urls.py)."""

from django.urls import path

from . import views

urlpatterns = [
    path("staff/experiments/", views.experiment_list, name="staff_experiments"),
    path("staff/experiments/<slug:key>/", views.experiment_detail, name="staff_experiment"),
]
