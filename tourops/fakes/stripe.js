/*
 * Stand-in for https://js.stripe.com/v3/ served by tourops.fakes.stripe: the subset of the real Stripe.js API our
 * checkout page uses, with the same names and result shapes, talking to the fake server this script came from.
 *
 *   const stripe = Stripe(publishableKey);
 *   const elements = stripe.elements({clientSecret, appearance, locale});
 *   const payment = elements.create('payment', options); payment.mount('#payment-element');
 *   payment.on('change', e => …); payment.on('ready', e => …);
 *   await elements.submit();                               // {} or {error}
 *   await stripe.confirmPayment({elements, confirmParams: {return_url}, redirect: 'if_required'});
 *                                                          // {paymentIntent} or {error: {type, code, message}}
 *   await stripe.retrievePaymentIntent(clientSecret);      // {paymentIntent} or {error}
 *
 * Card data goes from these inputs to the fake Stripe only (as with real Stripe, never to our server).
 * Styling is done through element.style (CSSOM), never <style> tags or inline style attributes, so the page's
 * Content-Security-Policy needs no 'unsafe-inline'.
 */
(function () {
  'use strict';

  var scriptUrl = new URL(document.currentScript.src);
  var API_BASE = scriptUrl.origin;
  var uid = 0;

  function nextId(prefix) {
    uid += 1;
    return prefix + '-' + uid + '-' + Math.random().toString(36).slice(2, 8);
  }

  function setStyle(element, styles) {
    Object.keys(styles).forEach(function (name) {
      element.style[name] = styles[name];
    });
    return element;
  }

  // Stripe's API takes form encoding with nested keys: card[number]=…, billing_details[address][postal_code]=…
  function formEncode(data, prefix, pairs) {
    pairs = pairs || [];
    Object.keys(data).forEach(function (key) {
      var value = data[key];
      var name = prefix ? prefix + '[' + key + ']' : key;
      if (value === undefined || value === null) return;
      if (typeof value === 'object') formEncode(value, name, pairs);
      else pairs.push(encodeURIComponent(name) + '=' + encodeURIComponent(String(value)));
    });
    return pairs.join('&');
  }

  function apiError(body, status) {
    var error = (body && body.error) || {};
    return {
      type: error.type || (status >= 500 ? 'api_error' : 'invalid_request_error'),
      code: error.code,
      decline_code: error.decline_code,
      message: error.message || 'The payment could not be processed (HTTP ' + status + ').',
      payment_intent: error.payment_intent,
    };
  }

  function request(method, path, params) {
    var url = API_BASE + path;
    var init = {method: method, credentials: 'omit'};
    if (method === 'GET') {
      url += '?' + formEncode(params);
    } else {
      init.headers = {'Content-Type': 'application/x-www-form-urlencoded'};
      init.body = formEncode(params);
    }
    return fetch(url, init).then(
      function (response) {
        return response.json().then(
          function (body) {
            return response.ok ? {body: body} : {error: apiError(body, response.status)};
          },
          function () {
            return {error: apiError(null, response.status)};
          }
        );
      },
      function (failure) {
        return {error: {type: 'api_connection_error', message: 'Could not reach Stripe: ' + failure.message}};
      }
    );
  }

  function intentIdFromSecret(clientSecret) {
    return String(clientSecret || '').split('_secret_')[0];
  }

  // --- Card field validation (messages as Stripe's Payment Element shows them) -------------------------------------

  function digits(value) {
    return String(value || '').replace(/\D/g, '');
  }

  function luhnValid(number) {
    var sum = 0;
    for (var i = 0; i < number.length; i++) {
      var digit = Number(number[number.length - 1 - i]);
      if (i % 2 === 1) {
        digit *= 2;
        if (digit > 9) digit -= 9;
      }
      sum += digit;
    }
    return sum % 10 === 0;
  }

  function parseExpiry(value) {
    var match = String(value || '').match(/^\s*(\d{1,2})\s*\/?\s*(\d{2}|\d{4})\s*$/);
    if (!match) return null;
    var year = Number(match[2]);
    return {month: Number(match[1]), year: year < 100 ? 2000 + year : year};
  }

  var FIELD_CHECKS = {
    number: function (value) {
      var number = digits(value);
      if (!number) return {code: 'incomplete_number', message: 'Your card number is incomplete.'};
      if (number.length < 16) return {code: 'incomplete_number', message: 'Your card number is incomplete.'};
      if (number.length > 16 || !luhnValid(number)) return {code: 'invalid_number', message: 'Your card number is invalid.'};
      return null;
    },
    expiry: function (value) {
      var expiry = parseExpiry(value);
      if (!expiry) return {code: 'incomplete_expiry', message: "Your card's expiration date is incomplete."};
      if (expiry.month < 1 || expiry.month > 12) return {code: 'invalid_expiry_month', message: "Your card's expiration month is invalid."};
      var now = new Date();
      var thisMonth = now.getFullYear() * 12 + now.getMonth() + 1;
      if (expiry.year * 12 + expiry.month < thisMonth) return {code: 'invalid_expiry_year_past', message: "Your card's expiration year is in the past."};
      return null;
    },
    cvc: function (value) {
      var cvc = digits(value);
      if (cvc.length < 3) return {code: 'incomplete_cvc', message: "Your card's security code is incomplete."};
      return null;
    },
    postal: function (value) {
      if (!String(value || '').trim()) return {code: 'incomplete_zip', message: 'Your postal code is incomplete.'};
      return null;
    },
  };

  // --- The Payment Element -----------------------------------------------------------------------------------------

  var FIELDS = [
    {key: 'number', label: 'Card number', autocomplete: 'cc-number', inputmode: 'numeric', placeholder: '1234 1234 1234 1234'},
    {key: 'expiry', label: 'Expiry date (MM / YY)', autocomplete: 'cc-exp', inputmode: 'numeric', placeholder: 'MM / YY'},
    {key: 'cvc', label: 'Security code', autocomplete: 'cc-csc', inputmode: 'numeric', placeholder: 'CVC'},
    {key: 'postal', label: 'Postal code', autocomplete: 'postal-code', inputmode: 'text', placeholder: ''},
  ];

  function PaymentElement(elements, options) {
    this._elements = elements;
    this._options = options || {};
    this._handlers = {};
    this._inputs = {};
    this._errors = {};
    this._root = null;
  }

  PaymentElement.prototype.on = function (event, handler) {
    (this._handlers[event] = this._handlers[event] || []).push(handler);
    return this;
  };

  PaymentElement.prototype.off = function (event, handler) {
    this._handlers[event] = (this._handlers[event] || []).filter(function (h) { return h !== handler; });
    return this;
  };

  PaymentElement.prototype._emit = function (event, payload) {
    (this._handlers[event] || []).forEach(function (handler) { handler(payload); });
  };

  PaymentElement.prototype.mount = function (target) {
    var container = typeof target === 'string' ? document.querySelector(target) : target;
    if (!container) throw new Error('Stripe (fake): mount target not found: ' + target);
    var variables = (this._elements._appearance && this._elements._appearance.variables) || {};
    var self = this;
    var root = setStyle(document.createElement('div'), {
      display: 'grid', gap: '0.75rem', fontFamily: variables.fontFamily || 'system-ui, sans-serif',
    });
    root.setAttribute('data-fake-stripe', 'payment-element');
    FIELDS.forEach(function (field) {
      var wrapper = setStyle(document.createElement('div'), {display: 'flex', flexDirection: 'column', gap: '0.25rem'});
      var input = document.createElement('input');
      input.id = nextId('fake-stripe-' + field.key);
      input.name = field.key;
      input.type = 'text';
      input.autocomplete = field.autocomplete;
      input.setAttribute('inputmode', field.inputmode);
      input.placeholder = field.placeholder;
      setStyle(input, {
        padding: '0.6rem', fontSize: '1rem', border: '1px solid #c7c9d1',
        borderRadius: variables.borderRadius || '4px', color: variables.colorText || '#30313d',
      });
      var label = setStyle(document.createElement('label'), {fontSize: '0.9rem', color: variables.colorText || '#30313d'});
      label.htmlFor = input.id;
      label.textContent = field.label;
      var message = setStyle(document.createElement('div'), {color: variables.colorDanger || '#df1b41', fontSize: '0.85rem'});
      message.setAttribute('role', 'alert');
      input.setAttribute('aria-describedby', message.id = nextId('fake-stripe-error'));
      input.addEventListener('input', function () { self._onInput(field.key, false); });
      input.addEventListener('blur', function () { self._onInput(field.key, true); });
      wrapper.appendChild(label);
      wrapper.appendChild(input);
      wrapper.appendChild(message);
      root.appendChild(wrapper);
      self._inputs[field.key] = input;
      self._errors[field.key] = message;
    });
    container.appendChild(root);
    this._root = root;
    setTimeout(function () { self._emit('ready', {elementType: 'payment'}); }, 0);
    return this;
  };

  PaymentElement.prototype._onInput = function (key, showError) {
    if (showError) this._showError(key, this._inputs[key].value ? FIELD_CHECKS[key](this._inputs[key].value) : null);
    else this._showError(key, null);
    var values = this._values();
    this._emit('change', {
      elementType: 'payment',
      complete: this._firstError() === null,
      empty: Object.keys(values).every(function (k) { return !values[k]; }),
      collapsed: false,
      value: {type: 'card'},
    });
  };

  PaymentElement.prototype._showError = function (key, error) {
    var input = this._inputs[key];
    this._errors[key].textContent = error ? error.message : '';
    input.setAttribute('aria-invalid', error ? 'true' : 'false');
    input.style.borderColor = error ? '#df1b41' : '#c7c9d1';
  };

  PaymentElement.prototype._values = function () {
    var values = {};
    var inputs = this._inputs;
    Object.keys(inputs).forEach(function (key) { values[key] = inputs[key].value; });
    return values;
  };

  PaymentElement.prototype._firstError = function (show) {
    var first = null;
    var self = this;
    FIELDS.forEach(function (field) {
      var error = FIELD_CHECKS[field.key](self._inputs[field.key] ? self._inputs[field.key].value : '');
      if (show) self._showError(field.key, error);
      if (error && !first) first = error;
    });
    return first;
  };

  PaymentElement.prototype._paymentMethodParams = function () {
    var values = this._values();
    var expiry = parseExpiry(values.expiry);
    return {
      type: 'card',
      card: {number: digits(values.number), exp_month: expiry.month, exp_year: expiry.year, cvc: digits(values.cvc)},
      billing_details: {address: {postal_code: values.postal.trim()}},
    };
  };

  PaymentElement.prototype.unmount = function () {
    if (this._root && this._root.parentNode) this._root.parentNode.removeChild(this._root);
    this._root = null;
  };

  PaymentElement.prototype.destroy = PaymentElement.prototype.unmount;

  PaymentElement.prototype.focus = function () {
    if (this._inputs.number) this._inputs.number.focus();
  };

  PaymentElement.prototype.update = function (options) {
    Object.assign(this._options, options || {});
  };

  // --- Elements group -----------------------------------------------------------------------------------------------

  function Elements(stripe, options) {
    options = options || {};
    this._stripe = stripe;
    this._clientSecret = options.clientSecret;
    this._appearance = options.appearance;
    this._locale = options.locale;  // labels stay English in the fake: browser tests look them up by that text
    this._payment = null;
  }

  Elements.prototype.create = function (type, options) {
    if (type !== 'payment') throw new Error("Stripe (fake): only the 'payment' element is implemented, not '" + type + "'");
    this._payment = new PaymentElement(this, options);
    return this._payment;
  };

  Elements.prototype.getElement = function (type) {
    return type === 'payment' ? this._payment : null;
  };

  Elements.prototype.update = function (options) {
    if (options && options.appearance) this._appearance = options.appearance;
    if (options && options.locale) this._locale = options.locale;
  };

  Elements.prototype._validate = function () {
    if (!this._payment || !this._payment._root) {
      return {type: 'validation_error', code: 'incomplete', message: 'The Payment Element is not mounted.'};
    }
    var error = this._payment._firstError(true);
    return error ? {type: 'validation_error', code: error.code, message: error.message} : null;
  };

  Elements.prototype.submit = function () {
    var error = this._validate();
    return Promise.resolve(error ? {error: error} : {});
  };

  // --- 3-D Secure challenge (real Stripe shows the bank's page in a modal iframe) -------------------------------

  function authenticationChallenge() {
    return new Promise(function (resolve) {
      var overlay = setStyle(document.createElement('div'), {
        position: 'fixed', inset: '0', background: 'rgba(0,0,0,0.45)', display: 'flex',
        alignItems: 'center', justifyContent: 'center', zIndex: '2147483647',
      });
      var dialog = setStyle(document.createElement('div'), {
        background: '#fff', padding: '1.5rem', borderRadius: '8px', maxWidth: '24rem',
        fontFamily: 'system-ui, sans-serif', boxShadow: '0 8px 24px rgba(0,0,0,0.3)',
      });
      var titleId = nextId('fake-stripe-3ds-title');
      dialog.setAttribute('role', 'dialog');
      dialog.setAttribute('aria-modal', 'true');
      dialog.setAttribute('aria-labelledby', titleId);
      var title = setStyle(document.createElement('h2'), {fontSize: '1.2rem', margin: '0 0 0.5rem'});
      title.id = titleId;
      title.textContent = '3D Secure authentication';
      var text = document.createElement('p');
      text.textContent = 'Your bank asks you to confirm this payment (test mode).';
      var buttons = setStyle(document.createElement('div'), {display: 'flex', gap: '0.5rem', marginTop: '1rem'});
      function button(label, success) {
        var element = setStyle(document.createElement('button'), {padding: '0.5rem 0.9rem', cursor: 'pointer'});
        element.type = 'button';
        element.textContent = label;
        element.addEventListener('click', function () {
          overlay.parentNode.removeChild(overlay);
          resolve(success);
        });
        return element;
      }
      var complete = button('Complete authentication', true);
      buttons.appendChild(complete);
      buttons.appendChild(button('Fail authentication', false));
      dialog.appendChild(title);
      dialog.appendChild(text);
      dialog.appendChild(buttons);
      overlay.appendChild(dialog);
      document.body.appendChild(overlay);
      complete.focus();
    });
  }

  // --- Stripe ---------------------------------------------------------------------------------------------------

  function publicIntent(intent) {
    var keys = ['id', 'object', 'amount', 'currency', 'status', 'client_secret', 'payment_method', 'next_action',
      'last_payment_error', 'capture_method', 'created', 'description', 'livemode', 'setup_future_usage'];
    var result = {};
    keys.forEach(function (key) { if (key in intent) result[key] = intent[key]; });
    return result;
  }

  function StripeClient(publishableKey, options) {
    if (!(this instanceof StripeClient)) return new StripeClient(publishableKey, options);
    if (typeof publishableKey !== 'string' || publishableKey.indexOf('pk_') !== 0) {
      throw new Error('Stripe (fake): Stripe() needs a publishable key (pk_…), got ' + publishableKey);
    }
    this._key = publishableKey;
    this._options = options || {};
  }

  StripeClient.prototype.elements = function (options) {
    return new Elements(this, options);
  };

  StripeClient.prototype.retrievePaymentIntent = function (clientSecret) {
    var id = intentIdFromSecret(clientSecret);
    return request('GET', '/v1/payment_intents/' + id, {key: this._key, client_secret: clientSecret}).then(function (answer) {
      return answer.error ? {error: answer.error} : {paymentIntent: publicIntent(answer.body)};
    });
  };

  StripeClient.prototype._finish = function (intent, confirmParams, redirect) {
    if (intent.status === 'requires_payment_method' && intent.last_payment_error) {
      var failure = intent.last_payment_error;
      return {error: {
        type: failure.type || 'card_error', code: failure.code, decline_code: failure.decline_code,
        message: failure.code === 'payment_intent_authentication_failure'
          ? 'We are unable to authenticate your payment method. Please choose a different payment method and try again.'
          : failure.message,
        payment_intent: publicIntent(intent),
      }};
    }
    if (redirect === 'if_required') return {paymentIntent: publicIntent(intent)};
    var target = new URL(confirmParams.return_url, window.location.href);
    target.searchParams.set('payment_intent', intent.id);
    target.searchParams.set('payment_intent_client_secret', intent.client_secret);
    target.searchParams.set('redirect_status', intent.status === 'succeeded' ? 'succeeded' : intent.status);
    window.location.assign(target.toString());
    return new Promise(function () {});  // like Stripe.js: the page is leaving
  };

  StripeClient.prototype.confirmPayment = function (options) {
    var self = this;
    options = options || {};
    var elements = options.elements;
    var confirmParams = options.confirmParams || {};
    var redirect = options.redirect || 'always';
    if (!elements || !(elements instanceof Elements)) {
      return Promise.resolve({error: {type: 'invalid_request_error', code: 'parameter_missing',
        message: 'confirmPayment needs the `elements` instance that created the Payment Element.'}});
    }
    if (redirect !== 'if_required' && !confirmParams.return_url) {
      return Promise.resolve({error: {type: 'invalid_request_error', code: 'parameter_missing',
        message: 'confirmParams.return_url is required unless redirect is "if_required".'}});
    }
    var clientSecret = options.clientSecret || elements._clientSecret;
    var intentId = intentIdFromSecret(clientSecret);
    var invalid = elements._validate();
    if (invalid) return Promise.resolve({error: invalid});

    var methodParams = elements._payment._paymentMethodParams();
    methodParams.key = self._key;
    return request('POST', '/v1/payment_methods', methodParams).then(function (created) {
      if (created.error) return {error: created.error};
      var confirm = {payment_method: created.body.id, client_secret: clientSecret, key: self._key};
      if (confirmParams.return_url) confirm.return_url = confirmParams.return_url;
      return request('POST', '/v1/payment_intents/' + intentId + '/confirm', confirm).then(function (confirmed) {
        if (confirmed.error) return {error: confirmed.error};
        var intent = confirmed.body;
        if (intent.status !== 'requires_action') return self._finish(intent, confirmParams, redirect);
        return authenticationChallenge().then(function (success) {
          var params = {client_secret: clientSecret, success: success ? 'true' : 'false', key: self._key};
          return request('POST', '/v1/payment_intents/' + intentId + '/_authenticate', params).then(function (done) {
            if (done.error) return {error: done.error};
            return self._finish(done.body, confirmParams, redirect);
          });
        });
      });
    });
  };

  window.Stripe = StripeClient;
})();
