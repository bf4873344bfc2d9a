from django.contrib import admin, messages

from .mail import enqueue
from .models import OutboundEmail, OutboundEmailStatus


@admin.register(OutboundEmail)
class OutboundEmailAdmin(admin.ModelAdmin):
    """The e-mail outbox: what was sent, what still waits, what failed (and why). Read-only; a
    failed or stuck one can be sent again (recipients already reached are skipped)."""

    list_display = ["id", "key", "status", "attempts", "created_at", "sent_at"]
    list_filter = ["status"]
    search_fields = ["key", "=request_id"]
    readonly_fields = ["key", "renderer", "object_id", "variant", "status", "sent_to", "attempts", "last_attempt_at", "error",
                       "request_id", "created_at", "sent_at"]
    actions = ["send_again"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return obj is None and request.user.is_staff

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Send the selected e-mails again (unsent recipients only)")
    def send_again(self, request, queryset):
        ids = list(queryset.exclude(status=OutboundEmailStatus.SENT).values_list("pk", flat=True))
        OutboundEmail.objects.filter(pk__in=ids, status=OutboundEmailStatus.FAILED).update(
            status=OutboundEmailStatus.PENDING)
        for email_id in ids:
            enqueue(email_id)
        self.message_user(request, f"{len(ids)} e-mail(s) sent to the queue.", messages.SUCCESS)
