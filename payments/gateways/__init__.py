"""Payment gateways behind one interface (``base.PaymentGateway``): Stripe first, PayPal as the fallback.

``payments.services`` is the only caller; it never holds a database lock while a gateway is called."""
