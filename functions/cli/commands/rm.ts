import { Argument, type Command } from "commander";
import { ValidationError } from "../../../shared/errors.ts";
import { deleteFeedback } from "../../../shared/feedback/records.ts";
import { parseHeadRef } from "../../../shared/heads/version.ts";
import { assertName, keys } from "../../../shared/layout.ts";
import {
  deleteBackbone,
  deleteDataset,
  deleteHead,
  deleteJob,
  deleteVersion,
} from "../../../shared/lifecycle/delete.ts";
import type { DeleteResult } from "../../../shared/lifecycle/records.ts";
import type { ObjectStore } from "../../../shared/store/types.ts";
import { context, output } from "../context.ts";

const KINDS = ["dataset", "head", "version", "job", "backbone", "feedback"] as const;
type Kind = (typeof KINDS)[number];

export function registerRm(program: Command): void {
  program
    .command("rm")
    .description(
      "delete a dataset, a head, a head version (<head>@<version>), a job (embedding or batch-prediction, with its outputs) or a backbone (with its cache); refuses (exit 2) what is still referenced, naming it, unless --force",
    )
    .addArgument(new Argument("<what>", "what to delete").choices(KINDS))
    .argument("<name>", "its name; for a version <head>@<version>, for a correction <head>/<feedback id>")
    .option(
      "--force",
      "delete even what is still referenced (aliases pointing to a version go with it; running batch jobs are cancelled first)",
    )
    .action(async (what: Kind, name: string, opts: { force?: boolean }, cmd: Command) => {
      const { platform, json } = context(cmd);
      if (what === "feedback") return removeFeedback(platform.store, name, json);
      const result = await remove(platform.store, what, name, Boolean(opts.force));
      output(json, result, summary(result));
    });
}

function remove(
  store: ObjectStore,
  what: Exclude<Kind, "feedback">,
  name: string,
  force: boolean,
): Promise<DeleteResult> {
  switch (what) {
    case "dataset":
      return deleteDataset(store, name, { force });
    case "head":
      return deleteHead(store, name, { force });
    case "job":
      return deleteJob(store, name, { force });
    case "backbone":
      return deleteBackbone(store, name, { force });
    case "version": {
      const ref = parseHeadRef(name, "name");
      if (ref.version === undefined)
        throw new ValidationError(`name a version as <head>@<version>, got ${JSON.stringify(name)}`, {
          field: "name",
        });
      return deleteVersion(store, ref.head, ref.version, { force });
    }
  }
}

/** `rm feedback <head>/<id>`: one correction (nothing refers to it; the next training leaves it out). */
async function removeFeedback(store: ObjectStore, name: string, json: boolean): Promise<void> {
  const at = name.indexOf("/");
  if (at < 0) {
    throw new ValidationError(`name a correction as <head>/<feedback id>, got ${JSON.stringify(name)}`, {
      field: "name",
    });
  }
  const [head, id] = [name.slice(0, at), name.slice(at + 1)];
  await deleteFeedback(store, assertName("head", head, "name"), id);
  const result = {
    kind: "feedback",
    name,
    removed: [keys.headFeedback(head, id)],
    forced: false,
    overridden: [],
  };
  output(json, result, `deleted feedback ${name}: 1 object removed`);
}

function summary(r: DeleteResult): string {
  const overridden = r.overridden.map((ref) => `  (forced past: ${ref.description})`);
  return [`deleted ${r.kind} ${r.name}: ${r.removed.length} objects removed`, ...overridden].join("\n");
}
