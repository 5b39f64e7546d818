/**
 * Heads: the list (`GET /v1/heads`) and one head (`GET /v1/heads/{head}/versions` and
 * `…/versions/{version}`, which carries the version's labels and its report): metrics, per-class
 * scores, the confusion matrix and the versions.
 */
import { useEffect, useRef, useState } from "preact/hooks";
import { api, type HeadRecord, type HeadVersion, type Report, seg, type VersionRecord } from "../api.ts";
import { HeatMap } from "../charts.tsx";
import { fixed, num, pct, when } from "../format.ts";
import { Show, useApi } from "../load.tsx";
import { href } from "../route.ts";
import { Scroll } from "../scroll.tsx";
import { Exports, type ReportExtras, ReportExtrasView } from "./head-extras.tsx";
import { type Notice, Versions } from "./head-versions.tsx";

const metricText = (m?: { name: string; value: number }) =>
  m ? `${m.name} ${m.name === "rmse" ? fixed(m.value) : pct(m.value)}` : "—";

export function HeadsPage() {
  const loaded = useApi(() => api<HeadRecord[]>("v1/heads"), []);
  return (
    <>
      <h1>Heads</h1>
      <p>
        <a class="button" href={href("train")}>
          Train a head
        </a>
      </p>
      <Show loaded={loaded} what="heads">
        {(list) =>
          list.length === 0 ? (
            <p>
              No head yet: train one here or with <code>headstart train</code>.
            </p>
          ) : (
            <Scroll label="Heads table">
              <table>
                <caption class="sr-only">Heads, with their live version</caption>
                <thead>
                  <tr>
                    <th scope="col">Head</th>
                    <th scope="col">Live</th>
                    <th scope="col">Type</th>
                    <th scope="col">Dataset</th>
                    <th scope="col">Metric</th>
                    <th scope="col" class="n">
                      Versions
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {list.map((h) => (
                    <tr key={h.head}>
                      <th scope="row">
                        <a href={href("heads", h.head)}>{h.head}</a>
                      </th>
                      <td>{h.live ?? "—"}</td>
                      <td>{h.current?.type ?? "—"}</td>
                      <td>{h.current?.dataset?.name ?? "—"}</td>
                      <td>{metricText(h.current?.metric)}</td>
                      <td class="n">{num(h.versions)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </Scroll>
          )
        }
      </Show>
    </>
  );
}

export function HeadPage(props: { name: string; version?: string }) {
  const loaded = useApi(async () => {
    const base = `v1/heads/${seg(props.name)}`;
    const list = await api<VersionRecord[]>(`${base}/versions`);
    // The live alias's document says where a rollback would go (`previous`).
    const live = list.some((v) => v.aliases.includes("live"))
      ? await api<{ version: string; previous?: string }>(`${base}/aliases/live`)
      : undefined;
    return { list, live };
  }, [props.name]);
  const [notice, setNotice] = useState<Notice>();
  const noticeRef = useRef<HTMLParagraphElement>(null);
  // The button that moved the alias is gone with the reloaded list: focus goes to what happened.
  useEffect(() => noticeRef.current?.focus(), [notice]);
  const moved = (n: Notice) => {
    setNotice(n);
    if (n.moved) loaded.reload();
  };
  return (
    <>
      <p class="crumbs">
        <a href={href("heads")}>Heads</a> /
      </p>
      <h1>{props.name}</h1>
      <div aria-live="polite">
        {notice && (
          <p class={notice.error ? "error" : "ok"} ref={noticeRef} tabIndex={-1}>
            {notice.text}
          </p>
        )}
      </div>
      <Show loaded={loaded} what="the versions">
        {({ list, live }) => {
          const chosen = props.version ?? live?.version ?? list.at(-1)?.version;
          return (
            <>
              {chosen && <VersionDetail head={props.name} version={chosen} />}
              <Versions head={props.name} list={list} chosen={chosen} live={live} canMove onMoved={moved} />
            </>
          );
        }}
      </Show>
    </>
  );
}

function VersionDetail(props: { head: string; version: string }) {
  const loaded = useApi(
    () => api<HeadVersion>(`v1/heads/${seg(props.head)}/versions/${seg(props.version)}`),
    [props.head, props.version],
  );
  return (
    <Show loaded={loaded} what="the report">
      {(v) => (
        <section aria-labelledby="report-h">
          <h2 id="report-h">Version {v.version}</h2>
          <p class="note">
            {v.type} head on <a href={href("datasets", v.dataset.name)}>{v.dataset.name}</a>, backbone{" "}
            {v.backbone.id}, trained {when(v.createdAt)}. <a href={href("try", v.head)}>Try it</a>
          </p>
          {v.report?.metrics ? (
            <MulticlassReport report={v.report} labels={v.labels} />
          ) : v.report?.multilabel ? (
            <MultilabelReport report={v.report} />
          ) : v.report?.regression ? (
            <RegressionReport report={v.report} />
          ) : (
            <p>This version has no report to show.</p>
          )}
          {v.report && <ReportExtrasView report={v.report as ReportExtras} />}
          <Exports head={v.head} version={v.version} />
        </section>
      )}
    </Show>
  );
}

function MulticlassReport(props: { report: Report; labels: string[] }) {
  const m = props.report.metrics!;
  const names = props.labels.length === m.confusion.length ? props.labels : Object.keys(m.perClass);
  const evaluated = props.report.evaluation === "cv" ? "cross-validation" : "the test split";
  return (
    <>
      <dl class="facts big">
        <div>
          <dt>Accuracy</dt>
          <dd>{pct(m.accuracy)}</dd>
        </div>
        <div>
          <dt>Macro-F1</dt>
          <dd>{pct(m.macroF1)}</dd>
        </div>
        <div>
          <dt>Evaluated on</dt>
          <dd>
            {num(m.n)} rows ({evaluated})
          </dd>
        </div>
      </dl>
      <h3>Per class</h3>
      <ScoreTable
        label="Per-class scores table"
        first="Class"
        columns={["Precision", "Recall", "F1", "Support"]}
        rows={names.flatMap((name) => {
          const c = m.perClass[name];
          return c ? [[name, fixed(c.precision), fixed(c.recall), fixed(c.f1), num(c.support)]] : [];
        })}
      />
      <h3>Confusion matrix</h3>
      <p class="note">Rows: true class; columns: predicted. Shade: share of the true class's rows.</p>
      <Scroll label="Confusion matrix (scrolls sideways)">
        <HeatMap matrix={m.confusion} names={names} title="Confusion matrix" />
      </Scroll>
    </>
  );
}

function Facts(props: { facts: Array<[string, string]> }) {
  return (
    <dl class="facts big">
      {props.facts.map(([term, value]) => (
        <div key={term}>
          <dt>{term}</dt>
          <dd>{value}</dd>
        </div>
      ))}
    </dl>
  );
}

function MultilabelReport({ report }: { report: Report }) {
  const m = report.multilabel!;
  return (
    <>
      <Facts
        facts={[
          ["Subset accuracy", pct(m.subsetAccuracy)],
          ["Micro-F1", pct(m.microF1)],
          ["Macro-F1", pct(m.macroF1)],
          ["Hamming loss", fixed(m.hammingLoss)],
          ["Evaluated on", `${num(m.n)} rows`],
        ]}
      />
      <h3>Per label</h3>
      <ScoreTable
        label="Per-label scores table"
        first="Label"
        columns={["Threshold", "Precision", "Recall", "F1", "Support"]}
        rows={Object.entries(m.perLabel).map(([name, c]) => [
          name,
          fixed(c.threshold, 2),
          fixed(c.precision),
          fixed(c.recall),
          fixed(c.f1),
          num(c.support),
        ])}
      />
    </>
  );
}

/** A table of per-class (or per-label) figures: the name heads each row, numbers align right. */
function ScoreTable(props: { label: string; first: string; columns: string[]; rows: string[][] }) {
  return (
    <Scroll label={props.label}>
      <table>
        <thead>
          <tr>
            <th scope="col">{props.first}</th>
            {props.columns.map((c) => (
              <th key={c} scope="col" class="n">
                {c}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {props.rows.map(([name, ...cells]) => (
            <tr key={name}>
              <th scope="row">{name}</th>
              {cells.map((v, i) => (
                <td key={props.columns[i]} class="n">
                  {v}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </Scroll>
  );
}

function RegressionReport({ report }: { report: Report }) {
  const m = report.regression!;
  return (
    <Facts
      facts={[
        ["RMSE", fixed(m.rmse)],
        ["MAE", fixed(m.mae)],
        ["R²", fixed(m.r2)],
        ["Evaluated on", `${num(m.n)} rows`],
      ]}
    />
  );
}
