from django.urls import path

from . import views

urlpatterns = [
    path("email/unsubscribe/<str:token>/", views.unsubscribe, name="onboarding_unsubscribe"),
    path("email/open/<str:token>.gif", views.open_pixel, name="onboarding_open"),
    path("email/click/<str:token>/", views.click, name="onboarding_click"),
    path("staff/onboarding/", views.staff_report, name="staff_onboarding"),
]
