"""The staff home (/staff/): every staff page with its headline figures.

Not a Django app (no models): a page in the top layer, because its figures come from several
apps (experiments, onboarding, community, feedback, billing), each read through that app's own
selectors. Nothing below the top layer imports it.
"""
