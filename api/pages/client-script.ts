/**
 * The pages' one script, served from our origin (/pay/assets/pay.js). Progressive enhancement:
 * every page reads and works as plain HTML (stop and dispute are forms); the script adds the
 * provider's card field on the payment page and live figures over Server-Sent Events on the
 * session page. The card is confirmed by the provider's script directly with the provider; our
 * server only hears "confirmed" and asks the provider what really happened.
 */
export const client_script = `(function () {
  'use strict';
  var root = document.getElementById('pay');
  if (!root) return;
  var mode = root.getAttribute('data-mode');
  if (mode === 'pay') {
    var form = document.getElementById('pay-form');
    var button = document.getElementById('pay-button');
    var errors = document.getElementById('card-errors');
    if (typeof window.Stripe !== 'function') {
      errors.textContent = root.getAttribute('data-provider-missing');
      return;
    }
    var provider = window.Stripe(root.getAttribute('data-key'));
    var card = provider.elements().create('card');
    card.mount('#card-element');
    button.disabled = false;
    var busy = false;
    form.addEventListener('submit', function (event) {
      event.preventDefault();
      if (busy) return;
      busy = true;
      button.disabled = true;
      errors.textContent = '';
      provider
        .confirmCardPayment(root.getAttribute('data-secret'), { payment_method: { card: card } })
        .then(function (result) {
          if (result && result.error) errors.textContent = result.error.message || '';
          // The server asks the provider for the outcome either way.
          form.submit();
        }, function () { form.submit(); });
    });
  }
  if (mode === 'live') {
    var status = root.getAttribute('data-status');
    var fields = ['energy', 'cost', 'duration', 'state_text'];
    var source = new EventSource(root.getAttribute('data-events'));
    source.addEventListener('session', function (message) {
      var s = JSON.parse(message.data);
      if (s.status !== status) {
        source.close();
        window.location.reload();
        return;
      }
      for (var i = 0; i < fields.length; i++) {
        var el = document.getElementById(fields[i]);
        if (el && typeof s[fields[i]] === 'string' && el.textContent !== s[fields[i]]) el.textContent = s[fields[i]];
      }
    });
  }
})();
`;
