from django.urls import path, register_converter

from .gateway import STRIPE_ID_PATTERN
from .views import cards, connect, earnings, payments, refunds, webhooks

app_name = "stripe_payments"


class StripeIdConverter:
    """Stripe object ids (pm_..., pi_...): anything else is the JSON 404, before the database."""

    regex = STRIPE_ID_PATTERN

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(StripeIdConverter, "stripe_id")

urlpatterns = [
    path("add-payment-method/", cards.AddPaymentMethodView.as_view(), name="add_payment_method"),
    path("process-payment/", payments.ProcessPaymentView.as_view(), name="process_payment"),
    path("payment-methods/", cards.PaymentMethodListView.as_view(), name="payment_methods"),
    path("payment-methods/<stripe_id:payment_method_id>/default/", cards.PaymentMethodDefaultView.as_view(),
         name="payment_method_default"),
    path("payment-methods/<stripe_id:payment_method_id>/delete/", cards.PaymentMethodDeleteView.as_view(),
         name="payment_method_delete"),
    path("payments/", payments.PaymentListView.as_view(), name="payments"),
    path("payments/<int:payment_id>/", payments.PaymentDetailView.as_view(), name="payment_detail"),
    path("create-payment-intent/", payments.CreatePaymentIntentView.as_view(), name="create_payment_intent"),
    path("confirm-payment/", payments.ConfirmPaymentView.as_view(), name="confirm_payment"),
    path("payment-return/", payments.PaymentReturnView.as_view(), name="payment_return"),
    path("refunds/", refunds.RefundListCreateView.as_view(), name="refunds"),
    path("refunds/<int:refund_id>/approve/", refunds.RefundApproveView.as_view(), name="refund_approve"),
    path("refunds/<int:refund_id>/reject/", refunds.RefundRejectView.as_view(), name="refund_reject"),
    path("admin-refunds/", refunds.AdminRefundCreateView.as_view(), name="admin_refunds"),
    path("webhook/", webhooks.StripeWebhookView.as_view(), name="webhook"),
    path("connect/onboard/", connect.ConnectOnboardView.as_view(), name="connect_onboard"),
    path("connect/status/", connect.ConnectStatusView.as_view(), name="connect_status"),
    path("connect/refresh/", connect.ConnectRefreshView.as_view(), name="connect_refresh"),
    path("connect/return/", connect.ConnectReturnView.as_view(), name="connect_return"),
    path("earnings/", earnings.EarningsView.as_view(), name="earnings"),
]
