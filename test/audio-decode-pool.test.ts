/**
 * shared/audio/decode-pool.ts: decoding on worker threads gives what decoding in-thread gives
 * (samples bit for bit, the same error classes and reasons), hands buffers over without copies,
 * never keeps a process alive, and runs from source (tsx, also registered the way
 * bin/headstart.js does) and from the embed-batch bundle.
 */
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";
import { promisify } from "node:util";
import wavefile from "wavefile";
import { AudioDecodeError, type DecodeAudioOptions, decodeAudio } from "../shared/audio/decode.ts";
import {
  type AudioDecoder,
  createDecodePool,
  DECODE_WORKER_BUNDLE_NAME,
  findDecodeWorker,
  inThreadDecoder,
} from "../shared/audio/decode-pool.ts";
import { ValidationError } from "../shared/errors.ts";
import { buildEmbedBatchBundle } from "./helpers/bundles.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "headstart-audio-pool-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function wavTone(rate: number, seconds: number, channels: number): Uint8Array {
  const n = Math.round(rate * seconds);
  const chans = Array.from({ length: channels }, (_, c) =>
    Float64Array.from({ length: n }, (_, i) =>
      Math.round(16000 * Math.sin((2 * Math.PI * (440 + 110 * c) * i) / rate)),
    ),
  );
  const w = new wavefile.WaveFile();
  w.fromScratch(channels, rate, "16", chans);
  return w.toBuffer();
}

function soxTone(file: string): Uint8Array {
  execFileSync(
    "sox",
    ["-D", "-n", "-r", "44100", "-c", "2", file, "synth", "0.8", "sine", "440", "vol", "0.5"],
    {
      cwd: dir,
      stdio: "pipe",
    },
  );
  return new Uint8Array(readFileSync(join(dir, file)));
}

/** Valid files of every format, and inputs that fail with each reason. */
function inputs(): Array<{ what: string; bytes: Uint8Array; opts: DecodeAudioOptions }> {
  const at16k = { sampleRate: 16000 };
  return [
    { what: "stereo WAV at 44.1 kHz", bytes: wavTone(44100, 0.5, 2), opts: at16k },
    { what: "WAV at 16 kHz", bytes: wavTone(16000, 0.5, 1), opts: at16k },
    { what: "FLAC", bytes: soxTone("p.flac"), opts: at16k },
    { what: "MP3", bytes: soxTone("p.mp3"), opts: at16k },
    { what: "Ogg Vorbis", bytes: soxTone("p.ogg"), opts: at16k },
    { what: "empty", bytes: new Uint8Array(0), opts: { ...at16k, name: "a/empty.wav" } },
    { what: "too-large", bytes: wavTone(16000, 0.5, 1), opts: { ...at16k, limits: { maxBytes: 100 } } },
    { what: "too-long", bytes: soxTone("q.flac"), opts: { ...at16k, limits: { maxSeconds: 0.5 } } },
    { what: "unsupported", bytes: soxTone("p.aiff"), opts: { ...at16k, name: "b/p.aiff" } },
    { what: "corrupt", bytes: soxTone("r.flac").slice(0, 3000), opts: at16k },
    { what: "bad option", bytes: wavTone(16000, 0.1, 1), opts: { sampleRate: -5 } },
  ];
}

async function outcome(decoder: AudioDecoder, bytes: Uint8Array, opts: DecodeAudioOptions) {
  try {
    return { ok: true as const, value: await decoder.decode(bytes.slice(), opts) };
  } catch (err) {
    return { ok: false as const, err: err as Error };
  }
}

/**
 * The pool's answers equal decodeAudio's on this thread: samples, metadata, and for errors the
 * class (`sameClasses`: a bundle has its own copies of the classes, so there the code), message,
 * field, details and reason.
 */
async function assertSameAsInThread(pool: AudioDecoder, sameClasses = true) {
  const cases = inputs();
  // All at once: answers must come back to the call they belong to.
  const pooled = await Promise.all(cases.map((c) => outcome(pool, c.bytes, c.opts)));
  for (const [i, c] of cases.entries()) {
    const here = await outcome(inThreadDecoder, c.bytes, c.opts);
    const there = pooled[i];
    assert.equal(there.ok, here.ok, c.what);
    if (here.ok && there.ok) {
      assert.deepEqual(there.value, here.value, c.what);
      assert.ok(there.value.samples instanceof Float32Array && there.value.samples.length > 0);
    } else if (!here.ok && !there.ok) {
      const [a, b] = [there.err as AudioDecodeError, here.err as AudioDecodeError];
      if (sameClasses) assert.equal(a.constructor, b.constructor, `${c.what}: ${a}`);
      assert.deepEqual(
        { code: a.code, message: a.message, field: a.field, details: a.details, reason: a.reason },
        { code: b.code, message: b.message, field: b.field, details: b.details, reason: b.reason },
        c.what,
      );
      assert.equal(b.code, "invalid_input", `${c.what}: ${b}`);
    }
  }
  const reasons = pooled.flatMap((o) =>
    !o.ok && (o.err as AudioDecodeError).reason ? [(o.err as AudioDecodeError).reason] : [],
  );
  assert.deepEqual(reasons.sort(), ["corrupt", "empty", "too-large", "too-long", "unsupported-format"]);
  if (sameClasses) {
    const bad = pooled.filter(
      (o) => !o.ok && o.err instanceof ValidationError && !(o.err instanceof AudioDecodeError),
    );
    assert.equal(bad.length, 1, "the bad option is a plain ValidationError");
  }
}

