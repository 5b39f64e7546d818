/**
 * shared/audio/decode.ts on real files: WAVs of every sample layout written with wavefile, FLAC,
 * MP3 and Ogg Vorbis encoded by sox and lame from known tones, and each failure reason. A tone
 * is recognised by its Goertzel amplitude at its frequency (and the absence of others), so a
 * decoder that returned the wrong rate, channel mix or scale fails.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import wavefile from "wavefile";
import {
  AudioDecodeError,
  type AudioDecodeReason,
  type DecodedAudio,
  decodeAudio,
  sniffAudio,
} from "../shared/audio/decode.ts";
import { ValidationError } from "../shared/errors.ts";

const { WaveFile } = wavefile;

function tone(rate: number, seconds: number, freq: number, amp: number): Float64Array {
  const n = Math.round(rate * seconds);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = amp * Math.sin((2 * Math.PI * freq * i) / rate);
  return out;
}

/** The amplitude of the `freq` component (Goertzel over the middle of the clip, away from edges). */
function amplitudeAt(x: Float32Array, rate: number, freq: number): number {
  const skip = Math.floor(x.length * 0.1);
  const n = x.length - 2 * skip;
  const w = (2 * Math.PI * freq) / rate;
  const c = 2 * Math.cos(w);
  let s1 = 0;
  let s2 = 0;
  for (let i = 0; i < n; i++) {
    const s = x[skip + i] + c * s1 - s2;
    s2 = s1;
    s1 = s;
  }
  const power = s1 * s1 + s2 * s2 - c * s1 * s2;
  return (2 * Math.sqrt(Math.max(0, power))) / n;
}

/** Root mean square of the middle 80% (a resampler's filter rings at the clip's two ends). */
function rms(x: Float32Array): number {
  const mid = x.subarray(Math.floor(x.length * 0.1), Math.ceil(x.length * 0.9));
  let s = 0;
  for (const v of mid) s += v * v;
  return Math.sqrt(s / mid.length);
}

/** wavefile writes the extensible fmt chunk but keeps format code 1; real writers put 0xFFFE. */
const PCM_GUID = [1, 0x00100000, 0xaa000080, 0x719b3800];

/** A WAV from wavefile; `samples` in [-1, 1] are scaled to the integer range of `depth`. */
function wav(
  channels: Float64Array[],
  rate: number,
  depth: "8" | "16" | "24" | "32" | "32f" | "64",
): Uint8Array {
  const scale: Record<string, (v: number) => number> = {
    "8": (v) => Math.round(v * 127 + 128),
    "16": (v) => Math.round(v * 32767),
    "24": (v) => Math.round(v * 8388607),
    "32": (v) => Math.round(v * 2147483647),
    "32f": (v) => v,
    "64": (v) => v,
  };
  const w = new WaveFile();
  w.fromScratch(
    channels.length,
    rate,
    depth,
    channels.map((c) => c.map(scale[depth])),
  );
  return w.toBuffer();
}

async function rejects(promise: Promise<unknown>, reason: AudioDecodeReason, message?: RegExp) {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof AudioDecodeError, `expected an AudioDecodeError, got ${String(err)}`);
    assert.equal(err.reason, reason, err.message);
    if (message) assert.match(err.message, message);
    return true;
  });
}

