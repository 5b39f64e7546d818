import cliProgress from "cli-progress";
import { type EmbedProgress, logEmbedProgress } from "../../shared/embed/run.ts";
import type { Logger } from "../../shared/log.ts";

/** A bar on a terminal; one structured log line per shard otherwise (CI, pipes, containers). */
export function embedProgress(
  log: Logger,
  interactive: boolean,
): { onProgress: (e: EmbedProgress) => void; stop(): void } {
  if (!interactive) {
    return {
      onProgress: logEmbedProgress(log),
      stop: () => {},
    };
  }
  const bar = new cliProgress.SingleBar(
    {
      format: "embedding {bar} {percentage}% | {value}/{total} items | {rate}/s | eta {eta_formatted}",
      hideCursor: true,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  let base = 0;
  let t0 = 0;
  return {
    onProgress: (e) => {
      if (e.type === "start" && e.pendingShards > 0 && !started) {
        started = true;
        t0 = performance.now();
        bar.start(e.pendingItems, 0, { rate: 0 });
      } else if (e.type === "batch" && started) {
        const value = base + e.done;
        bar.update(value, { rate: Math.round(value / ((performance.now() - t0) / 1000 || 1)) });
      } else if (e.type === "shard" && started) {
        base += e.items;
      }
    },
    stop: () => {
      if (started) bar.stop();
    },
  };
}