describe("decode pool under tsx", () => {
  test("the worker is the .ts source beside the pool", () => {
    assert.equal(findDecodeWorker()?.href, new URL("../shared/audio/decode-worker.ts", import.meta.url).href);
  });

  test("two workers answer every call as decodeAudio does here, errors rebuilt with their reasons", async () => {
    const pool = createDecodePool({ threads: 2 });
    try {
      await assertSameAsInThread(pool);
    } finally {
      await pool.close();
    }
  });

  test("a whole buffer is transferred (detached here), a view into a larger one is copied", async () => {
    const pool = createDecodePool({ threads: 1 });
    try {
      const whole = wavTone(16000, 0.2, 1);
      const n = whole.byteLength;
      await pool.decode(whole, { sampleRate: 16000 });
      assert.equal(whole.byteLength, 0, "transferred");
      const big = new Uint8Array(n + 100);
      big.set(wavTone(16000, 0.2, 1), 50);
      const view = big.subarray(50, 50 + n);
      const got = await pool.decode(view, { sampleRate: 16000 });
      assert.equal(view.byteLength, n, "not detached");
      assert.equal(got.samples.length, 3200);
    } finally {
      await pool.close();
    }
  });

  test("close() rejects the calls in flight and any later call", async () => {
    const pool = createDecodePool({ threads: 1 });
    const inFlight = pool.decode(wavTone(16000, 0.2, 1), { sampleRate: 16000 }).then(
      () => undefined,
      (err: Error) => err,
    );
    await pool.close();
    assert.match(String((await inFlight)?.message), /closed/);
    await assert.rejects(pool.decode(wavTone(16000, 0.2, 1), { sampleRate: 16000 }), /closed/);
  });

  test("bad pool options are a ValidationError", () => {
    assert.throws(() => createDecodePool({ threads: 0 }), ValidationError);
  });

  // A child process that decodes through a pool it never closes, then has nothing left to do:
  // it exits on its own (the idle workers are unref'd), under `--import tsx` and under the
  // programmatic register() that bin/headstart.js uses.
  const child = `
    const { createDecodePool } = await import(${JSON.stringify(pathToFileURL(join(ROOT, "shared/audio/decode-pool.ts")).href)});
    const { readFileSync } = await import("node:fs");
    const pool = createDecodePool({ threads: 2 });
    const got = await pool.decode(new Uint8Array(readFileSync(process.argv[1])), { sampleRate: 16000 });
    console.log(got.format, got.samples.length);`;
  for (const [how, args] of [
    ["node --import tsx", ["--import", "tsx", "--input-type=module", "-e", child]],
    [
      "register() from tsx/esm/api",
      ["--input-type=module", "-e", `(await import("tsx/esm/api")).register();\n${child}`],
    ],
  ] as const) {
    test(`a process using the pool exits by itself (${how})`, async () => {
      const file = join(dir, "exit.flac");
      writeFileSync(file, soxTone("exit.flac"));
      const { stdout } = await promisify(execFile)(process.execPath, [...args, file], {
        cwd: ROOT,
        timeout: 60_000,
      });
      assert.equal(stdout.trim(), "flac 12800");
    });
  }
});

describe("decode pool: where the worker is", () => {
  test("in a bundle: beside the module or one folder up (a chunk); none: decode in-thread", () => {
    const root = mkdtempSync(join(dir, "bundle-"));
    mkdirSync(join(root, "chunks"));
    const worker = join(root, `${DECODE_WORKER_BUNDLE_NAME}.mjs`);
    writeFileSync(worker, "");
    const href = pathToFileURL(worker).href;
    assert.equal(findDecodeWorker(pathToFileURL(join(root, "index.mjs")).href)?.href, href);
    assert.equal(findDecodeWorker(pathToFileURL(join(root, "chunks", "chunk-X.mjs")).href)?.href, href);
    rmSync(worker);
    assert.equal(findDecodeWorker(pathToFileURL(join(root, "index.mjs")).href), undefined);
  });

  test("the embed-batch bundle's worker entry decodes as decodeAudio does", async () => {
    const built = await buildEmbedBatchBundle();
    const pool = createDecodePool({
      threads: 2,
      workerUrl: pathToFileURL(join(built.dir, `${DECODE_WORKER_BUNDLE_NAME}.mjs`)),
    });
    try {
      await assertSameAsInThread(pool);
    } finally {
      await pool.close();
    }
  });

  test("the pool inside the embed-batch bundle (a chunk) finds that worker and uses it", async (t) => {
    const built = await buildEmbedBatchBundle();
    const chunks = join(built.dir, "chunks");
    const chunk = readdirSync(chunks).find((f) => /^decode-pool-\w+\.mjs$/.test(f));
    // The audio embedder imports the pool lazily; until a bundle reaches it there is no chunk.
    if (!chunk) return t.skip("no bundled code imports the decode pool");
    const bundled = (await import(
      pathToFileURL(join(chunks, chunk)).href
    )) as typeof import("../shared/audio/decode-pool.ts");
    assert.equal(
      bundled.findDecodeWorker()?.href,
      pathToFileURL(join(built.dir, `${DECODE_WORKER_BUNDLE_NAME}.mjs`)).href,
    );
    const pool = bundled.createDecodePool({ threads: 2 });
    assert.notEqual(pool, bundled.inThreadDecoder);
    try {
      await assertSameAsInThread(pool, false);
    } finally {
      await pool.close();
    }
  });
});

test("decodeAudio itself is what inThreadDecoder runs", async () => {
  const bytes = wavTone(16000, 0.1, 1);
  assert.deepEqual(
    await inThreadDecoder.decode(bytes, { sampleRate: 16000 }),
    await decodeAudio(bytes, { sampleRate: 16000 }),
  );
});
