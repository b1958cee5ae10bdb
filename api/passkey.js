/*
 * passkey.js -- the only script of the approval pages (served by the api at
 * /static/passkey.js, CSP script-src 'self'). Two jobs:
 *   1. A decision form marked data-passkey="1": before it is sent, ask the
 *      authenticator for an assertion whose challenge is
 *      SHA-256("countersign/vote/v1\n" id "\n" digest "\n" decision "\n"
 *      hex(SHA-256(reason)) "\n" nonce) -- the vote itself, as
 *      lib/cs_webauthn.c cs_webauthn_vote_challenge() computes it -- and
 *      send the assertion with the form.
 *   2. The passkeys page: register a new passkey (options from the server,
 *      navigator.credentials.create, the result posted back).
 * Without JavaScript the pages still show everything; only passkey votes
 * and registration need it, as WebAuthn does.
 */
'use strict';
(function () {
  const enc = new TextEncoder();
  const b64u = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf)))
    .replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  const unb64u = (s) => Uint8Array.from(atob(s.replace(/-/g, '+').replace(/_/g, '/')),
    (c) => c.charCodeAt(0));
  const hex = (buf) => Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, '0')).join('');
  const sha256 = (text) => crypto.subtle.digest('SHA-256', enc.encode(text));
  const put = (form, name, value) => {
    let input = form.querySelector('input[name="' + name + '"]');
    if (!input) {
      input = document.createElement('input');
      input.type = 'hidden';
      input.name = name;
      form.appendChild(input);
    }
    input.value = value;
  };
  const say = (form, text) => {
    const p = form.querySelector('.passkey-status');
    if (p) p.textContent = text;
  };

  const vote = document.querySelector('form[data-passkey="1"]');
  if (vote) {
    vote.addEventListener('submit', async (e) => {
      if (vote.dataset.signed === '1') return;
      e.preventDefault();
      const decision = e.submitter ? e.submitter.value : '';
      const reason = vote.querySelector('[name="reason"]').value;
      const d = vote.dataset;
      try {
        say(vote, 'Confirm with your passkey...');
        const challenge = await sha256(['countersign/vote/v1', d.approval, d.digest, decision,
          hex(await sha256(reason)), d.nonce].join('\n'));
        const cred = await navigator.credentials.get({ publicKey: {
          challenge, rpId: d.rp, userVerification: 'required', timeout: 120000,
          allowCredentials: JSON.parse(d.credentials).map((id) => ({ type: 'public-key', id: unb64u(id) })),
        } });
        put(vote, 'decision', decision);
        put(vote, 'credential_id', b64u(cred.rawId));
        put(vote, 'authenticator_data', b64u(cred.response.authenticatorData));
        put(vote, 'client_data_json', b64u(cred.response.clientDataJSON));
        put(vote, 'signature', b64u(cred.response.signature));
        vote.dataset.signed = '1';
        vote.submit();
      } catch (err) {
        say(vote, 'The passkey did not sign this vote: ' + err.message);
      }
    });
  }

  const reg = document.querySelector('form[data-register="1"]');
  if (reg) {
    reg.addEventListener('submit', async (e) => {
      if (reg.dataset.signed === '1') return;
      e.preventDefault();
      try {
        const o = JSON.parse(reg.dataset.options);
        const cred = await navigator.credentials.create({ publicKey: {
          challenge: unb64u(o.challenge),
          rp: { id: o.rp_id, name: 'Countersign' },
          user: { id: unb64u(o.user_id), name: o.user_name, displayName: o.user_name },
          pubKeyCredParams: [{ type: 'public-key', alg: -7 }, { type: 'public-key', alg: -257 }],
          authenticatorSelection: { userVerification: 'required', residentKey: 'preferred' },
          excludeCredentials: o.exclude.map((id) => ({ type: 'public-key', id: unb64u(id) })),
          attestation: 'none', timeout: 120000,
        } });
        put(reg, 'challenge', o.challenge);
        put(reg, 'client_data_json', b64u(cred.response.clientDataJSON));
        put(reg, 'attestation_object', b64u(cred.response.attestationObject));
        reg.dataset.signed = '1';
        reg.submit();
      } catch (err) {
        say(reg, 'No passkey was registered: ' + err.message);
      }
    });
  }
})();
