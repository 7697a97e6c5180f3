"""Partners' pages: partner.py (the partner's own), quotes.py and on_behalf.py (quotes and
buying for a customer), customer.py (what a customer sees of its partner)."""
