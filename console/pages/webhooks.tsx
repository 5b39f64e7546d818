/**
 * Settings' webhooks: the endpoints (`GET /v1/webhooks`), adding one (`POST`, whose signing secret
 * is shown once), removing one (`DELETE /v1/webhooks/{id}`, after a confirmation) and the recent
 * deliveries (`GET /v1/webhooks/deliveries`).
 */
import { useState } from "preact/hooks";
import { api, seg } from "../api.ts";
import { Checkboxes } from "../checkboxes.tsx";
import { when } from "../format.ts";
import { Show, useApi } from "../load.tsx";
import { Scroll } from "../scroll.tsx";
import { EVENTS } from "../settings-lists.ts";
import { ShownOnce } from "../shown-once.tsx";
import { Failure } from "./pick.tsx";
import type { Ask } from "./settings.tsx";

interface Webhook {
  id: string;
  url: string;
  events: string[];
  createdAt: string;
}

interface Delivery {
  event: { id: string; type: string; createdAt: string };
  webhook: string;
  url: string;
  attempts: Array<{ at: string; status?: number; error?: string }>;
  outcome: "pending" | "delivered" | "failed";
  updatedAt: string;
}

const RECENT = 20;

export function Webhooks(props: { ask: (a: Ask) => void }) {
  const hooks = useApi(() => api<{ webhooks: Webhook[] }>("v1/webhooks"), []);
  const [error, setError] = useState<string>();
  const remove = async (id: string) => {
    setError(undefined);
    try {
      await api(`v1/webhooks/${seg(id)}`, { method: "DELETE" });
      hooks.reload();
    } catch (err) {
      setError((err as Error).message);
    }
  };
  return (
    <>
      <h2>Webhooks</h2>
      <Show loaded={hooks} what="the webhooks">
        {({ webhooks }) => (
          <HookTable
            hooks={webhooks}
            onRemove={(h) =>
              props.ask({
                title: `Remove webhook ${h.url}?`,
                body: "No more events are delivered to it.",
                confirm: "Remove",
                run: () => void remove(h.id),
              })
            }
          />
        )}
      </Show>
      {error && <Failure message={error} />}
      <AddHook onAdded={hooks.reload} />
      <Deliveries />
    </>
  );
}

function HookTable(props: { hooks: Webhook[]; onRemove: (hook: Webhook) => void }) {
  if (props.hooks.length === 0) return <p>No endpoint yet.</p>;
  return (
    <Scroll label="Webhook endpoints">
      <table>
        <caption class="sr-only">Webhook endpoints and their events</caption>
        <thead>
          <tr>
            <th scope="col">URL</th>
            <th scope="col">Events</th>
            <th scope="col">Added</th>
            <th scope="col">Remove</th>
          </tr>
        </thead>
        <tbody>
          {props.hooks.map((h) => (
            <tr key={h.id}>
              <th scope="row" class="wrap">
                {h.url}
              </th>
              <td class="wrap">{h.events.join(", ")}</td>
              <td>{when(h.createdAt)}</td>
              <td>
                <button
                  type="button"
                  class="danger"
                  aria-label={`Remove ${h.url}`}
                  onClick={() => props.onRemove(h)}
                >
                  Remove
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </Scroll>
  );
}

function AddHook(props: { onAdded: () => void }) {
  const [url, setUrl] = useState("");
  const [events, setEvents] = useState<string[]>(["head.trained"]);
  const [state, setState] = useState<{ busy?: boolean; error?: string; secret?: string }>({});
  const submit = async (e: Event) => {
    e.preventDefault();
    setState({ busy: true });
    try {
      const added = await api<{ id: string; secret: string }>("v1/webhooks", {
        method: "POST",
        body: { url, events },
      });
      setState({ secret: added.secret });
      setUrl("");
      props.onAdded();
    } catch (err) {
      setState({ error: (err as Error).message });
    }
  };
  return (
    <>
      <h3>Add an endpoint</h3>
      <form class="create" onSubmit={submit}>
        <label for="hook-url">URL</label>
        <input
          id="hook-url"
          type="url"
          required
          placeholder="https://hooks.example.com/headstart"
          value={url}
          onInput={(e) => setUrl(e.currentTarget.value)}
        />
        <Checkboxes legend="Events" options={EVENTS} checked={events} onChange={setEvents} />
        <button type="submit" disabled={state.busy || events.length === 0}>
          Add endpoint
        </button>
      </form>
      <div aria-live="polite">
        {state.error && <Failure message={state.error} />}
        {state.secret && <ShownOnce what="Signing secret" value={state.secret} onDone={() => setState({})} />}
      </div>
    </>
  );
}

function Deliveries() {
  const loaded = useApi(() => api<{ deliveries: Delivery[] }>("v1/webhooks/deliveries"), []);
  return (
    <>
      <h3>Recent deliveries</h3>
      <Show loaded={loaded} what="the deliveries">
        {({ deliveries }) =>
          deliveries.length === 0 ? (
            <p>None yet.</p>
          ) : (
            <Scroll label="Recent deliveries">
              <table>
                <caption class="sr-only">The newest deliveries: event, endpoint, outcome, attempts</caption>
                <thead>
                  <tr>
                    <th scope="col">Event</th>
                    <th scope="col">Endpoint</th>
                    <th scope="col">Outcome</th>
                    <th scope="col">Last attempt</th>
                    <th scope="col">Updated</th>
                  </tr>
                </thead>
                <tbody>
                  {deliveries.slice(0, RECENT).map((d) => {
                    const last = d.attempts.at(-1);
                    return (
                      <tr key={`${d.event.id}/${d.webhook}`}>
                        <th scope="row">{d.event.type}</th>
                        <td class="wrap">{d.url}</td>
                        <td>{d.outcome}</td>
                        <td>{last ? (last.status ?? last.error ?? "—") : "—"}</td>
                        <td>{when(d.updatedAt)}</td>
                      </tr>
                    );
                  })}
                </tbody>
              </table>
            </Scroll>
          )
        }
      </Show>
    </>
  );
}
