// Progressive enhancement of the retail booking form (the form works without it): the price and the traveller
// name rows follow the date and unit choices without pressing "Update price", and a second press of the book
// button while the first is on its way is ignored (the server makes one booking either way).
(function () {
  "use strict";
  var form = document.getElementById("booking-form");
  if (!form || !window.fetch || !window.DOMParser) { return; }
  var quoteButton = form.querySelector(".js-quote-button");
  var bookButton = document.getElementById("book-button");
  var pending = null;

  if (quoteButton) { quoteButton.hidden = true; }

  function swap(fresh, id) {
    var current = document.getElementById(id);
    var replacement = fresh.getElementById(id);
    if (current && replacement) { current.replaceWith(replacement); }
  }

  function refreshQuote() {
    var data = new FormData(form);
    data.set("action", "quote");
    if (pending) { pending.abort(); }
    pending = new AbortController();
    // getAttribute: the "Update price" button is named "action", which shadows form.action.
    fetch(form.getAttribute("action"), {
      method: "POST",
      body: data,
      credentials: "same-origin",
      signal: pending.signal,
      headers: { "X-Requested-With": "fetch" }
    }).then(function (response) {
      if (!response.ok) { throw new Error("quote " + response.status); }
      return response.text();
    }).then(function (html) {
      var fresh = new DOMParser().parseFromString(html, "text/html");
      swap(fresh, "quote");
      swap(fresh, "travellers-slot");
    }).catch(function (error) {
      if (error.name !== "AbortError" && quoteButton) { quoteButton.hidden = false; }  // fall back to the button
    });
  }

  form.addEventListener("change", function (event) {
    var name = event.target.name || "";
    if (name === "departure" || name.indexOf("units_") === 0) { refreshQuote(); }
  });

  // Back from the checkout page (the page may come from the back-forward cache): the form can be sent again.
  window.addEventListener("pageshow", function () {
    form.dataset.sending = "";
    if (bookButton) { bookButton.removeAttribute("aria-busy"); }
  });

  form.addEventListener("submit", function (event) {
    if (event.submitter === quoteButton) { return; }
    if (form.dataset.sending === "yes") { event.preventDefault(); return; }
    form.dataset.sending = "yes";
    if (bookButton) { bookButton.setAttribute("aria-busy", "true"); }
  });
})();
