"""The journey's analytics events, in funnel order. Recording any other name is refused."""

SIGNUP_STARTED = "signup_started"
SIGNED_UP = "signed_up"
EMAIL_VERIFIED = "email_verified"
ORGANIZATION_CREATED = "organization_created"
TRIAL_STARTED = "trial_started"
ENVIRONMENT_REQUESTED = "environment_requested"
ENVIRONMENT_ACTIVE = "environment_active"
ENVIRONMENT_FAILED = "environment_failed"
INVITE_SENT = "invite_sent"
INVITE_ACCEPTED = "invite_accepted"
# Recorded for the inviter (invite_accepted is the invitee's): "invites accepted per user who
# invited" is then an activation metric of an experiment on inviters, such as invite-nudge.
INVITEE_JOINED = "invitee_joined"
JOINED_BY_DOMAIN = "joined_by_domain"
SEAT_LIMIT_REACHED = "seat_limit_reached"
SUBSCRIPTION_STARTED = "subscription_started"
SUBSCRIPTION_PAID = "subscription_paid"
SEATS_ADDED = "seats_added"
# An add-on bought (billing/services/addons.py): its amount counts as revenue once, when it is
# granted (a card payment that succeeded, or a purchase-order invoice issued on net terms).
ADDON_BOUGHT = "addon_bought"
SUBSCRIPTION_RENEWED = "subscription_renewed"
EDITION_CHANGED = "edition_changed"
PAYMENT_FAILED = "payment_failed"
TRIAL_ENDED = "trial_ended"
SUBSCRIPTION_SUSPENDED = "subscription_suspended"
# Money given back on a paid invoice: a refund issued (a credit note), or a dispute lost.
PAYMENT_REFUNDED = "payment_refunded"

# The signup journey's events (the staff funnel page groups them into steps: experiments/selectors.py FUNNEL_STEPS).
SIGNUP_FUNNEL = [
    SIGNUP_STARTED,
    SIGNED_UP,
    EMAIL_VERIFIED,
    ORGANIZATION_CREATED,
    TRIAL_STARTED,
    ENVIRONMENT_REQUESTED,
    ENVIRONMENT_ACTIVE,
    INVITE_SENT,
    INVITE_ACCEPTED,
]

KNOWN_EVENTS = frozenset(
    SIGNUP_FUNNEL
    + [INVITEE_JOINED, ENVIRONMENT_FAILED, JOINED_BY_DOMAIN, SEAT_LIMIT_REACHED, SUBSCRIPTION_STARTED, SUBSCRIPTION_PAID, SEATS_ADDED, ADDON_BOUGHT, SUBSCRIPTION_RENEWED, EDITION_CHANGED, PAYMENT_FAILED, TRIAL_ENDED, SUBSCRIPTION_SUSPENDED,
       PAYMENT_REFUNDED]
)

# In-product prompts (billing/prompts.py), as the product's servers report them through the API,
# and the lifecycle of the organization API keys they authenticate with.
PROMPT_SHOWN = "prompt_shown"
PROMPT_CLICKED = "prompt_clicked"
PROMPT_DISMISSED = "prompt_dismissed"
API_KEY_CREATED = "api_key_created"
API_KEY_ROTATED = "api_key_rotated"
API_KEY_REVOKED = "api_key_revoked"

KNOWN_EVENTS = KNOWN_EVENTS | frozenset(
    [PROMPT_SHOWN, PROMPT_CLICKED, PROMPT_DISMISSED, API_KEY_CREATED, API_KEY_ROTATED, API_KEY_REVOKED]
)

# A unit's first exposure to an experiment (experiments/services.py: experiment_assign).
EXPERIMENT_EXPOSED = "experiment_exposed"

KNOWN_EVENTS = KNOWN_EVENTS | frozenset([EXPERIMENT_EXPOSED])


# Higher apps (onboarding, community, feedback) name their own events in their `events.py` and
# register them from `AppConfig.ready()`, so this base list never imports upward.
_registered: set[str] = set()


def events_register(names: "list[str] | tuple[str, ...] | frozenset[str]") -> None:
    """Allow more event names; called once per app at startup."""
    _registered.update(names)


def event_known(name: str) -> bool:
    return name in KNOWN_EVENTS or name in _registered


# What each event means, in words, for staff pages (the funnel, experiment metrics). A name
# without a label is shown as its words ("seat_limit_reached" -> "Seat limit reached").
EVENT_LABELS = {
    SIGNUP_STARTED: "Opened the signup page",
    SIGNED_UP: "Signed up",
    EMAIL_VERIFIED: "Verified email",
    ORGANIZATION_CREATED: "Created an organization",
    TRIAL_STARTED: "Started a trial",
    ENVIRONMENT_REQUESTED: "Workspace requested",
    ENVIRONMENT_ACTIVE: "Workspace ready",
    ENVIRONMENT_FAILED: "Workspace failed",
    INVITE_SENT: "Invited a colleague",
    INVITE_ACCEPTED: "A colleague joined",
    INVITEE_JOINED: "A colleague they invited joined",
    JOINED_BY_DOMAIN: "Joined by email domain",
    SEAT_LIMIT_REACHED: "Reached the seat limit",
    SUBSCRIPTION_STARTED: "Started a subscription",
    SUBSCRIPTION_PAID: "Paid",
    SEATS_ADDED: "Added seats",
    ADDON_BOUGHT: "Bought an add-on",
    SUBSCRIPTION_RENEWED: "Renewed",
    EDITION_CHANGED: "Changed edition",
    PAYMENT_FAILED: "A payment failed",
    TRIAL_ENDED: "Trial ended",
    SUBSCRIPTION_SUSPENDED: "Subscription suspended",
    PAYMENT_REFUNDED: "Refunded",
}


def event_label(name: str) -> str:
    """An event as staff read it: "invite_sent" -> "Invited a colleague"."""
    return EVENT_LABELS.get(name) or name.replace("_", " ").capitalize()
