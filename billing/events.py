"""Analytics events of billing beyond the signup funnel's (registered at startup)."""

SUBSCRIPTION_CANCELED = "subscription_canceled"
SUBSCRIPTION_CANCEL_SCHEDULED = "subscription_cancel_scheduled"
SUBSCRIPTION_CANCEL_WITHDRAWN = "subscription_cancel_withdrawn"
DISPUTE_CLOSED = "dispute_closed"
ADDON_TRIAL_STARTED = "addon_trial_started"
ADDON_ENDED = "addon_ended"

EVENTS = [SUBSCRIPTION_CANCELED, SUBSCRIPTION_CANCEL_SCHEDULED, SUBSCRIPTION_CANCEL_WITHDRAWN, DISPUTE_CLOSED, ADDON_TRIAL_STARTED, ADDON_ENDED]

# Training (billing/services/training.py): a colleague assigned to a course (credits spent),
# an assignment withdrawn (credits back to packs that have not expired), a pack expired.
TRAINING_ASSIGNED = "training_assigned"
TRAINING_WITHDRAWN = "training_withdrawn"
TRAINING_PACK_EXPIRED = "training_pack_expired"

EVENTS += [TRAINING_ASSIGNED, TRAINING_WITHDRAWN, TRAINING_PACK_EXPIRED]
