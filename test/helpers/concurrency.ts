/**
 * N trainings at once on one head, then N promotions at once (one to each new version), all
 * through the HTTP API. Every version must be kept (listed and loadable), the alias must end on
 * one of them, and its history must hold every promotion. Used by test/concurrency-heads.test.ts
 * and scripts/bench-reliability.ts.
 */
import type { Send } from "./fuzz.ts";

export interface ConcurrencyResult {
  trainings: number;
  /** Trainings answered 200 with a version. */
  trained: number;
  /** New versions the head lists that answer GET and predict. */
  versionsKept: number;
  /** Promotions answered 200. */
  promotions: number;
  /** Promotions the alias's history records. */
  promotionsInHistory: number;
  aliasEndsOnOne: boolean;
  /** What went wrong, for a person; empty when all holds. */
  problems: string[];
}

export async function headConcurrency(
  send: Send,
  opts: { head: string; dataset: string; trainings: number; dim: number },
): Promise<ConcurrencyResult> {
  const { head, trainings } = opts;
  const json = (method: string, path: string, body: unknown) =>
    send({
      operationId: "concurrency",
      method,
      path,
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
  const problems: string[] = [];

  const trainedAnswers = await Promise.all(
    Array.from({ length: trainings }, (_, i) =>
      json("POST", `/v1/heads/${head}/train`, { dataset: opts.dataset, seed: i, promote: false }),
    ),
  );
  const versions: string[] = [];
  for (const r of trainedAnswers) {
    if (r.status === 200) versions.push(JSON.parse(r.text).version);
    else problems.push(`training answered ${r.status}: ${r.text.slice(0, 200)}`);
  }

  const promoted = await Promise.all(
    versions.map((version) => json("PUT", `/v1/heads/${head}/aliases/live`, { version })),
  );
  let promotions = 0;
  for (const r of promoted) {
    if (r.status === 200) promotions++;
    else problems.push(`promotion answered ${r.status}: ${r.text.slice(0, 200)}`);
  }

  const info = await send({
    operationId: "concurrency",
    method: "GET",
    path: `/v1/heads/${head}`,
    headers: {},
  });
  const listed =
    info.status === 200 ? (JSON.parse(info.text) as { versions: string[]; live: string }) : undefined;
  if (!listed) problems.push(`GET head answered ${info.status}`);
  let versionsKept = 0;
  const embedding = Array.from({ length: opts.dim }, (_, j) => Math.sin(j));
  for (const v of versions) {
    const one = await send({
      operationId: "concurrency",
      method: "GET",
      path: `/v1/heads/${head}/versions/${v}`,
      headers: {},
    });
    const used = await json("POST", `/v1/heads/${head}/predict`, { embeddings: [embedding], version: v });
    if (listed?.versions.includes(v) && one.status === 200 && used.status === 200) versionsKept++;
    else
      problems.push(
        `version ${v}: listed ${listed?.versions.includes(v)}, GET ${one.status}, predict ${used.status}`,
      );
  }
  const aliasEndsOnOne = listed !== undefined && versions.includes(listed.live);
  if (!aliasEndsOnOne) problems.push(`live is ${listed?.live}, none of the promoted versions`);

  const alias = await send({
    operationId: "concurrency",
    method: "GET",
    path: `/v1/heads/${head}/aliases/live`,
    headers: {},
  });
  const history =
    alias.status === 200 ? (JSON.parse(alias.text).history as Array<{ version: string }>) : undefined;
  const inHistory = new Set((history ?? []).map((m) => m.version).filter((v) => versions.includes(v)));
  if (!history) problems.push(`GET alias answered ${alias.status}: ${alias.text.slice(0, 200)}`);
  else if (history.at(-1)?.version !== listed?.live)
    problems.push("the history's last move is not where the alias points");
  if (inHistory.size !== versions.length)
    problems.push(`history holds ${inHistory.size} of ${versions.length} promotions`);

  return {
    trainings,
    trained: versions.length,
    versionsKept,
    promotions,
    promotionsInHistory: inHistory.size,
    aliasEndsOnOne,
    problems,
  };
}
