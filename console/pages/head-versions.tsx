/**
 * A head's versions with promote and rollback of `live`, each behind a confirmation dialog:
 * promote is `PUT /v1/heads/{head}/aliases/live` with `expectedVersion` (so a move someone else
 * made meanwhile is refused, not overwritten), rollback is `POST …/aliases/live/rollback`, offered
 * when the alias document (`GET …/aliases/live`) names a previous version.
 */
import { useState } from "preact/hooks";
import { api, seg, type VersionRecord } from "../api.ts";
import { Confirm } from "../confirm.tsx";
import { fixed, pct, when } from "../format.ts";
import { href } from "../route.ts";
import { Scroll } from "../scroll.tsx";

const metricText = (m?: { name: string; value: number }) =>
  m ? `${m.name} ${m.name === "rmse" ? fixed(m.value) : pct(m.value)}` : "—";

interface LiveAlias {
  version: string;
  previous?: string;
}

export interface Notice {
  text: string;
  error?: boolean;
  /** The alias moved: the versions need reloading. */
  moved?: boolean;
}

type Pending = { kind: "promote"; version: string } | { kind: "rollback"; to: string };

export function Versions(props: {
  head: string;
  list: VersionRecord[];
  chosen?: string;
  live?: LiveAlias;
  /** Whether the caller may move aliases (a `train` key); others see the list only. */
  canMove: boolean;
  /** After a move or a failed one: what to tell (the page reloads the list on a move). */
  onMoved: (notice: Notice) => void;
}) {
  const [pending, setPending] = useState<Pending>();
  const live = props.live?.version;
  const act = async (p: Pending) => {
    const base = `v1/heads/${seg(props.head)}/aliases/live`;
    try {
      if (p.kind === "promote") {
        await api(base, { method: "PUT", body: { version: p.version, expectedVersion: live ?? null } });
        props.onMoved({ text: `Promoted: live now points to ${p.version}.`, moved: true });
      } else {
        const r = await api<{ from: string; to: string }>(`${base}/rollback`, { method: "POST" });
        props.onMoved({ text: `Rolled back: live now points to ${r.to} (was ${r.from}).`, moved: true });
      }
    } catch (err) {
      props.onMoved({ text: (err as Error).message, error: true });
    }
  };
  return (
    <section aria-labelledby="versions-h">
      <h2 id="versions-h">Versions</h2>
      {props.canMove && props.live?.previous && (
        <p>
          <button type="button" onClick={() => setPending({ kind: "rollback", to: props.live!.previous! })}>
            Roll back live to {props.live.previous}
          </button>
        </p>
      )}
      <VersionTable
        {...props}
        live={live}
        onPromote={(version) => setPending({ kind: "promote", version })}
      />
      <Confirm
        title={
          pending?.kind === "promote"
            ? `Promote ${pending.version} to live?`
            : pending
              ? `Roll back live to ${pending.to}?`
              : undefined
        }
        confirm={pending?.kind === "promote" ? "Promote" : "Roll back"}
        onConfirm={() => pending && void act(pending)}
        onClose={() => setPending(undefined)}
      >
        <p>
          Predictions without a version or alias will be answered by{" "}
          {pending?.kind === "promote" ? pending.version : pending?.to} instead of {live ?? "no version"}.
        </p>
      </Confirm>
    </section>
  );
}

function VersionTable(props: {
  head: string;
  list: VersionRecord[];
  chosen?: string;
  live?: string;
  canMove: boolean;
  onPromote: (version: string) => void;
}) {
  return (
    <Scroll label="Versions table">
      <table>
        <thead>
          <tr>
            <th scope="col">Version</th>
            <th scope="col">Aliases</th>
            <th scope="col">Type</th>
            <th scope="col">Metric</th>
            <th scope="col">Created</th>
            {props.canMove && <th scope="col">Live</th>}
          </tr>
        </thead>
        <tbody>
          {[...props.list].reverse().map((v) => (
            <tr key={v.version}>
              <th scope="row">
                <a
                  href={href("heads", props.head, v.version)}
                  aria-current={v.version === props.chosen ? "true" : undefined}
                >
                  {v.version}
                </a>
              </th>
              <td>{v.aliases.join(", ") || "—"}</td>
              <td>{v.type ?? "—"}</td>
              <td>{metricText(v.metric)}</td>
              <td>{when(v.createdAt)}</td>
              {props.canMove && (
                <td>
                  {v.version === props.live ? (
                    "live"
                  ) : (
                    <button type="button" class="small" onClick={() => props.onPromote(v.version)}>
                      Promote<span class="sr-only"> {v.version}</span>
                    </button>
                  )}
                </td>
              )}
            </tr>
          ))}
        </tbody>
      </table>
    </Scroll>
  );
}
