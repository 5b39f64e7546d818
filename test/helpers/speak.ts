/**
 * Real spoken words for audio tests: espeak-ng speaks a word into a WAV file (22,050 Hz mono
 * 16-bit), and sox converts it to FLAC, MP3 or Ogg Vorbis by the path's extension (any case).
 * Both tools are in scripts/system-deps.sh.
 */
import { execFile } from "node:child_process";
import { rm } from "node:fs/promises";
import { promisify } from "node:util";

const run = promisify(execFile);

/** One word spoken by espeak-ng into a WAV file (22,050 Hz mono 16-bit), converted by sox to FLAC, MP3 or Ogg Vorbis by the extension. */
export async function speak(word: string, voice: string, speed: number, path: string): Promise<void> {
  const wav = path.endsWith(".wav") ? path : `${path}.wav`;
  await run("espeak-ng", ["-v", voice, "-s", String(speed), "-w", wav, word]);
  if (wav !== path) {
    await run("sox", [wav, path]);
    await rm(wav);
  }
}
