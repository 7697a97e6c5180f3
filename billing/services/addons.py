"""Add-ons: price (for the rest of the period), buy by card or on purchase-order terms, start a trial, remove at the period end and keep."""
