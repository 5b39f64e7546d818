/**
 * What the work queues share: picking a head and a dataset (`GET /v1/heads`, `GET /v1/datasets`),
 * the head's classes (`GET /v1/heads/{head}`), which are the labels a person may give, and a
 * request's outcome as a page shows it.
 */
import type { ComponentChildren } from "preact";
import { useState } from "preact/hooks";
import { api, type DatasetRecord, type HeadRecord, seg } from "../api.ts";
import { Show, useApi } from "../load.tsx";

/** The head document's fields a work queue reads (`GET /v1/heads/{head}`'s `current`). */
export interface HeadDetail {
  head: string;
  live: string;
  current: {
    labels: string[];
    task?: string;
    type: string;
    dataset: { name: string };
    backbone?: { id: string };
  };
}

export const headDetail = (head: string) => api<HeadDetail>(`v1/heads/${seg(head)}`);

export interface Choice {
  dataset: string;
  head: string;
}

/**
 * A dataset and a head, from the lists the key can read; the dataset follows the head's own
 * until the person picks another. `children` gets the choice.
 */
export function Pick(props: {
  idPrefix: string;
  needDataset?: boolean;
  children: (choice: Choice, lists: { datasets: DatasetRecord[] }) => ComponentChildren;
}) {
  const loaded = useApi(
    () => Promise.all([api<HeadRecord[]>("v1/heads"), api<DatasetRecord[]>("v1/datasets")]),
    [],
  );
  return (
    <Show loaded={loaded} what="heads and datasets">
      {([heads, datasets]) =>
        heads.length === 0 ? (
          <p>No head yet: train one first.</p>
        ) : (
          <Picker heads={heads} datasets={datasets} {...props} />
        )
      }
    </Show>
  );
}

function Picker(props: {
  heads: HeadRecord[];
  datasets: DatasetRecord[];
  idPrefix: string;
  needDataset?: boolean;
  children: (choice: Choice, lists: { datasets: DatasetRecord[] }) => ComponentChildren;
}) {
  const [head, setHead] = useState(props.heads[0].head);
  const own = props.heads.find((h) => h.head === head)?.current?.dataset?.name;
  const [picked, setPicked] = useState<string | undefined>(undefined);
  const dataset = picked ?? own ?? props.datasets[0]?.dataset ?? "";
  const id = (s: string) => `${props.idPrefix}-${s}`;
  return (
    <>
      <div class="pick">
        <div>
          <label for={id("head")}>Head</label>
          <select id={id("head")} value={head} onChange={(e) => setHead(e.currentTarget.value)}>
            {props.heads.map((h) => (
              <option key={h.head} value={h.head}>
                {h.head}
              </option>
            ))}
          </select>
        </div>
        {props.needDataset !== false && (
          <div>
            <label for={id("dataset")}>Dataset</label>
            <select id={id("dataset")} value={dataset} onChange={(e) => setPicked(e.currentTarget.value)}>
              {props.datasets.map((d) => (
                <option key={d.dataset} value={d.dataset}>
                  {d.dataset}
                </option>
              ))}
            </select>
          </div>
        )}
      </div>
      {props.children({ dataset, head }, { datasets: props.datasets })}
    </>
  );
}

/** A request's outcome as a page shows it: busy, failed (the API's message) or done. */
export type Outcome<T> =
  | { state: "idle" }
  | { state: "busy" }
  | { state: "error"; message: string }
  | { state: "done"; value: T };

export function useOutcome<T>() {
  const [outcome, setOutcome] = useState<Outcome<T>>({ state: "idle" });
  const run = async (load: () => Promise<T>) => {
    setOutcome({ state: "busy" });
    try {
      const value = await load();
      setOutcome({ state: "done", value });
      return value;
    } catch (err) {
      setOutcome({ state: "error", message: (err as Error).message });
      return undefined;
    }
  };
  return { outcome, run, reset: () => setOutcome({ state: "idle" }) };
}

export function Failure(props: { message: string }) {
  return (
    <p class="error" role="alert">
      {props.message}
    </p>
  );
}
