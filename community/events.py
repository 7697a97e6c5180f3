"""Analytics events recorded by community (registered with experiments.events at startup)."""

EVENTS: list[str] = []
