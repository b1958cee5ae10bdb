// signEnvelope: the documented layout, a vector shared with the C and Python
// signers (tests/unit/test_envsig.c, sdk/python/tests/test_signing.py), and
// its argument checks.
//
//   npm run build && node --test test/signing.test.mjs

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";

import { SIGNATURE_HEADER, signEnvelope } from "countersign";

const SECRET = "0123456789abcdef".repeat(4);
const KID = "csk_00112233aabbccdd";
const VALUE = '{"request_id":"r1","agent":"bot1"}';
const VECTOR = "2ea8549c31b92616b700405b319ad33e82a9b21ec01dea7f5ca8362fe651330a";

describe("signEnvelope", () => {
  it("matches the vector shared with the C and Python signers", async () => {
    assert.equal(SIGNATURE_HEADER, "countersign-signature");
    const h = await signEnvelope(VALUE, { keyId: KID, secret: SECRET, timestamp: 1700000000 });
    assert.equal(h, `t=1700000000,k=${KID},v1=${VECTOR}`);
    const bytes = new TextEncoder().encode(VALUE);
    assert.equal(await signEnvelope(bytes, { keyId: KID, secret: SECRET, timestamp: 1700000000 }), h);
  });

  it("signs now by default, over t and the value", async () => {
    const before = Math.floor(Date.now() / 1000);
    const h = await signEnvelope(VALUE, { keyId: KID, secret: SECRET });
    const parts = Object.fromEntries(h.split(",").map((p) => p.split("=")));
    assert.ok(Number(parts.t) >= before && Number(parts.t) <= Math.floor(Date.now() / 1000));
    const want = createHmac("sha256", SECRET).update(`${parts.t}.${VALUE}`).digest("hex");
    assert.equal(parts.v1, want);
    assert.equal(parts.k, KID);
  });

  it("changes with the value, the key and the time", async () => {
    const o = { keyId: KID, secret: SECRET, timestamp: 1700000000 };
    const base = await signEnvelope(VALUE, o);
    assert.notEqual(await signEnvelope(VALUE + " ", o), base);
    assert.notEqual(await signEnvelope(VALUE, { ...o, secret: "f".repeat(64) }), base);
    assert.notEqual(await signEnvelope(VALUE, { ...o, timestamp: 1700000001 }), base);
  });

  it("refuses a malformed key id or secret", async () => {
    for (const [keyId, secret] of [["csk_00112233AABBCCDD", SECRET], ["ak_00112233aabbccdd", SECRET],
      [KID, SECRET.slice(1)], [KID, SECRET.toUpperCase()], [KID, ""]]) {
      await assert.rejects(signEnvelope(VALUE, { keyId, secret }), TypeError);
    }
  });
});
