/**
 * The data of `npm run bench:audio` (scripts/bench-audio.ts):
 *
 * - `keywordClips`: ten command words (Speech Commands' yes, no, up, down, left, right, on, off,
 *   stop, go) synthesized with espeak-ng by `KEYWORD_VOICES` (24 voices: an accent, a voice
 *   variant and a pitch each) at two speeds: 480 WAV files (22.05 kHz mono 16-bit, espeak-ng's
 *   output), written once under `<dir>/keywords/<voice>/<word>-s<speed>.wav` and reused.
 * - `convertedClips`: the same clips as FLAC, MP3 and Ogg Vorbis (sox), for decode timings.
 * - `sonicPiClips`: Debian `sonic-pi-samples` (CC0 instrument and percussion samples, FLAC),
 *   labelled by the group prefix of their file names (`bd_`, `drum_`, `elec_`, `guit_`, …).
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readdir, rename } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export const KEYWORDS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"] as const;

const ACCENTS = [
  "en-us",
  "en-gb",
  "en-gb-x-rp",
  "en-gb-scotland",
  "en-029",
  "en-us-nyc",
  "en-gb-x-gbclan",
  "en-gb-x-gbcwmd",
];
const VARIANTS = [
  ...["m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5"],
  ...["klatt", "klatt2", "klatt3", "Andy", "Annie", "Alicia", "david", "linda", "Michael", "steph", "john"],
  "edward",
];
const PITCHES = [35, 50, 65];
/** espeak-ng words per minute: each voice says each word at both. */
export const KEYWORD_SPEEDS = [140, 190] as const;

export interface KeywordVoice {
  /** File-safe id, e.g. `en-us+m1-p35`. */
  id: string;
  /** espeak-ng's `-v` value. */
  voice: string;
  pitch: number;
}

/** 24 voices: each has its own variant (timbre), an accent and a pitch, so no two share a timbre. */
export const KEYWORD_VOICES: readonly KeywordVoice[] = VARIANTS.map((variant, i) => {
  const voice = `${ACCENTS[i % ACCENTS.length]}+${variant}`;
  const pitch = PITCHES[i % PITCHES.length] as number;
  return { id: `${voice}-p${pitch}`, voice, pitch };
});

export interface AudioClip {
  path: string;
  /** Class index (into the task's class list). */
  label: number;
  /** Who said it (keywords: index into KEYWORD_VOICES), for splits by group. */
  group: number;
}

/** Runs `fn(0..count-1)` with at most `width` calls in flight. */
async function pool(width: number, count: number, fn: (i: number) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < count) await fn(next++);
    }),
  );
}

/** `cmd args…` writing `out`, via a temporary name so a killed run leaves no half file. */
async function writeVia(out: string, make: (tmp: string) => Promise<unknown>) {
  if (existsSync(out)) return false;
  await mkdir(dirname(out), { recursive: true });
  const tmp = `${out}.tmp${process.pid}${extensionOf(out)}`;
  await make(tmp);
  await rename(tmp, out);
  return true;
}

const extensionOf = (path: string) => path.slice(path.lastIndexOf("."));

/** The keyword set, synthesized where missing. Order: voice, word, speed. */
export async function keywordClips(dir: string, note: (msg: string) => void): Promise<AudioClip[]> {
  const clips: AudioClip[] = [];
  const jobs: Array<{ out: string; voice: KeywordVoice; word: string; speed: number }> = [];
  KEYWORD_VOICES.forEach((voice, group) => {
    KEYWORDS.forEach((word, label) => {
      for (const speed of KEYWORD_SPEEDS) {
        const out = join(dir, "keywords", voice.id, `${word}-s${speed}.wav`);
        clips.push({ path: out, label, group });
        jobs.push({ out, voice, word, speed });
      }
    });
  });
  let made = 0;
  const t0 = performance.now();
  await pool(4, jobs.length, async (i) => {
    const { out, voice, word, speed } = jobs[i]!;
    const args = ["-v", voice.voice, "-p", String(voice.pitch), "-s", String(speed), "-w"];
    if (await writeVia(out, (tmp) => run("espeak-ng", [...args, tmp, word]))) made++;
  });
  if (made > 0) note(`keywords: synthesized ${made} clips with espeak-ng in ${secs(t0)} s`);
  return clips;
}

const secs = (t0: number) => ((performance.now() - t0) / 1000).toFixed(1);

/** The keyword WAVs converted by sox to `format` (flac, mp3, ogg) under `<dir>/keywords-<format>/`. */
export async function convertedClips(
  dir: string,
  clips: readonly AudioClip[],
  format: "flac" | "mp3" | "ogg",
): Promise<string[]> {
  const from = join(dir, "keywords");
  const outs = clips.map((c) =>
    join(dir, `keywords-${format}`, c.path.slice(from.length + 1).replace(/\.wav$/, `.${format}`)),
  );
  await pool(4, clips.length, async (i) => {
    await writeVia(outs[i]!, (tmp) => run("sox", [clips[i]!.path, tmp]));
  });
  return outs;
}

/** Where Debian puts the samples (`dpkg -L sonic-pi-samples`), or `override`. */
export async function sonicPiDir(override?: string): Promise<string> {
  if (override) return override;
  const listed = await run("dpkg", ["-L", "sonic-pi-samples"]).then(
    (r) => r.stdout.split("\n").find((l) => l.endsWith(".flac")),
    () => undefined,
  );
  const dir = listed ? dirname(listed) : "/usr/share/sonic-pi/samples";
  if (!existsSync(dir)) {
    throw new Error(
      `no sonic-pi samples in ${dir}: install them with \`sudo bash scripts/system-deps.sh --bench\` (Debian sonic-pi-samples) or pass --sonic-pi`,
    );
  }
  return dir;
}

/** Every FLAC sample, labelled by its name's prefix before the first `_`; groups sorted by name. */
export async function sonicPiClips(dir: string): Promise<{ groups: string[]; clips: AudioClip[] }> {
  const files = (await readdir(dir)).filter((f) => f.endsWith(".flac")).sort();
  const prefix = (f: string) => basename(f).split("_")[0] as string;
  const groups = [...new Set(files.map(prefix))].sort();
  const clips = files.map((f, i) => ({ path: join(dir, f), label: groups.indexOf(prefix(f)), group: i }));
  return { groups, clips };
}
