"""What each demo workspace shows: a few believable records per product, the same for every
organization (the demo has no database), plus what the person created in this session."""

from __future__ import annotations

# Each product: its look, its one "success" action (reported to Flywheel through the kit as
# `created` and as the success moment `first_success`), what it reports on every page view
# (`viewed`: both names are among its catalog activity_events), and its records.
PRODUCTS = {
    "tracker": {
        "name": "Tracker",
        "accent": "tracker",
        "nav": ["Board", "Backlog", "Roadmap", "Reports"],
        "viewed": "board_viewed",
        "created": "card_created",
        "action": {"label": "Create a card", "field": "Card title", "placeholder": "e.g. Add due dates to cards",
                   "done": "Card created"},
    },
    "wiki": {
        "name": "Wiki",
        "accent": "wiki",
        "nav": ["Pages", "Recent", "Templates", "Starred"],
        "viewed": "page_viewed",
        "created": "page_created",
        "action": {"label": "Create a page", "field": "Page title", "placeholder": "e.g. On-call handbook",
                   "done": "Page created"},
    },
    "servicedesk": {
        "name": "Service Desk",
        "accent": "servicedesk",
        "nav": ["Queue", "Customers", "Knowledge base", "Reports"],
        "viewed": "queue_viewed",
        "created": "ticket_created",
        "action": {"label": "Log a request", "field": "Subject", "placeholder": "e.g. Cannot sign in to the VPN",
                   "done": "Request logged"},
    },
}

BOARD = [
    ("To do", [
        ("FLY-142", "Export invoices as CSV", "Feature", "DK"),
        ("FLY-139", "Keyboard shortcut for assigning", "Feature", "SM"),
        ("FLY-137", "Empty state for the roadmap", "Design", "AL"),
    ]),
    ("In progress", [
        ("FLY-131", "Board is slow past 200 issues", "Bug", "DK"),
        ("FLY-128", "Link commits from GitHub", "Feature", "RB"),
    ]),
    ("Done", [
        ("FLY-120", "Dark mode for the board", "Design", "AL"),
        ("FLY-117", "Fix timezone of due dates", "Bug", "SM"),
    ]),
]

PAGE_TREE = [
    ("Engineering", ["Onboarding checklist", "Architecture overview", "Deploying to production", "Runbooks"]),
    ("Product", ["Roadmap 2027", "Research notes", "Release notes"]),
    ("Company", ["Holidays and time off", "Expense policy", "Who does what"]),
]
WIKI_PAGE = {
    "title": "Architecture overview",
    "updated": "Edited 2 days ago by Sam Meyer",
    "paragraphs": [
        "Our platform is three services behind one gateway: the web app, the API and the worker. "
        "They share one PostgreSQL database and talk through a Redis queue.",
        "Every change reaches production through the same pipeline: a pull request, its checks, a "
        "review, then an automatic deploy to staging and a one-click promotion.",
    ],
    "sections": [
        ("Services", ["Web app: pages and sign-in", "API: the public JSON API", "Worker: emails, exports, imports"]),
        ("On call", ["Primary and secondary rotate weekly", "Runbooks live under Engineering › Runbooks"]),
    ],
}

QUEUE = [
    ("SD-2041", "Cannot reset my password", "Priya N.", "High", "Waiting on us", "12 min"),
    ("SD-2039", "Invoice shows the wrong VAT number", "Marco R.", "Medium", "Waiting on us", "48 min"),
    ("SD-2036", "Request: access to the analytics workspace", "Jon T.", "Low", "In progress", "2 h"),
    ("SD-2030", "Laptop will not connect to the office Wi-Fi", "Elif K.", "High", "Waiting on customer", "5 h"),
    ("SD-2027", "How do I export last month's report?", "Ana S.", "Low", "Resolved", "1 d"),
]

CREATED_LIMIT = 12  # what a session keeps of the person's own records (a cookie is small)


def board_with(created: list[str], initial: str) -> list[dict]:
    """The board's columns, the person's own cards first in "To do"."""
    columns = []
    for number, (name, cards) in enumerate(BOARD):
        items = [
            {"key": key, "title": title, "label": label, "who": who, "new": False}
            for key, title, label, who in cards
        ]
        if number == 0:
            first = 143
            own = [
                {"key": f"FLY-{first + len(created) - index - 1}", "title": title, "label": "Task", "who": initial,
                 "new": True}
                for index, title in enumerate(created)
            ]
            items = own + items
        columns.append({"name": name, "cards": items})
    return columns


def queue_with(created: list[str], requester: str) -> list[dict]:
    """The queue, the person's own requests first."""
    first = 2042
    own = [
        {"key": f"SD-{first + len(created) - index - 1}", "subject": title, "requester": requester,
         "priority": "Medium", "status": "New", "waiting": "just now", "new": True}
        for index, title in enumerate(created)
    ]
    return own + [
        {"key": key, "subject": subject, "requester": name, "priority": priority, "status": status,
         "waiting": waiting, "new": False}
        for key, subject, name, priority, status, waiting in QUEUE
    ]
