/**
 * Lifecycle (shared/lifecycle/): `ls` records and `rm` on both stores (FsStore and S3Store on a real
 * radosgw): deletes refused while referenced (naming what refers) and done with `force`, the marker
 * first, every key gone and nothing listed afterwards, `doctor` clean after; the CLI's contract
 * (`ls … --json`, `rm …`, exit 2 when refused) and the HTTP routes (GET lists, DELETE, 409, force).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createApp } from "../shared/api/app.ts";
import { updateJob } from "../shared/embed/job.ts";
import { ConflictError, NotFoundError } from "../shared/errors.ts";
import { readAlias } from "../shared/heads/version.ts";
import { keys } from "../shared/layout.ts";
import { deleteDataset, deleteHead, deleteJob, deleteVersion } from "../shared/lifecycle/delete.ts";
import {
  listBackbones,
  listDatasets,
  listHeads,
  listHeadVersions,
  listJobs,
} from "../shared/lifecycle/list.ts";
import { makeLogger } from "../shared/log.ts";
import type { Platform } from "../shared/platform.ts";
import type { ObjectStore } from "../shared/store/types.ts";
import { cli } from "./helpers/cli.ts";
import { tinyCliPlatform, tinyPlatform } from "./helpers/platform.ts";
import { describeOnRadosgw, s3TinyPlatform } from "./helpers/s3-server.ts";
import { tinySentimentRows, toJsonlText } from "./helpers/tiny-backbone.ts";

const SHA = "a".repeat(64);
const read = (res: Response): Promise<ReturnType<typeof JSON.parse>> => res.json();

/** Two datasets with a head each; `films` has three versions: v1 (rollback target), v2 (live), v3. */
async function populate(platform: Platform) {
  for (const [name, seed] of [
    ["films", 2],
    ["books", 3],
  ] as const) {
    await platform.putManifest(name, "jsonl", toJsonlText(tinySentimentRows(60, { seed })));
    await platform.embed(name);
  }
  const train = async (head: string, promote = true) =>
    (await platform.train({ dataset: head, head, promote })).version;
  const v1 = await train("films");
  const v2 = await train("films");
  const v3 = await train("films", false);
  await train("books");
  // A stored export of v3, as a large export leaves one.
  await platform.store.put(keys.headExport("films", v3, false, SHA), "onnx");
  return { v1, v2, v3 };
}

async function refusal(promise: Promise<unknown>): Promise<ConflictError> {
  const err = await promise.then(
    () => assert.fail("expected a refusal"),
    (e: unknown) => e,
  );
  assert.ok(err instanceof ConflictError, String(err));
  return err;
}

const referencedBy = (err: ConflictError) =>
  (err.details as { referencedBy: Array<{ description: string }> }).referencedBy.map((r) => r.description);

interface Opened {
  platform: Platform;
  store: ObjectStore;
  cleanup?: () => Promise<void>;
}

