# Stripe's text about a failure is kept for admins; the student's failure_message is rewritten.

from django.db import migrations, models

from stripe_payments.decline_messages import customer_message


def messages_for_students(apps, schema_editor):
    """A payment that failed before this migration holds Stripe's text in failure_message: that
    text moves to provider_failure_message and the student gets the message for its codes."""
    Payment = apps.get_model("stripe_payments", "Payment")
    failed = Payment.objects.exclude(failure_code="").filter(provider_failure_message="")
    for payment in failed.only("pk", "failure_code", "decline_code", "failure_message").iterator():
        Payment.objects.filter(pk=payment.pk).update(
            provider_failure_message=payment.failure_message,
            failure_message=customer_message(payment.failure_code, payment.decline_code or None),
        )


def messages_back(apps, schema_editor):
    Payment = apps.get_model("stripe_payments", "Payment")
    Payment.objects.exclude(provider_failure_message="").update(failure_message=models.F("provider_failure_message"))


class Migration(migrations.Migration):

    dependencies = [
        ('stripe_payments', '0005_payment_idempotency_key'),
    ]

    operations = [
        migrations.AddField(
            model_name='payment',
            name='provider_failure_message',
            field=models.CharField(blank=True, max_length=500),
        ),
        migrations.RunPython(messages_for_students, messages_back),
    ]
