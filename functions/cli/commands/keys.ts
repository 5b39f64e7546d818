import type { Command } from "commander";
import { LOCAL_CUSTOMER, parseScopes, SCOPES } from "../../../shared/auth/api-keys.ts";
import { type KeyInfo, KeyStore } from "../../../shared/auth/key-store.ts";
import { ValidationError } from "../../../shared/errors.ts";
import { collect, context, output } from "../context.ts";

export function registerKeys(program: Command): void {
  const keysCommand = program
    .command("keys")
    .description("scoped API keys of this store's customer (hashes only are stored; see docs/api.md)");
  keysCommand
    .command("create")
    .description("make a key; prints it once (give it to the client): only its hash is stored")
    .requiredOption("--id <id>", "key id, e.g. the client's name ([a-z0-9-], at most 32)")
    .requiredOption("--scope <scope>", `what the key may do, repeatable: ${SCOPES.join(", ")}`, collect, [])
    .option("--customer <id>", "the customer the key is bound to (default: HEADSTART_CUSTOMER, else local)")
    .action(async (opts, cmd: Command) => {
      const { keys, json } = keyStore(cmd, opts.customer);
      const made = await keys.create(opts.id, parseScopes(opts.scope, "scope"));
      output(
        json,
        made,
        `key ${made.info.id} (${made.info.scopes.join(", ")}; customer ${made.info.customer}), shown once, only its hash is stored:\n  ${made.key}`,
      );
    });
  keysCommand
    .command("list")
    .description("every key: id, scopes, customer, created, revoked (never the key or its hash)")
    .action(async (_opts, cmd: Command) => {
      const { keys, json } = keyStore(cmd);
      const all = await keys.list();
      output(json, all, all.map(keyLine).join("\n") || "(no keys)");
    });
  keysCommand
    .command("revoke")
    .description(
      "refuse a key from now on (servers notice within their key cache time); its id stays reserved",
    )
    .argument("<id>", "key id")
    .action(async (id: string, _opts, cmd: Command) => {
      const { keys, json } = keyStore(cmd);
      const info = await keys.revoke(id);
      output(json, info, `key ${info.id} revoked at ${info.revokedAt}`);
    });
}

/** The customer's key file in the store (`--store s3://bucket` manages a deployment's keys). */
function keyStore(cmd: Command, customer?: string) {
  const { platform, json } = context(cmd);
  const chosen = customer ?? platform.config.customer;
  if (!chosen && platform.store.url.startsWith("s3://")) {
    // A bucket is usually a deployment's, whose authorizer refuses keys of customer `local`.
    throw new ValidationError(
      "name the customer whose keys these are: --customer <id> or HEADSTART_CUSTOMER (a deployment refuses keys of another customer; --customer local for a local server on this bucket)",
      { field: "customer" },
    );
  }
  return { keys: new KeyStore(platform.store, chosen ?? LOCAL_CUSTOMER), json };
}

const keyLine = (k: KeyInfo) =>
  `${k.id}\t${k.scopes.join(",")}\t${k.customer}\t${k.createdAt}\t${k.revoked ? `revoked ${k.revokedAt}` : "active"}`;
