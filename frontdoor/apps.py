from django.apps import AppConfig


class FrontdoorConfig(AppConfig):
    """The public and signed-in shell: landing, signup entry, welcome, the app home. No models."""

    name = "frontdoor"