const dir = mkdtempSync(join(tmpdir(), "headstart-audio-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Runs an encoder (sox, lame; scripts/system-deps.sh installs them) and returns the file. */
function encode(cmd: string, args: string[], out: string): Uint8Array {
  try {
    execFileSync(cmd, args, { cwd: dir, stdio: "pipe" });
  } catch (err) {
    throw new Error(
      `${cmd} ${args.join(" ")} failed (scripts/system-deps.sh installs it): ${(err as Error).message}`,
    );
  }
  return new Uint8Array(readFileSync(join(dir, out)));
}

/** A 440 Hz tone at half scale, `seconds` long, stereo 44.1 kHz, in the format of `file`'s extension. */
function soxTone(file: string, seconds = 1.5, extra: string[] = []): Uint8Array {
  return encode(
    "sox",
    // -D: no dither, so the same file every run (an Ogg's stream serial still differs).
    [
      "-D",
      "-n",
      "-r",
      "44100",
      "-c",
      "2",
      "-b",
      "16",
      ...extra,
      file,
      "synth",
      String(seconds),
      "sine",
      "440",
      "vol",
      "0.5",
    ],
    file,
  );
}

function assertTone(got: DecodedAudio, freq: number, amp: number, tol: number) {
  const a = amplitudeAt(got.samples, got.sampleRate, freq);
  assert.ok(Math.abs(a - amp) <= tol * amp, `amplitude at ${freq} Hz: ${a}, expected ${amp} ±${tol * 100}%`);
  for (const other of [freq / 2, freq * 1.5, freq * 3]) {
    const o = amplitudeAt(got.samples, got.sampleRate, other);
    assert.ok(o < amp * 0.05, `amplitude at ${other} Hz: ${o} (only ${freq} Hz was encoded)`);
  }
}

describe("decodeAudio: WAV", () => {
  for (const depth of ["8", "16", "24", "32", "32f", "64"] as const) {
    test(`${depth}-bit WAV decodes to the samples written, scaled to [-1, 1]`, async () => {
      const src = tone(16000, 0.5, 440, 0.5);
      const got = await decodeAudio(wav([src], 16000, depth), { sampleRate: 16000 });
      assert.equal(got.format, "wav");
      assert.equal(got.samples.length, src.length);
      assert.equal(got.originalSampleRate, 16000);
      assert.equal(got.originalChannels, 1);
      assert.equal(got.seconds, 0.5);
      const tol = depth === "8" ? 1 / 100 : 1e-4;
      let worst = 0;
      for (let i = 0; i < src.length; i++) worst = Math.max(worst, Math.abs(got.samples[i] - src[i]));
      assert.ok(worst <= tol, `largest difference ${worst} > ${tol}`);
    });
  }

  test("stereo is mixed down to the mean of the channels", async () => {
    const left = tone(16000, 0.5, 440, 0.6);
    const right = tone(16000, 0.5, 1000, 0.2);
    const got = await decodeAudio(wav([left, right], 16000, "16"), { sampleRate: 16000 });
    assert.equal(got.originalChannels, 2);
    for (const i of [0, 100, 4321, 7999])
      assert.ok(Math.abs(got.samples[i] - (left[i] + right[i]) / 2) < 1e-4);
    assert.ok(Math.abs(amplitudeAt(got.samples, 16000, 440) - 0.3) < 0.01);
    assert.ok(Math.abs(amplitudeAt(got.samples, 16000, 1000) - 0.1) < 0.01);
  });

  test("six channels (WAVE_FORMAT_EXTENSIBLE, 24-bit) mix down too", async () => {
    const chans = [0, 1, 2, 3, 4, 5].map((c) => tone(8000, 0.25, 440, c === 0 ? 0.6 : 0));
    const w = new WaveFile();
    w.fromBuffer(wav(chans, 8000, "24"));
    const fmt = w.fmt as { audioFormat: number; subformat: number[] };
    assert.deepEqual(fmt.subformat, PCM_GUID);
    fmt.audioFormat = 0xfffe;
    const bytes = w.toBuffer();
    assert.equal(
      new DataView(bytes.buffer, bytes.byteOffset).getUint16(20, true),
      0xfffe,
      "extensible header",
    );
    const got = await decodeAudio(bytes, { sampleRate: 8000 });
    assert.equal(got.originalChannels, 6);
    assert.ok(Math.abs(amplitudeAt(got.samples, 8000, 440) - 0.1) < 0.002);
  });

  test("WAVE_FORMAT_EXTENSIBLE with the float subformat reads floats", async () => {
    const src = tone(16000, 0.25, 440, 0.5);
    const w = new WaveFile();
    w.fromScratch(2, 16000, "32f", [src, src]);
    Object.assign(w.fmt, {
      audioFormat: 0xfffe,
      chunkSize: 40,
      cbSize: 22,
      validBitsPerSample: 32,
      dwChannelMask: 3,
      subformat: [3, ...PCM_GUID.slice(1)],
    });
    const got = await decodeAudio(w.toBuffer(), { sampleRate: 16000 });
    for (const i of [1, 50, 3999]) assert.ok(Math.abs(got.samples[i] - src[i]) < 1e-6);
  });

  test("µ-law telephony WAV decodes", async () => {
    const w = new WaveFile();
    w.fromScratch(
      1,
      8000,
      "16",
      tone(8000, 0.5, 440, 0.5).map((v) => Math.round(v * 32767)),
    );
    w.toMuLaw();
    const got = await decodeAudio(w.toBuffer(), { sampleRate: 8000 });
    assertTone(got, 440, 0.5, 0.03);
  });

  test("at the same rate the samples are not resampled", async () => {
    const src = tone(16000, 0.3, 440, 0.5);
    const got = await decodeAudio(wav([src], 16000, "32f"), { sampleRate: 16000 });
    assert.deepEqual(got.samples, Float32Array.from(src));
  });
});

describe("decodeAudio: FLAC, MP3, Ogg Vorbis made by sox from a 440 Hz tone", () => {
  const cases = [
    { file: "tone.flac", format: "flac", tol: 0.01, secondsTol: 0.001 },
    { file: "tone.mp3", format: "mp3", tol: 0.1, secondsTol: 0.06 },
    { file: "tone.ogg", format: "ogg", tol: 0.05, secondsTol: 0.001 },
  ] as const;
  for (const c of cases) {
    test(`${c.format}: rate, channels, duration and the tone survive`, async () => {
      const got = await decodeAudio(soxTone(c.file), { sampleRate: 16000 });
      assert.equal(got.format, c.format);
      assert.equal(got.sampleRate, 16000);
      assert.equal(got.originalSampleRate, 44100);
      assert.equal(got.originalChannels, 2);
      assert.ok(Math.abs(got.seconds - 1.5) <= c.secondsTol, `seconds ${got.seconds}`);
      assert.ok(
        Math.abs(got.samples.length - 24000) <= 24000 * c.secondsTol + 2,
        `${got.samples.length} samples`,
      );
      assertTone(got, 440, 0.5, c.tol);
    });
  }

  test("mp3 from lame (Xing/Info tag, ID3v2 tag in front): exact length after the gapless trim", async () => {
    soxTone("lame-src.wav", 1);
    const bytes = encode(
      "lame",
      ["--quiet", "--add-id3v2", "--tt", "tone", "lame-src.wav", "lame.mp3"],
      "lame.mp3",
    );
    assert.equal(String.fromCharCode(...bytes.subarray(0, 3)), "ID3");
    assert.equal(sniffAudio(bytes), "mp3");
    const got = await decodeAudio(bytes, { sampleRate: 16000 });
    assert.equal(got.seconds, 1);
    assertTone(got, 440, 0.5, 0.1);
  });

  test("flac: every frame decodes, also small last frames (and a tag appended after them)", async () => {
    // A spoken word with silence at its end: its last two frames are a few bytes each, which the
    // package's own parser hands to libFLAC as one (12288 of 13977 samples came out).
    encode("espeak-ng", ["-v", "en+m1", "-s", "175", "-w", "yes.wav", "yes"], "yes.wav");
    const bytes = encode("sox", ["yes.wav", "yes.flac"], "yes.flac");
    const view = new DataView(bytes.buffer, bytes.byteOffset);
    const total = (view.getUint8(21) & 0x0f) * 2 ** 32 + view.getUint32(22); // STREAMINFO
    assert.ok(total > 10000 && total % 4096 !== 0, `total ${total}`);
    const got = await decodeAudio(bytes, { sampleRate: 22050 });
    assert.equal(got.originalSampleRate, 22050);
    assert.equal(got.samples.length, total);
    // An ID3v1 tag some taggers append: not audio, not an error.
    const tagged = new Uint8Array([...bytes, ...Buffer.from("TAG"), ...new Array(125).fill(0x20)]);
    assert.deepEqual((await decodeAudio(tagged, { sampleRate: 22050 })).samples, got.samples);
  });

  test("flac: a damaged byte inside a frame fails its CRC: corrupt", async () => {
    const bytes = soxTone("damaged.flac", 1).slice();
    for (const at of [0.3, 0.5, 0.7, 0.9]) {
      const damaged = bytes.slice();
      damaged[Math.floor(bytes.length * at)] ^= 0x40;
      await rejects(
        decodeAudio(damaged, { sampleRate: 16000 }),
        "corrupt",
        /damaged: no whole FLAC frame from byte/,
      );
    }
  });

  test("files decoded at once share each format's decoder without mixing their streams", async () => {
    const files = [soxTone("a.flac", 0.5), soxTone("b.mp3", 0.7), soxTone("c.ogg", 0.9)];
    const all = await Promise.all(
      Array.from({ length: 12 }, (_, i) => decodeAudio(files[i % 3], { sampleRate: 16000 })),
    );
    all.forEach((got, i) => {
      assert.ok(Math.abs(got.seconds - [0.5, 0.7, 0.9][i % 3]) < 0.06, `file ${i}: ${got.seconds} s`);
      assertTone(got, 440, 0.5, 0.1);
    });
  });
});

describe("decodeAudio: resampling keeps what fits below the new Nyquist frequency", () => {
  for (const rate of [44100, 48000, 8000]) {
    test(`${rate} Hz → 16 kHz keeps a 1 kHz tone and the duration`, async () => {
      const got = await decodeAudio(wav([tone(rate, 1, 1000, 0.5)], rate, "32f"), { sampleRate: 16000 });
      assert.equal(got.originalSampleRate, rate);
      assert.ok(Math.abs(got.samples.length - 16000) <= 2, `${got.samples.length} samples`);
      assertTone(got, 1000, 0.5, 0.01);
    });
  }

  test("a long clip (past libsamplerate-js's single-call size) resamples whole, after short ones", async () => {
    await decodeAudio(wav([tone(44100, 1, 1000, 0.5)], 44100, "32f"), { sampleRate: 16000 });
    const got = await decodeAudio(wav([tone(44100, 30, 1000, 0.5)], 44100, "32f"), { sampleRate: 16000 });
    assert.equal(got.samples.length, 480000);
    for (const at of [0, 10, 29]) {
      const second = { ...got, samples: got.samples.subarray(at * 16000, (at + 1) * 16000) };
      assertTone(second, 1000, 0.5, 0.01);
    }
  });

  test("a 10 kHz tone at 44.1 kHz is removed, not folded down to 6 kHz", async () => {
    const got = await decodeAudio(wav([tone(44100, 1, 10000, 0.5)], 44100, "32f"), { sampleRate: 16000 });
    assert.ok(rms(got.samples) < 1e-3, `rms ${rms(got.samples)}`);
    assert.ok(amplitudeAt(got.samples, 16000, 6000) < 1e-3, "alias at 6 kHz");
  });
});

describe("decodeAudio: every failure has a reason", () => {
  test("empty: no bytes, or a WAV without samples", async () => {
    await rejects(decodeAudio(new Uint8Array(0), { sampleRate: 16000 }), "empty");
    await rejects(decodeAudio(wav([new Float64Array(0)], 16000, "16"), { sampleRate: 16000 }), "empty");
  });

  test("too-large: more bytes than limits.maxBytes, before any decoding", async () => {
    const bytes = wav([tone(16000, 0.1, 440, 0.5)], 16000, "16");
    await rejects(
      decodeAudio(bytes, { sampleRate: 16000, limits: { maxBytes: bytes.length - 1 } }),
      "too-large",
      new RegExp(`${bytes.length} bytes`),
    );
  });

  test("too-long: from the header, before decoding (a WAV declaring an hour, a cut FLAC)", async () => {
    // The data chunk claims an hour but holds 1000 bytes: only the header can say "too long".
    const bytes = wav([tone(16000, 0.1, 440, 0.5)], 16000, "16").slice(0, 1044);
    new DataView(bytes.buffer).setUint32(40, 16000 * 2 * 3600, true);
    await rejects(decodeAudio(bytes, { sampleRate: 16000 }), "too-long", /3600 s of audio/);
    // STREAMINFO says 20 s; only the first 4 KB are there to decode.
    const flac = soxTone("long.flac", 20).slice(0, 4096);
    await rejects(decodeAudio(flac, { sampleRate: 16000, limits: { maxSeconds: 10 } }), "too-long", /20 s/);
    await rejects(decodeAudio(flac, { sampleRate: 16000 }), "corrupt", /truncated/);
  });

  test("too-long: an MP3 without a length in its header stops decoding past the limit", async () => {
    const mp3 = soxTone("long.mp3", 4);
    await rejects(decodeAudio(mp3, { sampleRate: 16000, limits: { maxSeconds: 2 } }), "too-long");
    const ok = await decodeAudio(mp3, { sampleRate: 16000, limits: { maxSeconds: 5 } });
    assert.ok(ok.seconds > 3.9);
  });

  test("unsupported-format: Opus, AIFF, M4A, MIDI are named; other bytes are 'not audio'", async () => {
    // An Ogg page whose first packet is an Opus identification header.
    const opusHead = [...Buffer.from("OpusHead"), 1, 1, 0, 0, 0x80, 0xbb, 0, 0, 0, 0, 0];
    const page = [...Buffer.from("OggS"), 0, 2, ...new Array(20).fill(0), 1, opusHead.length, ...opusHead];
    await rejects(
      decodeAudio(Uint8Array.from(page), { sampleRate: 16000 }),
      "unsupported-format",
      /Ogg Opus/,
    );
    await rejects(
      decodeAudio(soxTone("tone.aiff", 0.1), { sampleRate: 16000 }),
      "unsupported-format",
      /AIFF/,
    );
    const m4a = Uint8Array.from([0, 0, 0, 0x20, ...Buffer.from("ftypM4A "), ...new Array(20).fill(0)]);
    await rejects(decodeAudio(m4a, { sampleRate: 16000 }), "unsupported-format", /M4A/);
    await rejects(
      decodeAudio(Buffer.from("MThd\0\0\0\x06"), { sampleRate: 16000 }),
      "unsupported-format",
      /MIDI/,
    );
    const noise = new Uint8Array(4096);
    for (let i = 0, s = 7; i < noise.length; i++) {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      noise[i] = s >>> 24;
    }
    await rejects(
      decodeAudio(noise, { sampleRate: 16000 }),
      "unsupported-format",
      /not a recognised audio file/,
    );
  });

  test("corrupt: a truncated WAV, FLAC, lame MP3 or Ogg (their headers say how long they were)", async () => {
    soxTone("cut-src.wav", 1);
    const files: Record<string, Uint8Array> = {
      wav: soxTone("cut.wav", 1),
      flac: soxTone("cut.flac", 1),
      ogg: soxTone("cut.ogg", 3),
      mp3: encode("lame", ["--quiet", "cut-src.wav", "cut.mp3"], "cut.mp3"),
    };
    for (const bytes of Object.values(files)) {
      await decodeAudio(bytes, { sampleRate: 16000 }); // whole, it decodes
      const cut = bytes.slice(0, Math.floor(bytes.length * 0.6));
      await rejects(decodeAudio(cut, { sampleRate: 16000 }), "corrupt", /truncated/);
    }
  });

  test("an MP3 without a length tag, cut short, decodes to the part that is there", async () => {
    const bytes = soxTone("cut-plain.mp3", 2);
    const got = await decodeAudio(bytes.slice(0, bytes.length >> 1), { sampleRate: 16000 });
    assert.ok(Math.abs(got.seconds - 1) < 0.1, `${got.seconds} s`);
    assertTone(got, 440, 0.5, 0.1);
  });

  test("corrupt: garbled MP3 frames are decoder errors; a WAV with a broken fmt chunk", async () => {
    const mp3 = soxTone("garbled.mp3", 1).slice();
    for (let i = 2000; i < 6000; i++) mp3[i] = (i * 7919) & 255;
    await rejects(decodeAudio(mp3, { sampleRate: 16000 }), "corrupt", /MPG123/);
    const bytes = wav([tone(16000, 0.1, 440, 0.5)], 16000, "16");
    bytes.set(Buffer.from("xxxx"), 12); // the fmt chunk's id
    await rejects(decodeAudio(bytes, { sampleRate: 16000 }), "corrupt", /WAV header/);
  });

  test("unsupported-format: a sample rate libsamplerate cannot reach (over 256× away)", async () => {
    const bytes = wav([tone(50, 2, 5, 0.5)], 50, "16");
    await rejects(decodeAudio(bytes, { sampleRate: 16000 }), "unsupported-format", /50 Hz/);
    assert.equal((await decodeAudio(bytes, { sampleRate: 100 })).samples.length, 200);
  });

  test("mutated files (bytes overwritten, cut anywhere) decode or fail with a reason, never otherwise", async () => {
    let seed = 99;
    const rand = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed / 2 ** 32;
    };
    const files = [
      soxTone("m.wav", 0.5),
      soxTone("m.flac", 0.5),
      soxTone("m.mp3", 0.5),
      soxTone("m.ogg", 0.5),
    ];
    const seen = new Set<string>();
    for (const base of files) {
      for (let k = 0; k < 40; k++) {
        const bytes = base.slice(0, rand() < 0.3 ? Math.floor(rand() * base.length) : base.length);
        // Half the mutations hit the first 200 bytes, where the headers are.
        for (let j = Math.floor(rand() * 20); j >= 0; j--) {
          bytes[Math.floor(rand() * Math.min(bytes.length, rand() < 0.5 ? 200 : bytes.length))] =
            rand() * 256;
        }
        const err = await decodeAudio(bytes, { sampleRate: 16000 }).then(
          () => undefined,
          (e: Error) => e,
        );
        assert.ok(err === undefined || err instanceof AudioDecodeError, `${String(err)}`);
        seen.add(err ? (err as AudioDecodeError).reason : "decoded");
      }
      // The format's decoder still decodes a whole file afterwards.
      assert.ok((await decodeAudio(base, { sampleRate: 16000 })).seconds > 0.49);
    }
    assert.ok(seen.has("decoded") && seen.has("corrupt") && seen.has("unsupported-format"), [...seen].join());
  });

  test("errors name the input: field and message carry opts.name, and they are ValidationErrors", async () => {
    const err = await decodeAudio(new Uint8Array(0), { sampleRate: 16000, name: "clips/a.wav" }).catch(
      (e) => e,
    );
    assert.ok(err instanceof ValidationError);
    assert.equal(err.field, "clips/a.wav");
    assert.match(err.message, /^audio clips\/a\.wav: /);
    assert.deepEqual(err.details, { reason: "empty" });
    const unnamed = await decodeAudio(new Uint8Array(0), { sampleRate: 16000 }).catch((e) => e);
    assert.equal(unnamed.field, "audio");
  });

  test("bad options are the caller's bug: a plain ValidationError naming the option", async () => {
    const bytes = wav([tone(16000, 0.1, 440, 0.5)], 16000, "16");
    for (const [opts, field] of [
      [{ sampleRate: 0 }, "sampleRate"],
      [{ sampleRate: 16000.5 }, "sampleRate"],
      [{ sampleRate: 16000, limits: { maxSeconds: 0 } }, "limits.maxSeconds"],
      [{ sampleRate: 16000, limits: { maxBytes: -1 } }, "limits.maxBytes"],
    ] as const) {
      const err = await decodeAudio(bytes, opts).catch((e) => e);
      assert.ok(err instanceof ValidationError && !(err instanceof AudioDecodeError), String(err));
      assert.equal(err.field, field);
    }
  });
});
