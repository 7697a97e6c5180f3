from django.urls import path

from . import views

urlpatterns = [
    path("community/", views.question_list, name="community"),
    path("community/ask/", views.question_ask, name="community_ask"),
    path("community/q/<uuid:public_id>/", views.question_detail, name="community_question"),
    path("community/q/<uuid:public_id>/edit/", views.question_edit, name="community_question_edit"),
    path("community/q/<uuid:public_id>/revisions/", views.revisions, name="community_revisions"),
    path("community/q/<uuid:public_id>/answer/", views.answer_create, name="community_answer"),
    path("community/q/<uuid:public_id>/comment/", views.comment_create, name="community_comment"),
    path("community/q/<uuid:public_id>/vote/", views.vote, name="community_vote"),
    path("community/q/<uuid:public_id>/flag/", views.flag, name="community_flag"),
    path("community/q/<uuid:public_id>/close/", views.close, name="community_close"),
    path("community/q/<uuid:public_id>/delete/", views.delete, name="community_delete"),
    path("community/q/<uuid:public_id>/review/", views.review, name="community_review"),
    path("community/a/<uuid:public_id>/edit/", views.answer_edit, name="community_answer_edit"),
    path("community/a/<uuid:public_id>/accept/", views.accept, name="community_accept"),
    path("community/unsubscribe/<str:token>/", views.unsubscribe, name="community_unsubscribe"),
    path("staff/community/queue/", views.support_queue, name="community_support_queue"),
    path("staff/community/queue/<int:escalation_id>/reassign/", views.escalation_reassign, name="community_reassign"),
    path("staff/community/metrics/", views.metrics, name="community_metrics"),
    path("staff/community/moderation/", views.moderation, name="community_moderation"),
]
