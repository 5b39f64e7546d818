/**
 * Heads: every version whose `head.json` exists (that is what makes it exist) parses, names
 * itself, has its `report.json`, and loads as its type's model, as predict would load it; every
 * alias parses and points at (and, for `previous`, came from) an existing version.
 */
import { Alias, HeadDocument, Report } from "../heads/version.ts";
import { keys, parseKey } from "../layout.ts";
import type { ObjectStore } from "../store/types.ts";
import { readChecked } from "./cache.ts";
import type { CheckLog } from "./report.ts";

// Loaded on first use: the head kinds pull in the numeric code that predict uses.
const kindsModule = () => import("../learn/registry.ts");

async function checkVersion(store: ObjectStore, head: string, version: string, log: CheckLog): Promise<void> {
  log.checked++;
  const key = keys.headFile(head, version, "head.json");
  const doc = await readChecked(store, key, HeadDocument, log);
  if (!doc) return;
  if (doc.head !== head || doc.version !== version) {
    log.add(key, "corrupt", `names head ${doc.head} version ${doc.version}`);
    return;
  }
  try {
    (await kindsModule()).headKind(doc.type).fromJson(doc.model);
  } catch (err) {
    log.add(key, "corrupt", `does not load as a ${doc.type} head: ${(err as Error).message}`);
  }
  const reportKey = keys.headFile(head, version, "report.json");
  if (!(await store.head(reportKey))) log.add(reportKey, "missing", "the version has no report");
  else await readChecked(store, reportKey, Report, log);
}

async function checkAlias(
  store: ObjectStore,
  key: string,
  head: string,
  alias: string,
  versions: Set<string>,
  log: CheckLog,
): Promise<void> {
  log.checked++;
  const value = await readChecked(store, key, Alias, log);
  if (!value) return;
  if (value.head !== head || value.alias !== alias) {
    log.add(key, "corrupt", `names head ${value.head} alias ${value.alias}`);
  }
  if (!versions.has(value.version))
    log.add(key, "missing", `points at version ${value.version}, which does not exist`);
  if (value.previous !== undefined && !versions.has(value.previous))
    log.add(key, "missing", `its previous version ${value.previous} (the rollback target) does not exist`);
}

export async function checkHeads(store: ObjectStore, heads: CheckLog, aliases: CheckLog): Promise<void> {
  const objects = await store.list("heads/");
  const versions = new Map<string, Set<string>>();
  const reports: Array<{ key: string; head: string; version: string }> = [];
  for (const o of objects) {
    const p = parseKey(o.key);
    if (p?.kind !== "headFile") continue;
    if (p.file === "head.json") {
      if (!versions.has(p.head)) versions.set(p.head, new Set());
      versions.get(p.head)!.add(p.version);
    } else reports.push({ key: o.key, head: p.head, version: p.version });
  }
  for (const [head, vs] of versions)
    for (const v of [...vs].sort()) await checkVersion(store, head, v, heads);
  for (const r of reports) {
    if (versions.get(r.head)?.has(r.version)) continue;
    heads.add(
      r.key,
      "incomplete",
      "a report without head.json: a training that stopped before its version existed",
    );
  }
  for (const o of objects) {
    const p = parseKey(o.key);
    if (p?.kind !== "headAlias") continue;
    await checkAlias(store, o.key, p.head, p.alias, versions.get(p.head) ?? new Set(), aliases);
  }
}
