import { readFileSync } from "node:fs";
import { join } from "node:path";
import { PACKAGE_ROOT } from "../../shared/config.ts";

const cache = new Map<string, unknown>();

/** A sample event from events/, cloned so a test can change it freely. */
export function loadEvent<T = Record<string, unknown>>(name: string): T {
  if (!cache.has(name))
    cache.set(name, JSON.parse(readFileSync(join(PACKAGE_ROOT, "events", `${name}.json`), "utf8")));
  return structuredClone(cache.get(name)) as T;
}
