from django.urls import path

from . import views

urlpatterns = [
    path("app/feedback/", views.report, name="feedback_report"),
    path("feedback/reports/unsubscribe/<str:token>/", views.reports_unsubscribe, name="feedback_reports_unsubscribe"),
    path("staff/feedback/", views.staff_report, name="feedback_staff_report"),
    path("staff/feedback/responses/<uuid:response_id>/category", views.staff_categorize, name="feedback_categorize"),
    path("staff/feedback/follow-ups/", views.staff_follow_ups, name="feedback_follow_ups"),
    path("staff/feedback/follow-ups/<uuid:follow_up_id>/", views.staff_follow_up, name="feedback_follow_up"),
]
