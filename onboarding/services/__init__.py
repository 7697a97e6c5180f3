"""Every write of onboarding, one module per subject.

Modules import one way, each only from those below it (none imports the package itself):

    tracking        opens and clicks
    sending         deliver chunks of sends, each exactly once
    tick            the beat tick that claims due steps, and the sweep
    messages        an email's links, recipient context and message
    rendering       a step's subject and bodies
    suppression     suppression, the shared marketing frequency cap, unsubscribe
    enrolments      enrolment, the plan of the next step, exit
    tokens          the signed tokens of the links
    quiet_hours     quiet hours in the recipient's zone

tick imports onboarding.tasks at the top (to queue the sends); the tasks import their service
inside the task body, so there is no circle. Nothing is re-exported here: import from the module.

Lock order, everywhere: the enrolment row, then its send row. The marketing frequency cap
serializes per address with a transaction-scoped advisory lock, taken after both.
"""
