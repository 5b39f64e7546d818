/**
 * The console cannot import the server's modules (test/architecture.test.ts), so the lists it
 * offers in its forms are its own copies: these tests hold them to the server's, so a new scope or
 * event type fails here until the console offers it.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { SCOPES as CONSOLE_SCOPES, EVENTS } from "../console/settings-lists.ts";
import { SCOPES } from "../shared/auth/api-keys.ts";
import { EVENT_TYPES } from "../shared/events/types.ts";

test("Settings offers every key scope the API knows", () => {
  assert.deepEqual([...CONSOLE_SCOPES].sort(), [...SCOPES].sort());
});

test("Settings offers every webhook event type the API sends", () => {
  assert.deepEqual([...EVENTS].sort(), [...EVENT_TYPES].sort());
});
