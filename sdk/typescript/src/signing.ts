/**
 * Signing request envelopes for Countersign's Kafka requests topic.
 *
 * The worker accepts a record on `<prefix>.requests` only when it carries the
 * header `countersign-signature: t=<unix>,k=<key id>,v1=<hex>`, where `v1` is
 * HMAC-SHA256 over `"<t>." + value` keyed with the agent's signing secret
 * (`countersign agent key create AGENT` prints the key id and the secret
 * once). Sign the exact bytes you produce, just before producing: a `t` more
 * than the worker's replay window (5 minutes by default) away from the
 * broker's time is refused as stale.
 *
 *   const value = JSON.stringify(envelope);
 *   await producer.send({ topic: "countersign.requests", messages: [{
 *     key: envelope.request_id, value,
 *     headers: { [SIGNATURE_HEADER]: await signEnvelope(value, { keyId, secret }) } }] });
 *
 * Web Crypto (globalThis.crypto.subtle): no dependency, Node >= 20 or a browser.
 */

export const SIGNATURE_HEADER = "countersign-signature";

export interface SignEnvelopeOptions {
  /** The key id, `csk_` and 16 lower-case hex digits. */
  keyId: string;
  /** The 64 lower-case hex digits printed once when the key was made. */
  secret: string;
  /** Unix seconds; default now. */
  timestamp?: number;
}

/**
 * The `countersign-signature` header value for record value `value` (the
 * exact bytes produced; a string is UTF-8 encoded). Throws TypeError on a
 * malformed key id or secret.
 */
export async function signEnvelope(
  value: string | Uint8Array,
  options: SignEnvelopeOptions,
): Promise<string> {
  const { keyId, secret } = options;
  if (!/^csk_[0-9a-f]{16}$/.test(keyId)) {
    throw new TypeError("keyId must be csk_ followed by 16 lower-case hex digits");
  }
  if (!/^[0-9a-f]{64}$/.test(secret)) {
    throw new TypeError("secret must be the 64 lower-case hex digits Countersign printed");
  }
  const t = String(Math.floor(options.timestamp ?? Date.now() / 1000));
  const enc = new TextEncoder();
  const body = typeof value === "string" ? enc.encode(value) : value;
  const prefix = enc.encode(`${t}.`);
  const msg = new Uint8Array(prefix.length + body.length);
  msg.set(prefix, 0);
  msg.set(body, prefix.length);
  const key = await globalThis.crypto.subtle.importKey(
    "raw", enc.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = new Uint8Array(await globalThis.crypto.subtle.sign("HMAC", key, msg));
  const hex = Array.from(mac, (b) => b.toString(16).padStart(2, "0")).join("");
  return `t=${t},k=${keyId},v1=${hex}`;
}
