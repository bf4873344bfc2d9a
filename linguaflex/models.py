"""The outbox of e-mails: each notification recorded with the change that causes it, sent once."""

from __future__ import annotations

from django.db import models

from .request_id import current_or_blank


class OutboundEmailStatus(models.TextChoices):
    PENDING = "pending", "Pending"  # recorded with its cause; not (all) sent yet
    SENT = "sent", "Sent"  # handed to the mail server, every recipient
    FAILED = "failed", "Failed"  # given up after the task's retries; see error


class OutboundEmail(models.Model):
    """One notification (a receipt, a booking notice), recorded in the transaction of the change
    that causes it, under a key naming that cause (``kind:object:variant``, unique: a second call
    for the same cause records nothing). The task that sends it holds the row's lock and skips the
    recipients already sent to, so a task that runs twice, or two at once, sends each e-mail once
    (linguaflex/mail.py)."""

    key = models.CharField(max_length=255, unique=True)
    # The dotted path of the function that writes the messages from the object's current rows.
    renderer = models.CharField(max_length=255)
    object_id = models.BigIntegerField()
    variant = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=16, choices=OutboundEmailStatus.choices, default=OutboundEmailStatus.PENDING)
    sent_to = models.JSONField(default=list, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    request_id = models.CharField(max_length=128, blank=True, default=current_or_blank, editable=False,
                                  db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "created_at"])]

    def __str__(self) -> str:
        return f"{self.key} ({self.status})"
