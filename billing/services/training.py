"""Training: assign a colleague to a course (credits drawn from packs, soonest expiry first), withdraw, and the expiry clock."""
