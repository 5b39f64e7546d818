/**
 * What keeps `headstart serve` safe from the web pages its user visits, which can make the
 * browser send requests to any address, loopback included:
 *
 * - **DNS rebinding**: a page on `evil.example` re-points its own name at 127.0.0.1 and reads
 *   the answers as same-origin. Its requests still say `Host: evil.example`, so only Host values
 *   naming this server are served: loopback names and addresses, the bound address (each of this
 *   machine's addresses when bound to all of them) — with the server's port — and the names the
 *   operator allows (`--allowed-host`, with any port).
 * - **Cross-site requests**: a form or `fetch(…, {mode: "no-cors"})` on any page can POST here
 *   (rollback, ingest need no body). A state-changing request (POST, PUT, PATCH, DELETE) is
 *   refused when the browser says it comes from another site (`Sec-Fetch-Site` other than
 *   `same-origin` / `none`) or from another origin (`Origin` not this server's own). Requests
 *   with neither header — curl, SDKs, scripts — are not a browser's and pass.
 *
 * Behind API Gateway none of this applies (keys are required and browsers do not send them on
 * their own), so only the local server installs it.
 */
import { networkInterfaces } from "node:os";
import type { MiddlewareHandler } from "hono";
import { ForbiddenError } from "../errors.ts";
import type { AppEnv } from "./env.ts";

export interface LocalGuardOptions {
  /** The address the server is bound to (`127.0.0.1`, `0.0.0.0`, `::`, a name, …). */
  host: string;
  /** The port it listens on; a function, since port 0 is known only once listening. */
  port: () => number;
  /** Extra host names (or addresses) the Host header may carry, with any port. */
  allowedHosts?: readonly string[];
}

const STATE_CHANGING = new Set(["POST", "PUT", "PATCH", "DELETE"]);
const LOOPBACK_NAMES = ["localhost", "127.0.0.1", "::1"];

/** Whether binding `host` keeps the server reachable from this machine only. */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, "");
  return h === "localhost" || h === "::1" || /^127(\.\d{1,3}){3}$/.test(h);
}

function isWildcard(host: string): boolean {
  return host === "0.0.0.0" || host === "::" || host === "[::]";
}

/** `name` lower-cased without brackets, and the port (undefined when the value had none). */
export function splitHost(value: string): { name: string; port?: number } {
  const v = value.trim().toLowerCase();
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(v);
  if (bracketed) return { name: bracketed[1], port: bracketed[2] ? Number(bracketed[2]) : undefined };
  const colons = v.split(":").length - 1;
  if (colons === 1) {
    const [name, port] = v.split(":");
    return { name, port: /^\d+$/.test(port) ? Number(port) : Number.NaN };
  }
  return { name: v }; // a bare name, or an unbracketed IPv6 address
}

function machineAddresses(): string[] {
  return Object.values(networkInterfaces())
    .flat()
    .map((i) => i?.address.toLowerCase())
    .filter((a): a is string => Boolean(a));
}

export function localGuard(opts: LocalGuardOptions): MiddlewareHandler<AppEnv> {
  const bound = splitHost(opts.host).name;
  const own = new Set([...LOOPBACK_NAMES, bound, ...(isWildcard(opts.host) ? machineAddresses() : [])]);
  const allowed = new Set((opts.allowedHosts ?? []).map((h) => splitHost(h).name));

  const hostAllowed = (value: string | undefined): boolean => {
    if (!value) return false;
    const { name, port } = splitHost(value);
    if (allowed.has(name)) return true;
    const expected = opts.port();
    return own.has(name) && (port === expected || (port === undefined && expected === 80));
  };

  return async (c, next) => {
    const host = c.req.header("host");
    if (!hostAllowed(host)) {
      throw new ForbiddenError(
        `Host ${JSON.stringify(host ?? "")} is not this server's address; start it with --allowed-host <name> to serve that name`,
        { field: "host" },
      );
    }
    if (STATE_CHANGING.has(c.req.method)) {
      const site = c.req.header("sec-fetch-site");
      const origin = c.req.header("origin");
      if (site && site !== "same-origin" && site !== "none") {
        throw new ForbiddenError(`cross-site ${c.req.method} refused (Sec-Fetch-Site: ${site})`, {
          field: "origin",
        });
      }
      if (origin !== undefined && origin !== `http://${host}`) {
        throw new ForbiddenError(
          `${c.req.method} from origin ${JSON.stringify(origin)} refused: not this server's own`,
          {
            field: "origin",
          },
        );
      }
    }
    return next();
  };
}
