from django.dispatch import Signal

# environment: a product environment just became active.
environment_activated = Signal()
