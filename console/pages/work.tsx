/**
 * Work queues: the tabs — label suggested items, review label issues, batch predictions, drift —
 * each a page of its own under `#/work/<tab>`.
 */
import { href, WORK_TABS, type WorkTab } from "../route.ts";
import { BatchPage } from "./batch.tsx";
import { DriftPage } from "./drift.tsx";
import { IssuesPage } from "./issues.tsx";
import { LabelPage } from "./label.tsx";

const TAB_NAMES: Record<WorkTab, string> = {
  label: "Label suggested",
  issues: "Label issues",
  batch: "Batch predictions",
  drift: "Drift",
};

export function WorkPage(props: { tab: WorkTab; args: string[] }) {
  return (
    <>
      <nav aria-label="Work queues" class="tabs">
        <ul>
          {WORK_TABS.map((t) => (
            <li key={t}>
              <a href={href("work", t)} aria-current={t === props.tab ? "page" : undefined}>
                {TAB_NAMES[t]}
              </a>
            </li>
          ))}
        </ul>
      </nav>
      {props.tab === "label" && <LabelPage />}
      {props.tab === "issues" && <IssuesPage />}
      {props.tab === "batch" && <BatchPage head={props.args[0]} job={props.args[1]} />}
      {props.tab === "drift" && <DriftPage />}
    </>
  );
}
