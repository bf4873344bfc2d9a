"""Teachers' Stripe Connect onboarding: the connected account (created once), hosted onboarding
links, and keeping the account's state in step with Stripe.

Rules that hold throughout:
- A teacher has at most one connected account: Stripe's idempotency key is derived from the
  teacher (``keys.user_scoped_key``) and the OneToOne on ``ConnectedAccount.teacher`` settles a race
  between two first calls (the loser uses the winner's row; Stripe answered both with one account).
- Every onboarding call makes a fresh account link (Stripe's are single use and minutes long).
  Its refresh and return URLs are this API's, carrying a signed token naming the account: the
  browser comes back without a JWT.
- ``account_sync`` re-reads the account from Stripe under the row's lock, so replays, late and
  reordered ``account.updated`` events all converge on Stripe's current state; an event whose
  account the row already records as it says makes no Stripe call (``account_event_apply``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode

from django.core import signing
from django.db import IntegrityError, transaction
from django.urls import reverse

from linguaflex.errors import ValidationFailed

from .. import gateway, keys
from ..models import ConnectedAccount
from .common import ensure_teacher

# The onboarding links' refresh and return URLs carry this token: how long it is honoured.
LINK_TOKEN_MAX_AGE = timedelta(days=7)
_TOKEN_SALT = "stripe_payments.connect.onboarding-link"


class InvalidOnboardingLink(ValidationFailed):
    """400: the refresh or return URL's token is missing, tampered with, expired or names no account."""

    message = "This onboarding link is not valid or has expired. Start onboarding again from the LinguaFlex app."


# --- the signed token of the refresh and return URLs ------------------------------------------------------
def link_token(account: ConnectedAccount) -> str:
    """Names the row and its Stripe account: a token made before a database reset never names
    another teacher's row that got the same id."""
    return signing.dumps([account.pk, account.stripe_account_id], salt=_TOKEN_SALT)


def account_for_token(token: str) -> ConnectedAccount:
    try:
        pk, stripe_account_id = signing.loads(token or "", salt=_TOKEN_SALT, max_age=LINK_TOKEN_MAX_AGE)
    except (signing.BadSignature, TypeError, ValueError):  # SignatureExpired is a BadSignature
        raise InvalidOnboardingLink(fields={"token": ["Invalid or expired."]}) from None
    account = ConnectedAccount.objects.filter(pk=pk, stripe_account_id=stripe_account_id).first()
    if account is None:
        raise InvalidOnboardingLink(fields={"token": ["Invalid or expired."]})
    return account


def _url(base_url: str, name: str, token: str) -> str:
    return f"{base_url.rstrip('/')}{reverse(name)}?{urlencode({'token': token})}"


# --- onboarding -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class OnboardResult:
    """The teacher's account and a fresh hosted-onboarding link (ConnectOnboardOutputSerializer)."""

    account_id: str
    onboarding_url: str


def _account_get_or_create(*, teacher) -> ConnectedAccount:
    existing = ConnectedAccount.objects.filter(teacher=teacher).first()
    if existing is not None:
        return existing
    result = gateway.account_create(email=teacher.email, teacher_id=teacher.pk,
                                    idempotency_key=keys.user_scoped_key(teacher, "connect-account", "create"))
    try:
        with transaction.atomic():
            return ConnectedAccount.objects.create(
                teacher=teacher, stripe_account_id=result.id, charges_enabled=result.charges_enabled,
                payouts_enabled=result.payouts_enabled, details_submitted=result.details_submitted,
                transfers_active=result.transfers_active, requirements_due=list(result.requirements_due),
            )
    except IntegrityError:
        # A concurrent first call recorded it (Stripe answered both with the same account).
        return ConnectedAccount.objects.get(teacher=teacher)


def _onboarding_link(*, account: ConnectedAccount, base_url: str) -> OnboardResult:
    token = link_token(account)
    url = gateway.account_link_create(
        account_id=account.stripe_account_id,
        refresh_url=_url(base_url, "stripe_payments:connect_refresh", token),
        return_url=_url(base_url, "stripe_payments:connect_return", token),
    )
    return OnboardResult(account_id=account.stripe_account_id, onboarding_url=url)


