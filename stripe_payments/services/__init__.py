"""Every write that moves money, by concept:

- ``lifecycle``: the payment state machine, the only writer of ``Payment.status``;
- ``cards``: the Stripe customer, adding and saving cards, whose card an id is;
- ``payments``: paying for a gig, 3-D Secure's return, the client-side flow, disputes;
- ``refunds``: refund requests and decisions, admin refunds, decline/cancel/expiry refunds, syncing;
- ``webhooks``: verified Stripe events, stored and processed once;
- ``reconciliation`` and ``consistency``: settling what the API could not, and comparing with Stripe.
``common`` holds what the card and payment services share.
"""
