"""A mail backend for tests that need something to happen while the first email is on its way
(a user deleted, the beat ticking on): the `during_first_send` fixture sets it up."""

from django.core.mail.backends.locmem import EmailBackend as LocmemBackend

ACTIONS: list = []


class ActingRelay(LocmemBackend):
    """The locmem backend, which runs the action it was given (once) before sending."""

    def send_messages(self, messages):
        if ACTIONS:
            ACTIONS.pop()()
        return super().send_messages(messages)