def connect_onboard(*, teacher, base_url: str) -> OnboardResult:
    """The teacher's connected account (created at Stripe on the first call only) and a fresh
    onboarding link for it. Raises ``Forbidden`` (403) for anyone but a teacher."""
    ensure_teacher(teacher)
    account = _account_get_or_create(teacher=teacher)
    return _onboarding_link(account=account, base_url=base_url)


def connect_status(*, teacher) -> ConnectedAccount | None:
    """The teacher's connected account as last synced, or None before onboarding (no Stripe call)."""
    ensure_teacher(teacher)
    return ConnectedAccount.objects.filter(teacher=teacher).first()


def connect_refresh(*, token: str, base_url: str) -> OnboardResult:
    """Stripe sent the browser to the refresh URL (the link was used or expired): a new link."""
    return _onboarding_link(account=account_for_token(token), base_url=base_url)


@dataclass(frozen=True)
class ConnectReturn:
    """What the return page says about the account (ConnectReturnOutputSerializer)."""

    account: ConnectedAccount

    @property
    def onboarding_complete(self) -> bool:
        a = self.account
        return a.details_submitted and a.charges_enabled and a.payouts_enabled and not a.requirements_due


def connect_return(*, token: str) -> ConnectReturn:
    """Stripe sent the browser back from onboarding (finished or not): sync from Stripe."""
    account = account_for_token(token)
    synced = account_sync(account_id=account.stripe_account_id)
    return ConnectReturn(synced or account)


# --- keeping in step with Stripe --------------------------------------------------------------------
_SYNCED_FIELDS = ("charges_enabled", "payouts_enabled", "details_submitted", "transfers_active", "requirements_due")


def account_event_apply(*, account_id: str, state: dict, event_created: int = 0) -> ConnectedAccount | None:
    """``account.updated``: when the row already records what the verified event's copy of the
    account says, only the event's time is kept (no Stripe call); otherwise ``account_sync``
    re-reads the account once. None for an account that is not ours (no Stripe call)."""
    if all(name in state for name in _SYNCED_FIELDS):
        with transaction.atomic():
            account = ConnectedAccount.objects.select_for_update().filter(stripe_account_id=account_id).first()
            if account is None:
                return None
            if all(getattr(account, name) == state[name] for name in _SYNCED_FIELDS):
                if int(event_created or 0) > account.synced_at:
                    account.synced_at = int(event_created)
                    account.save(update_fields=["synced_at", "updated_at"])
                return account
    return account_sync(account_id=account_id, event_created=event_created)


def account_sync(*, account_id: str, event_created: int = 0) -> ConnectedAccount | None:
    """Re-read the connected account from Stripe and store its state; None for an account that
    is not ours (no Stripe call).

    Stripe is read while the row is locked, so of two concurrent syncs the later one writes the
    later state; an event's own copy is never used, so a replayed or older event writes Stripe's
    current state too. ``synced_at`` keeps the newest event time seen."""
    with transaction.atomic():
        account = ConnectedAccount.objects.select_for_update().filter(stripe_account_id=account_id).first()
        if account is None:
            return None
        try:
            current = gateway.account_retrieve(account_id)
        except gateway.ProviderInvalidRequest as exc:
            if exc.stripe_code != "resource_missing":
                raise
            # Deleted (or rejected and removed) at Stripe: it can receive nothing any more.
            current = gateway.AccountResult(id=account_id, charges_enabled=False, payouts_enabled=False,
                                            details_submitted=account.details_submitted, transfers_active=False,
                                            requirements_due=list(account.requirements_due))
        account.charges_enabled = current.charges_enabled
        account.payouts_enabled = current.payouts_enabled
        account.details_submitted = current.details_submitted
        account.transfers_active = current.transfers_active
        account.requirements_due = list(current.requirements_due)
        account.synced_at = max(account.synced_at, int(event_created or 0))
        account.save(update_fields=["charges_enabled", "payouts_enabled", "details_submitted", "transfers_active",
                                    "requirements_due", "synced_at", "updated_at"])
    return account
