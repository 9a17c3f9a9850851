// Security keys and passkeys: the browser half of the WebAuthn ceremonies. The server sends
// options with binary fields as base64url; this converts them, calls navigator.credentials, and
// posts the result back. Loaded only on the pages that need it; no inline script.
(function () {
  'use strict';

  function toBuffer(base64url) {
    var base64 = base64url.replace(/-/g, '+').replace(/_/g, '/');
    while (base64.length % 4) { base64 += '='; }
    var binary = atob(base64);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) { bytes[i] = binary.charCodeAt(i); }
    return bytes.buffer;
  }

  function toBase64url(buffer) {
    var bytes = new Uint8Array(buffer);
    var binary = '';
    for (var i = 0; i < bytes.length; i++) { binary += String.fromCharCode(bytes[i]); }
    return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  async function post(url, csrf, body) {
    var response = await fetch(url, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf },
      body: JSON.stringify(body || {})
    });
    var data = await response.json().catch(function () { return {}; });
    if (!response.ok) { throw new Error(data.error || ('The server answered ' + response.status + '.')); }
    return data;
  }

  function showError(message) {
    var element = document.getElementById('webauthn-error');
    if (element) { element.textContent = message; element.hidden = false; }
  }

  function withIds(list) {
    return (list || []).map(function (item) {
      var copy = Object.assign({}, item);
      copy.id = toBuffer(item.id);
      return copy;
    });
  }

  async function register(button) {
    var csrf = button.dataset.csrf;
    var nameInput = document.getElementById('webauthn-name');
    var options = await post('/account/two-factor/webauthn/register/start', csrf,
      { name: nameInput ? nameInput.value : '', kind: button.dataset.kind || 'security_key' });
    var publicKey = options.publicKey;
    publicKey.challenge = toBuffer(publicKey.challenge);
    publicKey.user.id = toBuffer(publicKey.user.id);
    if (publicKey.excludeCredentials) { publicKey.excludeCredentials = withIds(publicKey.excludeCredentials); }
    var credential = await navigator.credentials.create({ publicKey: publicKey });
    var done = await post('/account/two-factor/webauthn/register/finish', csrf, {
      id: credential.id,
      rawId: toBase64url(credential.rawId),
      type: credential.type,
      response: {
        attestationObject: toBase64url(credential.response.attestationObject),
        clientDataJSON: toBase64url(credential.response.clientDataJSON)
      },
      extensions: credential.getClientExtensionResults ? credential.getClientExtensionResults() : {}
    });
    if (done.recovery_codes) {
      var list = document.getElementById('recovery-codes');
      list.textContent = '';
      done.recovery_codes.forEach(function (code) {
        var item = document.createElement('li');
        item.textContent = code;
        list.appendChild(item);
      });
      document.getElementById('webauthn-recovery-codes').hidden = false;
      var form = document.getElementById('webauthn-register-form');
      if (form) { form.hidden = true; }
    } else {
      window.location.assign(done.next);
    }
  }

  // The factor step (after the password) and signing in with a passkey alone differ only in
  // where they ask: the passkey's answer names its user itself.
  async function login(button) {
    await signIn(button, '/login/two-factor/webauthn/start', '/login/two-factor/webauthn/finish', {});
  }

  async function passkeyLogin(button) {
    await signIn(button, '/login/passkey/start', '/login/passkey/finish', { next: button.dataset.next || '/' });
  }

  async function signIn(button, startUrl, finishUrl, startBody) {
    var csrf = button.dataset.csrf;
    var options = await post(startUrl, csrf, startBody);
    var publicKey = options.publicKey;
    publicKey.challenge = toBuffer(publicKey.challenge);
    if (publicKey.allowCredentials) { publicKey.allowCredentials = withIds(publicKey.allowCredentials); }
    var assertion = await navigator.credentials.get({ publicKey: publicKey });
    var response = assertion.response;
    var done = await post(finishUrl, csrf, {
      id: assertion.id,
      rawId: toBase64url(assertion.rawId),
      type: assertion.type,
      response: {
        authenticatorData: toBase64url(response.authenticatorData),
        clientDataJSON: toBase64url(response.clientDataJSON),
        signature: toBase64url(response.signature),
        userHandle: response.userHandle ? toBase64url(response.userHandle) : null
      },
      extensions: assertion.getClientExtensionResults ? assertion.getClientExtensionResults() : {}
    });
    window.location.assign(done.next);
  }

  function bind(id, action) {
    var button = document.getElementById(id);
    if (!button) { return; }
    if (!window.PublicKeyCredential) {
      showError('This browser does not support security keys or passkeys.');
      button.disabled = true;
      return;
    }
    button.addEventListener('click', function (event) {
      event.preventDefault();
      var stale = document.getElementById('webauthn-error');
      if (stale) { stale.hidden = true; stale.textContent = ''; }
      button.disabled = true;
      action(button).catch(function (error) {
        showError(error && error.message ? error.message : 'The security key was not accepted.');
      }).finally(function () { button.disabled = false; });
    });
  }

  document.addEventListener('DOMContentLoaded', function () {
    bind('webauthn-register', register);
    bind('passkey-register', register);
    bind('webauthn-login', login);
    bind('passkey-login', passkeyLogin);
  });
})();
