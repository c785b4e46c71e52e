// Card payment on the checkout page with Stripe's Payment Element: card details go from the payer's browser to
// Stripe only (PCI SAQ-A). After a successful (or 3-D Secure authenticated) payment the browser goes to the
// confirmation page, which asks the server for the outcome.
(function () {
  "use strict";
  var form = document.getElementById("payment-form");
  if (!form || typeof Stripe === "undefined") { return; }
  var data = form.dataset;
  var stripe = Stripe(data.publishableKey, { locale: data.locale || "auto" });
  var elements = stripe.elements({ clientSecret: data.clientSecret });
  var paymentElement = elements.create("payment", { layout: "tabs" });
  paymentElement.mount("#payment-element");
  var button = document.getElementById("pay-button");
  var message = document.getElementById("payment-message");

  function show(text) {
    message.textContent = text;
    message.hidden = !text;
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    button.disabled = true;
    show("");
    var started = Date.now();
    elements.submit().then(function (submitted) {
      if (submitted.error) { throw submitted.error; }
      return stripe.confirmPayment({
        elements: elements,
        confirmParams: { return_url: data.returnUrl },
        redirect: "if_required"
      });
    }).then(function (result) {
      if (result.error) { throw result.error; }
      try { window.sessionStorage.setItem("tourops-pay-started", String(started)); } catch (e) { /* private mode */ }
      window.location.assign(data.returnUrl);
    }).catch(function (error) {
      var text = error && error.message ? error.message : data.failedMessage;
      if (error && error.type === "validation_error") { text = error.message || data.incompleteMessage; }
      show(text);
      button.disabled = false;
    });
  });
})();
