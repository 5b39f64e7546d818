/** The one zod-error conversion (shared/errors.ts `fromZodError`): messages read as sentences. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { z } from "zod";
import { parseApiKeyFile } from "../shared/auth/api-keys.ts";
import { fromZodError, ValidationError } from "../shared/errors.ts";

test("a nested issue names its path in the message and as the field", () => {
  const r = z.object({ a: z.object({ b: z.number() }) }).safeParse({ a: { b: "x" } });
  assert.ok(!r.success);
  const err = fromZodError(r.error, { prefix: "body", pathStyle: "dots" });
  assert.ok(err instanceof ValidationError);
  assert.match(err.message, /^body: a\.b: /);
  assert.equal(err.field, "a.b");
});

test("an issue at the root leaves no empty path segment (no ': :')", () => {
  const err = (() => {
    try {
      parseApiKeyFile("[]");
    } catch (e) {
      return e as ValidationError;
    }
    throw new Error("parseApiKeyFile accepted []");
  })();
  assert.match(err.message, /^API key file: [A-Z]/);
  assert.doesNotMatch(err.message, /: :/);
  assert.equal(err.field, "keys");
});
