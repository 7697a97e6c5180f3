from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("w/<uuid:environment>/", views.workspace, name="workspace"),
    path("w/<uuid:environment>/create", views.create, name="create"),
    path("w/<uuid:environment>/flywheel-token", views.flywheel_token, name="flywheel_token"),
    path("sign-out", views.sign_out, name="sign_out"),
]
