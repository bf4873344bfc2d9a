"""The ledger for the payments charged before it existed: each one's charge (the fee to the
platform, the share owed to the teacher: nobody had paid teachers) and each counted refund, in the
contract's cumulative split, under the movement names the services use (so they are written once).
Disputes of those payments had no record and are left out, as the payments' own rows leave them."""

from django.db import migrations

CHARGED = ("succeeded", "partially_refunded", "refunded", "disputed")


def _round_half_up_div(numerator: int, denominator: int) -> int:
    return (2 * numerator + denominator) // (2 * denominator)


def backfill(apps, schema_editor):
    Payment = apps.get_model("stripe_payments", "Payment")
    RefundRequest = apps.get_model("stripe_payments", "RefundRequest")
    LedgerEntry = apps.get_model("stripe_payments", "LedgerEntry")
    done = set(LedgerEntry.objects.values_list("movement", flat=True).distinct())
    rows = []
    for p in Payment.objects.filter(status__in=CHARGED).order_by("pk").iterator():
        if f"charge:{p.pk}" not in done:
            for account, kind, cents in (("student", "charge", -p.amount_cents),
                                         ("platform_fees", "fee", p.admin_fee_cents),
                                         ("teacher_owed", "teacher_share", p.teacher_amount_cents)):
                rows.append(LedgerEntry(movement=f"charge:{p.pk}", account=account, kind=kind, amount_cents=cents,
                                        payment_id=p.pk, teacher_id=p.teacher_id,
                                        stripe_object_id=p.stripe_charge_id or ""))
        refunded = fee_before = 0
        for r in RefundRequest.objects.filter(payment_id=p.pk, applied=True).order_by("created_at", "pk"):
            refunded = min(p.amount_cents, refunded + r.amount_cents)
            fee_after = _round_half_up_div(p.admin_fee_cents * refunded, p.amount_cents)
            fee_part, share_part = fee_after - fee_before, r.amount_cents - (fee_after - fee_before)
            fee_before = fee_after
            if f"refund:{r.pk}" in done:
                continue
            for account, kind, cents in (("student", "refund", r.amount_cents), ("platform_fees", "refund", -fee_part),
                                         ("teacher_owed", "refund", -share_part)):
                rows.append(LedgerEntry(movement=f"refund:{r.pk}", account=account, kind=kind, amount_cents=cents,
                                        payment_id=p.pk, teacher_id=p.teacher_id,
                                        stripe_object_id=r.stripe_refund_id or ""))
        if len(rows) >= 1000:
            LedgerEntry.objects.bulk_create(rows)
            rows = []
    LedgerEntry.objects.bulk_create(rows)


class Migration(migrations.Migration):
    dependencies = [("stripe_payments", "0008_dispute")]
    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
