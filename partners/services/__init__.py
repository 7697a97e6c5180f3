"""Partners' writes, one module per subject. Modules import one way, down this list (a module
imports only from the modules below it), and no name starting with "_" crosses a module.
Nothing is re-exported here: import from the module.

    on_behalf      a partner adds seats, changes the edition, starts a trial for a linked customer
    quotes         make, withdraw and accept quotes (partner and direct), their numbers
    direct         a customer moves to direct billing (at renewal, or now)
    requests       "ask <partner>": a customer's request, the partner's inbox
    links          invite, request, accept, decline, withdraw, end a partner link
    applications   apply, approve, decline; tiers
    notify         partner emails: to the partner's admins and contact, to the customer's admins
    audit          the audit log every partner action writes to

Partners calls billing through billing's services; billing never imports partners.
"""
