"""Analytics events recorded by feedback (registered with experiments.events at startup)."""

EVENTS: list[str] = []
