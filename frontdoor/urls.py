"""The front door's pages: the landing page, the signup entry, the welcome step and /app/."""

from django.urls import path

from . import views

urlpatterns = [
    path("", views.landing, name="landing"),
    path("signup", views.signup_entry, name="signup_entry"),
    path("welcome/", views.welcome, name="welcome"),
    path("welcome/start/", views.organization_start, name="organization_start"),
    path("app/", views.home, name="home"),
]
