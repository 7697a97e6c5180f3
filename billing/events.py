"""Analytics events of billing beyond the signup funnel's (registered at startup)."""

SUBSCRIPTION_CANCELED = "subscription_canceled"
SUBSCRIPTION_CANCEL_SCHEDULED = "subscription_cancel_scheduled"
SUBSCRIPTION_CANCEL_WITHDRAWN = "subscription_cancel_withdrawn"
DISPUTE_CLOSED = "dispute_closed"

EVENTS = [SUBSCRIPTION_CANCELED, SUBSCRIPTION_CANCEL_SCHEDULED, SUBSCRIPTION_CANCEL_WITHDRAWN, DISPUTE_CLOSED]
