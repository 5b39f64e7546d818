/**
 * Error paths a local radosgw cannot produce on demand: AWS answers a conditional write that
 * races another with 409 ConditionalRequestConflict, which must read as a lost precondition.
 */
import assert from "node:assert/strict";
import { afterEach, test } from "node:test";
import {
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from "@aws-sdk/client-s3";
import { mockClient } from "aws-sdk-client-mock";
import { S3Store } from "../shared/aws/s3-store.ts";
import { PreconditionFailedError } from "../shared/errors.ts";

const client = new S3Client({ region: "us-east-1", credentials: { accessKeyId: "a", secretAccessKey: "b" } });
const s3 = mockClient(client);
afterEach(() => s3.reset());

function awsError(name: string, status: number): S3ServiceException {
  return new S3ServiceException({
    name,
    $fault: "client",
    $metadata: { httpStatusCode: status },
    message: name,
  });
}

test("409 ConditionalRequestConflict on a conditional put maps to PreconditionFailedError", async () => {
  const store = new S3Store({ bucket: "b", prefix: "tenant", client });
  s3.on(PutObjectCommand).rejects(awsError("ConditionalRequestConflict", 409));
  const err = await store
    .put("heads/h/aliases/live.json", "{}", { ifNoneMatch: "*" })
    .catch((e: unknown) => e);
  assert.ok(err instanceof PreconditionFailedError);
  assert.equal(err.field, "heads/h/aliases/live.json");
  await assert.rejects(store.put("k", "{}", { ifMatch: '"abc"' }), PreconditionFailedError);
  const sent = s3.commandCalls(PutObjectCommand).map((c) => c.args[0].input);
  assert.equal(sent[0].Key, "tenant/heads/h/aliases/live.json");
  assert.equal(sent[0].IfNoneMatch, "*");
  // Without a custom endpoint (AWS itself) the ETag goes back exactly as S3 sent it.
  assert.equal(sent[1].IfMatch, '"abc"');
});

test("412 PreconditionFailed maps; a missing object under ifMatch maps too", async () => {
  const store = new S3Store({ bucket: "b", client });
  s3.on(PutObjectCommand)
    .rejectsOnce(awsError("PreconditionFailed", 412))
    .rejectsOnce(awsError("NoSuchKey", 404));
  await assert.rejects(store.put("k", "x", { ifNoneMatch: "*" }), PreconditionFailedError);
  await assert.rejects(store.put("k", "x", { ifMatch: '"e"' }), PreconditionFailedError);
});

test("unconditional puts and other failures are not disguised as precondition failures", async () => {
  const store = new S3Store({ bucket: "b", client });
  s3.on(PutObjectCommand).rejects(awsError("ConditionalRequestConflict", 409));
  await assert.rejects(store.put("k", "x"), (e: unknown) => !(e instanceof PreconditionFailedError));
  s3.on(PutObjectCommand).rejects(awsError("AccessDenied", 403));
  await assert.rejects(store.put("k", "x", { ifNoneMatch: "*" }), { name: "AccessDenied" });
  s3.on(GetObjectCommand).rejects(awsError("NoSuchBucket", 404));
  await assert.rejects(store.get("k"), { name: "NoSuchBucket" });
  s3.on(HeadObjectCommand).rejects(awsError("NotFound", 404));
  assert.equal(await store.head("k"), undefined);
});

test("custom endpoints get If-Match without quotes (radosgw compares it verbatim)", async () => {
  const store = new S3Store({ bucket: "b", client, endpoint: "http://127.0.0.1:1" });
  s3.on(PutObjectCommand).resolves({ ETag: '"new"' });
  const info = await store.put("k", "x", { ifMatch: '"abc"' });
  assert.deepEqual(info, { key: "k", size: 1, etag: '"new"' });
  assert.equal(s3.commandCalls(PutObjectCommand)[0].args[0].input.IfMatch, "abc");
});

test("list follows continuation tokens, strips the prefix and sorts", async () => {
  const store = new S3Store({ bucket: "b", prefix: "p", client });
  s3.on(ListObjectsV2Command)
    .resolvesOnce({
      IsTruncated: true,
      NextContinuationToken: "t1",
      Contents: [{ Key: "p/a/2", Size: 2, ETag: '"2"' }],
    })
    .resolvesOnce({ IsTruncated: false, Contents: [{ Key: "p/a/1", Size: 1, ETag: '"1"' }] });
  assert.deepEqual(await store.list("a/"), [
    { key: "a/1", size: 1, etag: '"1"' },
    { key: "a/2", size: 2, etag: '"2"' },
  ]);
  const calls = s3.commandCalls(ListObjectsV2Command).map((c) => c.args[0].input);
  assert.deepEqual(
    calls.map((c) => [c.Prefix, c.ContinuationToken]),
    [
      ["p/a/", undefined],
      ["p/a/", "t1"],
    ],
  );
});