function lifecycleSuite(name: string, open: () => Promise<Opened>) {
  describe(`lifecycle on ${name}`, () => {
    let platform: Platform;
    let store: ObjectStore;
    let v: Awaited<ReturnType<typeof populate>>;
    let cleanup: Opened["cleanup"];
    before(async () => {
      ({ platform, store, cleanup } = await open());
      v = await populate(platform);
    });
    after(() => cleanup?.());

    test("ls lists datasets, heads, versions, jobs and backbones as records", async () => {
      assert.deepEqual(
        (await listDatasets(store)).map((d) => [d.dataset, d.state, d.rows.accepted]),
        [
          ["books", "ingested", 60],
          ["films", "ingested", 60],
        ],
      );
      const heads = await listHeads(store);
      assert.deepEqual(
        heads.map((h) => [h.head, h.live, h.versions, h.current?.dataset?.name]),
        [
          ["books", heads[0].live, 1, "books"],
          ["films", v.v2, 3, "films"],
        ],
      );
      assert.equal(heads[1].current?.metric?.name, "accuracy");
      const versions = await listHeadVersions(store, "films");
      assert.deepEqual(
        versions.map((r) => [r.version, r.aliases]).sort(),
        [
          [v.v1, []],
          [v.v2, ["live"]],
          [v.v3, []],
        ].sort(),
      );
      const jobs = await listJobs(store);
      assert.deepEqual(jobs.map((j) => j.dataset).sort(), ["books", "films"]);
      assert.ok(jobs.every((j) => j.state === "succeeded"));
      assert.deepEqual(
        (await listBackbones(store)).map((b) => b.id),
        ["tiny-text"],
      );
      await assert.rejects(listHeadVersions(store, "nope"), NotFoundError);
    });

    test("a version an alias points to or rolls back to is refused, naming the alias; an unreferenced one goes", async () => {
      assert.match(
        referencedBy(await refusal(deleteVersion(store, "films", v.v2)))[0],
        /alias live of head films points to/,
      );
      assert.match(
        referencedBy(await refusal(deleteVersion(store, "films", v.v1)))[0],
        /alias live of head films rolls back to/,
      );
      const done = await deleteVersion(store, "films", v.v3);
      // The marker first, then the report, then its export.
      assert.deepEqual(done.removed, [
        keys.headFile("films", v.v3, "head.json"),
        keys.headFile("films", v.v3, "report.json"),
        keys.headExport("films", v.v3, false, SHA),
      ]);
      assert.deepEqual(await store.list(keys.headVersionFiles("films", v.v3)), []);
      assert.deepEqual(await store.list(keys.headExportsOf("films")), []);
      assert.equal((await listHeadVersions(store, "films")).length, 2);
      await assert.rejects(deleteVersion(store, "films", v.v3), NotFoundError);
    });

    test("with force, a rollback target goes and the alias forgets it; doctor stays clean", async () => {
      const done = await deleteVersion(store, "films", v.v1, { force: true });
      assert.equal(done.forced, true);
      assert.equal(done.overridden.length, 1);
      const live = await readAlias(store, "films");
      assert.equal(live?.value.version, v.v2);
      assert.equal(live?.value.previous, undefined);
      const report = await platform.doctor();
      assert.equal(report.ok, true, JSON.stringify(report.checks));
    });

    test("a dataset a live version was trained on is refused, naming the head; a running job is refused", async () => {
      const err = await refusal(deleteDataset(store, "films"));
      assert.match(err.message, /head films's alias live points to version/);
      assert.equal(err.field, "force");
      assert.deepEqual(await listDatasets(store).then((d) => d.length), 2, "nothing deleted");
      const job = (await listJobs(store)).find((j) => j.dataset === "films")!;
      await updateJob(store, job.job, () => ({ state: "running" }));
      assert.match(referencedBy(await refusal(deleteJob(store, job.job)))[0], /is running/);
      await updateJob(store, job.job, () => ({ state: "succeeded" }));
    });

    test("deleting a head removes its aliases first, then every key; it is no longer listed", async () => {
      const done = await deleteHead(store, "films");
      assert.equal(done.removed[0], keys.headAlias("films", "live"));
      assert.deepEqual(await store.list(keys.headPrefix("films")), []);
      assert.deepEqual(
        (await listHeads(store)).map((h) => h.head),
        ["books"],
      );
      await assert.rejects(deleteHead(store, "films"), NotFoundError);
    });

    test("an unreferenced dataset goes whole: status first, rows, cache, jobs", async () => {
      const job = (await listJobs(store)).find((j) => j.dataset === "films")!;
      const done = await deleteDataset(store, "films");
      assert.equal(done.removed[0], keys.datasetStatus("films"));
      assert.ok(done.removed.includes(keys.job(job.job)));
      assert.deepEqual(await store.list(keys.datasetPrefix("films")), []);
      assert.deepEqual(await store.list(keys.cachePrefix("tiny-text", "films")), []);
      assert.equal(await store.head(keys.job(job.job)), undefined);
      assert.deepEqual(
        (await listDatasets(store)).map((d) => d.dataset),
        ["books"],
      );
      assert.deepEqual(
        (await listJobs(store)).map((j) => j.dataset),
        ["books"],
      );
      assert.ok((await store.list(keys.cachePrefix("tiny-text", "books"))).length > 0, "books' cache kept");
    });

    test("what an interrupted delete left (no marker any more) is removed by deleting again", async () => {
      // A head delete stopped after head.json: the report and an export remain (doctor: incomplete).
      await store.put(keys.headFile("ghost", "v1", "report.json"), "{}");
      await store.put(keys.headExport("ghost", "v1", true, SHA), "onnx");
      assert.deepEqual(
        (await listHeads(store)).map((h) => h.head),
        ["books"],
        "not a head any more",
      );
      const head = await deleteHead(store, "ghost");
      assert.equal(head.removed.length, 2);
      assert.deepEqual(await store.list(keys.headExportsOf("ghost")), []);
      // A dataset delete stopped after datasets/<d>/: a cache shard remains.
      await store.put(keys.shardVectors("tiny-text", "ghost", 0), "npy");
      assert.deepEqual((await deleteDataset(store, "ghost")).removed, [
        keys.shardVectors("tiny-text", "ghost", 0),
      ]);
      await assert.rejects(deleteDataset(store, "ghost"), NotFoundError);
    });

    test("with force, a referenced dataset goes and the result names what referred to it", async () => {
      const done = await deleteDataset(store, "books", { force: true });
      assert.match(done.overridden[0].description, /head books's alias live/);
      assert.deepEqual(await listDatasets(store), []);
      assert.deepEqual(await store.list(keys.cachePrefix("tiny-text", "books")), []);
    });
  });
}

/** The CLI's contract and the HTTP routes over the same store (`env`: how a child process reaches it). */
function contractSuite(name: string, open: () => Promise<Opened & { env: Record<string, string> }>) {
  describe(`ls / rm contracts on ${name}`, () => {
    let ctx: Awaited<ReturnType<typeof open>>;
    let v: Awaited<ReturnType<typeof populate>>;
    before(async () => {
      ctx = await open();
      v = await populate(ctx.platform);
    });
    after(() => ctx.cleanup?.());
    const json = async (args: string[], code = 0) => {
      const r = await cli([...args, "--json"], ctx.env);
      assert.equal(r.code, code, r.stderr);
      return JSON.parse(r.stdout);
    };

    test("headstart ls … --json prints arrays of records; without --json a table", async () => {
      assert.deepEqual(
        (await json(["ls", "datasets"])).map((d: { dataset: string }) => d.dataset),
        ["books", "films"],
      );
      const heads = await json(["ls", "heads"]);
      assert.deepEqual(
        heads.map((h: { head: string; live: string }) => h.head),
        ["books", "films"],
      );
      assert.equal(heads[1].live, v.v2);
      assert.equal((await json(["ls", "versions", "films"])).length, 3);
      assert.equal((await json(["ls", "jobs"])).length, 2);
      assert.deepEqual(
        (await json(["ls", "backbones"])).map((b: { id: string }) => b.id),
        ["tiny-text"],
      );
      const table = await cli(["ls", "heads"], ctx.env);
      assert.match(table.stdout, /^HEAD +LIVE +VERSIONS/);
      assert.match(table.stdout, new RegExp(`films +${v.v2} +3 `));
      assert.equal((await cli(["ls", "versions"], ctx.env)).code, 2, "versions needs a head");
    });

    test("headstart rm refuses a referenced version (exit 2, naming the alias) and deletes it with --force", async () => {
      const refused = await json(["rm", "version", `films@${v.v2}`], 2);
      assert.equal(refused.error.code, "conflict");
      assert.match(refused.error.message, /alias live of head films points to/);
      assert.equal((await json(["ls", "versions", "films"])).length, 3, "nothing deleted");
      assert.equal((await cli(["rm", "version", "films"], ctx.env)).code, 2, "a version needs head@version");
      const done = await json(["rm", "version", `films@${v.v3}`]);
      assert.equal(done.removed[0], keys.headFile("films", v.v3, "head.json"));
      const forced = await json(["rm", "version", `films@${v.v2}`, "--force"]);
      assert.equal(forced.removed[0], keys.headAlias("films", "live"));
      assert.deepEqual(
        (await json(["ls", "versions", "films"])).map((r: { version: string }) => r.version),
        [v.v1],
      );
    });

    test("the HTTP routes list and delete; a referenced dataset is 409 until ?force=true", async () => {
      const app = createApp(ctx.platform, makeLogger("test", "silent"));
      const get = async (path: string) => {
        const res = await app.request(path);
        assert.equal(res.status, 200, path);
        return read(res);
      };
      assert.equal((await get("/v1/datasets")).length, 2);
      assert.deepEqual(
        (await get("/v1/heads")).map((h: { head: string }) => h.head),
        ["books", "films"],
      );
      assert.equal((await get("/v1/heads/films/versions")).length, 1);
      assert.equal((await get("/v1/jobs")).length, 2);
      assert.equal((await get("/v1/backbones"))[0].id, "tiny-text");
      assert.equal((await app.request("/v1/heads/nope/versions")).status, 404);

      const del = (path: string) => app.request(path, { method: "DELETE" });
      const refused = await del("/v1/datasets/books");
      assert.equal(refused.status, 409);
      const body = await read(refused);
      assert.match(body.error.details.referencedBy[0].description, /head books's alias live/);
      assert.equal((await del("/v1/heads/films/versions/nope")).status, 404);
      assert.equal((await del(`/v1/heads/films/versions/${v.v1}`)).status, 200, "no alias left on it");
      assert.equal((await del("/v1/heads/books")).status, 200);
      assert.equal((await del("/v1/datasets/books")).status, 200, "no head refers to it any more");
      const forced = await del("/v1/datasets/films?force=true");
      assert.equal(forced.status, 200);
      assert.deepEqual(await get("/v1/datasets"), []);
      assert.deepEqual(await ctx.store.list(keys.datasetPrefix("films")), []);
      assert.equal((await del("/v1/datasets/films")).status, 404);
    });
  });
}

lifecycleSuite("FsStore", () => tinyPlatform());
contractSuite("FsStore", tinyCliPlatform);
describeOnRadosgw("lifecycle on S3Store (radosgw)", (server) => {
  const openS3 = () => s3TinyPlatform(server(), "customer-a");
  lifecycleSuite("S3Store", openS3);
  contractSuite("S3Store", openS3);
});
