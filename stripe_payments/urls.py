from django.urls import path, register_converter

from . import refund_views, views

app_name = "stripe_payments"


class StripeIdConverter:
    """Stripe object ids (pm_..., pi_...): anything else is the JSON 404, before the database."""

    regex = r"[A-Za-z0-9_]{1,255}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(StripeIdConverter, "stripe_id")

urlpatterns = [
    path("add-payment-method/", views.AddPaymentMethodView.as_view(), name="add_payment_method"),
    path("process-payment/", views.ProcessPaymentView.as_view(), name="process_payment"),
    path("payment-methods/", views.PaymentMethodListView.as_view(), name="payment_methods"),
    path("payment-methods/<stripe_id:payment_method_id>/default/", views.PaymentMethodDefaultView.as_view(),
         name="payment_method_default"),
    path("payment-methods/<stripe_id:payment_method_id>/delete/", views.PaymentMethodDeleteView.as_view(),
         name="payment_method_delete"),
    path("payments/", views.PaymentListView.as_view(), name="payments"),
    path("payments/<int:payment_id>/", views.PaymentDetailView.as_view(), name="payment_detail"),
    path("create-payment-intent/", views.CreatePaymentIntentView.as_view(), name="create_payment_intent"),
    path("confirm-payment/", views.ConfirmPaymentView.as_view(), name="confirm_payment"),
    path("payment-return/", views.PaymentReturnView.as_view(), name="payment_return"),
    path("refunds/", refund_views.RefundListCreateView.as_view(), name="refunds"),
    path("refunds/<int:refund_id>/approve/", refund_views.RefundApproveView.as_view(), name="refund_approve"),
    path("refunds/<int:refund_id>/reject/", refund_views.RefundRejectView.as_view(), name="refund_reject"),
    path("admin-refunds/", refund_views.AdminRefundCreateView.as_view(), name="admin_refunds"),
    path("webhook/", refund_views.StripeWebhookView.as_view(), name="webhook"),
]
