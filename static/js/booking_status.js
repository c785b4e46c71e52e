// The confirmation page follows the booking's status until it is confirmed (or the payment failed), by polling
// a small JSON endpoint: works behind any proxy, no socket needed.
(function () {
  "use strict";
  var box = document.getElementById("booking-status");
  if (!box) { return; }
  var label = document.getElementById("booking-status-label");
  var note = document.getElementById("confirmed-note");
  var url = box.dataset.statusUrl;
  var delay = 1000;
  var deadline = Date.now() + 10 * 60 * 1000;

  function finished(state) {
    return state.confirmed || (state.payment && (state.payment.status === "failed" || state.payment.status === "cancelled"));
  }

  function apply(state) {
    label.textContent = state.status_label;
    label.className = "status status-" + state.status;
    box.dataset.bookingStatus = state.status;
    if (state.payment) { box.dataset.paymentStatus = state.payment.status; }
    if (state.confirmed) {
      note.hidden = false;
      var started = null;
      try { started = window.sessionStorage.getItem("tourops-pay-started"); } catch (e) { /* private mode */ }
      if (started) { box.dataset.payToConfirmedMs = String(Date.now() - Number(started)); }
    }
  }

  function poll() {
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (state) {
        if (state) { apply(state); if (finished(state)) { return; } }
        if (Date.now() < deadline) { setTimeout(poll, delay); delay = Math.min(delay * 1.5, 5000); }
      })
      .catch(function () { if (Date.now() < deadline) { setTimeout(poll, 3000); } });
  }

  if (box.dataset.bookingStatus !== "confirmed" && box.dataset.paymentStatus !== "failed" && box.dataset.paymentStatus !== "cancelled") {
    poll();
  } else if (box.dataset.bookingStatus === "confirmed") {
    apply({ status: "confirmed", status_label: label.textContent, confirmed: true });
  }
})();
