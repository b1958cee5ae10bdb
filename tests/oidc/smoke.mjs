// smoke.mjs -- proves provider.mjs end to end with plain fetch, as a browser would.
//
// Starts provider.mjs on a free port, then walks the authorization code flow
// with PKCE: GET the authorization URL -> the login form (POST prompt=login,
// login=<name>, password=<anything>) -> the consent form (POST prompt=consent)
// -> the redirect to redirect_uri carrying code, state and iss -> POST the
// token endpoint with client_secret_basic and the code_verifier. Prints the ID
// token's header and claims as one JSON line and exits 0; exits 1 on the first
// step that does not go as a browser would see it. Cookies are kept per name
// and path like a browser's; redirects are followed by hand to see each step.
//
//   node tests/oidc/smoke.mjs [--alg RS256|ES256] [--name alice]
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: { alg: { type: 'string', default: 'RS256' }, name: { type: 'string', default: 'alice' } },
});
const clientId = 'smoke-client';
const clientSecret = randomBytes(24).toString('base64url');
const redirectUri = 'http://127.0.0.1:9/signin/oidc/callback';  // never contacted
const b64url = (b) => Buffer.from(b).toString('base64url');
const fail = (msg) => { throw new Error(msg); };

const child = spawn(process.execPath, [new URL('provider.mjs', import.meta.url).pathname,
  '--client-id', clientId, '--client-secret', clientSecret, '--redirect-uri', redirectUri,
  '--alg', args.alg], { stdio: ['ignore', 'pipe', 'inherit'] });
try {
  const [line] = await Promise.race([
    once(createInterface({ input: child.stdout }), 'line'),
    once(child, 'exit').then(() => fail('provider exited before listening')),
  ]);
  const { issuer } = JSON.parse(line);
  const disco = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();

  // A browser's cookie jar, enough for one host: name -> {value, path}.
  const jar = new Map();
  const cookieHeader = (url) => [...jar].filter(([, c]) => new URL(url).pathname.startsWith(c.path))
    .map(([n, c]) => `${n}=${c.value}`).join('; ');
  const go = async (url, init = {}) => {
    const res = await fetch(url, {
      ...init, redirect: 'manual', headers: { ...init.headers, cookie: cookieHeader(url) },
    });
    for (const sc of res.headers.getSetCookie()) {
      const [nv, ...attrs] = sc.split(';').map((s) => s.trim());
      const eq = nv.indexOf('=');
      const path = attrs.find((a) => a.toLowerCase().startsWith('path='))?.slice(5) ?? '/';
      if (attrs.some((a) => /^expires=thu, 01 jan 1970/i.test(a))) jar.delete(nv.slice(0, eq));
      else jar.set(nv.slice(0, eq), { value: nv.slice(eq + 1), path });
    }
    return res;
  };
  const follow = async (res) => {
    while (res.status >= 300 && res.status < 400) {
      const next = new URL(res.headers.get('location'), res.url || issuer).href;
      if (next.startsWith(redirectUri)) return next;
      res = await go(next);
    }
    return res;
  };
  const form = (html, prompt) => {
    const m = html.match(/<form[^>]*action="([^"]+)"[^>]*method="post">\s*<input type="hidden" name="prompt" value="([a-z]+)"/);
    if (!m || m[2] !== prompt) fail(`expected the ${prompt} form, got: ${html.slice(0, 300)}`);
    return new URL(m[1], issuer).href;
  };
  const post = (url, fields) => go(url, {
    method: 'POST', body: new URLSearchParams(fields),
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
  });

  const verifier = b64url(randomBytes(32));
  const state = b64url(randomBytes(32));
  const nonce = b64url(randomBytes(32));
  const auth = new URL(disco.authorization_endpoint);
  auth.search = new URLSearchParams({
    response_type: 'code', client_id: clientId, redirect_uri: redirectUri,
    scope: 'openid email profile', state, nonce,
    code_challenge: b64url(createHash('sha256').update(verifier).digest()),
    code_challenge_method: 'S256',
  });

  let page = await follow(await go(auth.href));
  if (typeof page === 'string' || page.status !== 200) fail(`authorization: HTTP ${page.status}`);
  page = await follow(await post(form(await page.text(), 'login'),
    { prompt: 'login', login: args.name, password: 'any' }));
  if (typeof page === 'string' || page.status !== 200) fail(`after login: HTTP ${page.status}`);
  const back = await follow(await post(form(await page.text(), 'consent'), { prompt: 'consent' }));
  if (typeof back !== 'string') fail(`after consent: HTTP ${back.status} ${await back.text()}`);
  const cb = new URL(back).searchParams;
  if (cb.get('state') !== state) fail('state changed');
  if (cb.get('iss') !== issuer) fail(`iss on the redirect is ${cb.get('iss')}`);
  const code = cb.get('code') ?? fail(`no code: ${back}`);

  const tok = await fetch(disco.token_endpoint, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({
      grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier,
    }),
  });
  const body = await tok.json();
  if (tok.status !== 200) fail(`token endpoint: HTTP ${tok.status} ${JSON.stringify(body)}`);
  const [h, p] = body.id_token.split('.').slice(0, 2).map((s) => JSON.parse(Buffer.from(s, 'base64url')));
  if (p.nonce !== nonce) fail('nonce changed');
  console.log(JSON.stringify({ header: h, claims: p }));
} catch (e) {
  console.error(`smoke: FAIL ${e.message}`);
  process.exitCode = 1;
} finally {
  child.kill('SIGTERM');
}
