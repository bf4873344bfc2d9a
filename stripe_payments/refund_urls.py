"""Routes of the money lifecycle after a payment (refunds, webhook), under /stripe-payments/."""

from django.urls import path

from . import refund_views

app_name = "stripe_payments_lifecycle"

urlpatterns = [
    path("refunds/", refund_views.RefundListCreateView.as_view(), name="refunds"),
    path("refunds/<int:refund_id>/approve/", refund_views.RefundApproveView.as_view(), name="refund_approve"),
    path("refunds/<int:refund_id>/reject/", refund_views.RefundRejectView.as_view(), name="refund_reject"),
    path("admin-refunds/", refund_views.AdminRefundCreateView.as_view(), name="admin_refunds"),
    path("webhook/", refund_views.StripeWebhookView.as_view(), name="webhook"),
]
