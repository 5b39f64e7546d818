/** Datasets: the list (`GET /v1/datasets`) and one dataset's status (`GET /v1/datasets/{dataset}`). */
import { api, type DatasetInfo, type DatasetRecord, type Me } from "../api.ts";
import { Bars } from "../charts.tsx";
import { num, when } from "../format.ts";
import { Show, useApi } from "../load.tsx";
import { href } from "../route.ts";
import { Scroll } from "../scroll.tsx";
import { EmbeddingProgress, isEmbedding, useLiveDataset } from "./dataset-live.tsx";
import { EmbeddingMap } from "./dataset-map.tsx";
import { UploadForm } from "./dataset-upload.tsx";

export function DatasetsPage() {
  const loaded = useApi(() => api<DatasetRecord[]>("v1/datasets"), []);
  return (
    <>
      <h1>Datasets</h1>
      <Show loaded={loaded} what="datasets">
        {(list) =>
          list.length === 0 ? (
            <p>
              No dataset yet: upload one below, or with <code>headstart upload</code>.
            </p>
          ) : (
            <Scroll label="Datasets table">
              <table>
                <caption class="sr-only">Datasets, with their items and state</caption>
                <thead>
                  <tr>
                    <th scope="col">Dataset</th>
                    <th scope="col">State</th>
                    <th scope="col" class="n">
                      Items
                    </th>
                    <th scope="col" class="n">
                      Rejected
                    </th>
                    <th scope="col" class="n">
                      Labels
                    </th>
                    <th scope="col">Ingested</th>
                  </tr>
                </thead>
                <tbody>
                  {list.map((d) => (
                    <tr key={d.dataset}>
                      <th scope="row">
                        <a href={href("datasets", d.dataset)}>{d.dataset}</a>
                      </th>
                      <td>
                        <span class={`state ${d.state}`}>{d.state}</span>
                      </td>
                      <td class="n">{num(d.rows.accepted)}</td>
                      <td class="n">{num(d.rows.rejected)}</td>
                      <td class="n">{num(Object.keys(d.labels).length)}</td>
                      <td>{when(d.ingestedAt)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </Scroll>
          )
        }
      </Show>
      <UploadIfAllowed />
    </>
  );
}

/** The upload form, for keys that may ingest (the API would refuse the others anyway). */
function UploadIfAllowed() {
  const me = useApi(() => api<Me>("v1/me"), []);
  const scopes = me.data?.scopes ?? [];
  return scopes.includes("ingest") || scopes.includes("admin") ? <UploadForm /> : null;
}

export function DatasetPage({ name }: { name: string }) {
  const loaded = useLiveDataset(name);
  return (
    <>
      <p class="crumbs">
        <a href={href("datasets")}>Datasets</a> /
      </p>
      <h1>{name}</h1>
      <p>
        <a class="button" href={href("train", name)}>
          Train a head on {name}
        </a>
      </p>
      <Show loaded={loaded} what="the dataset">
        {(info) => <DatasetDetail info={info} />}
      </Show>
    </>
  );
}

function DatasetDetail({ info }: { info: DatasetInfo }) {
  const { status, embedding } = info;
  const labels = Object.entries(status.labels).sort((a, b) => b[1] - a[1]);
  return (
    <>
      <dl class="facts">
        <Fact term="State" value={status.state} />
        <Fact term="Items" value={num(status.rows.accepted)} />
        <Fact term="Rejected rows" value={num(status.rows.rejected)} />
        <Fact
          term="Train / test / unspecified"
          value={`${status.splits.train} / ${status.splits.test} / ${status.splits.unspecified}`}
        />
        <Fact term={`Cached embeddings (${embedding.backbone})`} value={num(embedding.cachedItems)} />
        <Fact term="Ingested" value={when(status.ingestedAt)} />
      </dl>
      {status.message && <p class="note">{status.message}</p>}
      <EmbeddingProgress info={info} />
      <section aria-labelledby="labels-h">
        <h2 id="labels-h">Label distribution</h2>
        {labels.length ? (
          <Bars
            title="Items per label"
            bars={labels.map(([label, value]) => ({ label, value, text: num(value) }))}
          />
        ) : (
          <p>No labelled rows.</p>
        )}
      </section>
      <Rejected rows={status.rejected} total={status.rows.rejected} />
      {!isEmbedding(info) && info.embedding.cachedItems > 0 && (
        <EmbeddingMap dataset={status.dataset} backbone={info.embedding.backbone} />
      )}
      {embedding.failedItems > 0 && (
        <section aria-labelledby="failed-h">
          <h2 id="failed-h">Items the backbone could not embed ({num(embedding.failedItems)})</h2>
          <ul>
            {embedding.failures.map((f) => (
              <li key={f.id}>
                <code>{f.id}</code>: {f.reason} — {f.message}
              </li>
            ))}
          </ul>
        </section>
      )}
    </>
  );
}

function Fact(props: { term: string; value: string }) {
  return (
    <div>
      <dt>{props.term}</dt>
      <dd>{props.value}</dd>
    </div>
  );
}

function Rejected(props: { rows: DatasetInfo["status"]["rejected"]; total: number }) {
  if (props.total === 0) return null;
  return (
    <section aria-labelledby="rejected-h">
      <h2 id="rejected-h">Rejected rows</h2>
      {props.rows.length < props.total && (
        <p class="note">
          The first {props.rows.length} of {num(props.total)}.
        </p>
      )}
      <Scroll label="Rejected rows table">
        <table>
          <thead>
            <tr>
              <th scope="col" class="n">
                Line
              </th>
              <th scope="col">Id</th>
              <th scope="col">Field</th>
              <th scope="col">Reason</th>
            </tr>
          </thead>
          <tbody>
            {props.rows.map((r) => (
              <tr key={r.line}>
                <td class="n">{r.line}</td>
                <td>{r.id ?? "—"}</td>
                <td>{r.field ?? "—"}</td>
                <td class="wrap">{r.reason}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </Scroll>
    </section>
  );
}
