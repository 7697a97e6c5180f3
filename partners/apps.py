from django.apps import AppConfig


class PartnersConfig(AppConfig):
    name = "partners"
    verbose_name = "Channel partners"

    def ready(self) -> None:
        from . import receivers  # noqa: F401
