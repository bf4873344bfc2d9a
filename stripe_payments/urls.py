from django.urls import path

from . import views

app_name = "stripe_payments"

urlpatterns = [
    path("add-payment-method/", views.AddPaymentMethodView.as_view(), name="add_payment_method"),
    path("process-payment/", views.ProcessPaymentView.as_view(), name="process_payment"),
    path("payment-methods/", views.PaymentMethodListView.as_view(), name="payment_methods"),
    path("payment-methods/<str:payment_method_id>/default/", views.PaymentMethodDefaultView.as_view(),
         name="payment_method_default"),
    path("payment-methods/<str:payment_method_id>/delete/", views.PaymentMethodDeleteView.as_view(),
         name="payment_method_delete"),
    path("payments/", views.PaymentListView.as_view(), name="payments"),
    path("payments/<int:payment_id>/", views.PaymentDetailView.as_view(), name="payment_detail"),
    path("create-payment-intent/", views.CreatePaymentIntentView.as_view(), name="create_payment_intent"),
    path("confirm-payment/", views.ConfirmPaymentView.as_view(), name="confirm_payment"),
    path("payment-return/", views.PaymentReturnView.as_view(), name="payment_return"),
]
