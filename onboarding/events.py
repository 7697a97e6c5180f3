"""Analytics events recorded by onboarding (registered with experiments.events at startup)."""

EVENTS: list[str] = []
