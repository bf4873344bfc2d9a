"""Output shapes of the Connect onboarding endpoints (teachers' payout accounts)."""

from __future__ import annotations

from rest_framework import serializers


class ConnectOnboardOutputSerializer(serializers.Serializer):
    """The teacher's payout account and a fresh single-use link to Stripe's hosted onboarding."""

    account_id = serializers.CharField(help_text="The teacher's Stripe connected account (acct_...), the same every call")
    onboarding_url = serializers.URLField(help_text="Stripe's hosted onboarding page: single use, minutes long; "
                                                    "open it in a browser")


class ConnectStatusOutputSerializer(serializers.Serializer):
    """The teacher's payout account as last synced from Stripe. Before onboarding has started:
    account_id null, both flags false, requirements_due empty."""

    account_id = serializers.SerializerMethodField()
    charges_enabled = serializers.BooleanField()
    payouts_enabled = serializers.BooleanField()
    requirements_due = serializers.ListField(
        child=serializers.CharField(), help_text="What Stripe still needs (past due first), e.g. "
                                                 "individual.verification.document; empty when nothing is due")

    def get_account_id(self, account) -> str | None:
        return account.stripe_account_id or None


class ConnectReturnOutputSerializer(serializers.Serializer):
    """The teacher's payout account just synced from Stripe, and whether onboarding is done."""

    account_id = serializers.CharField(source="account.stripe_account_id")
    onboarding_complete = serializers.BooleanField(
        help_text="Details submitted, charges and payouts enabled and nothing due")
    details_submitted = serializers.BooleanField(source="account.details_submitted")
    charges_enabled = serializers.BooleanField(source="account.charges_enabled")
    payouts_enabled = serializers.BooleanField(source="account.payouts_enabled")
    requirements_due = serializers.ListField(child=serializers.CharField(), source="account.requirements_due")
