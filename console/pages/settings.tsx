/**
 * Settings (scope `admin`): API keys (`GET/POST /v1/keys`, `DELETE /v1/keys/{id}`) and webhooks
 * (`GET/POST /v1/webhooks`, `DELETE /v1/webhooks/{id}`, `GET /v1/webhooks/deliveries`). A new
 * key's value and a new endpoint's signing secret come in one answer only: they are shown once,
 * with a copy button, and forgotten when dismissed. Revoking and removing ask first.
 */
import { useState } from "preact/hooks";
import { api, type Me, seg } from "../api.ts";
import { Checkboxes } from "../checkboxes.tsx";
import { Confirm } from "../confirm.tsx";
import { when } from "../format.ts";
import { Show, useApi } from "../load.tsx";
import { Scroll } from "../scroll.tsx";
import { SCOPES } from "../settings-lists.ts";
import { ShownOnce } from "../shown-once.tsx";
import { Failure } from "./pick.tsx";
import { Webhooks } from "./webhooks.tsx";

interface KeyInfo {
  id: string;
  scopes: string[];
  createdAt: string;
  revoked: boolean;
  revokedAt?: string;
}

/** A question before an action that cannot be undone; the page has one dialog for all of them. */
export interface Ask {
  title: string;
  body: string;
  confirm: string;
  run: () => void;
}

export function SettingsPage(props: { me: Me }) {
  const keys = useApi(() => api<{ keys: KeyInfo[] }>("v1/keys"), []);
  const [asking, setAsking] = useState<Ask>();
  const [error, setError] = useState<string>();
  const revoke = async (id: string) => {
    setError(undefined);
    try {
      await api(`v1/keys/${seg(id)}`, { method: "DELETE" });
      keys.reload();
    } catch (err) {
      setError((err as Error).message);
    }
  };
  return (
    <>
      <h1>Settings</h1>
      <h2>API keys</h2>
      {!props.me.authRequired && (
        <p class="note">
          This loopback server answers without keys while the store has none: once a key exists, every request
          needs one, so sign in with an admin key you create here.
        </p>
      )}
      <Show loaded={keys} what="the keys">
        {({ keys: list }) => (
          <KeyTable
            keys={list}
            self={props.me.keyId}
            onRevoke={(id) =>
              setAsking({
                title: `Revoke key ${id}?`,
                body: "Every client that sends it is refused from now on. This cannot be undone.",
                confirm: "Revoke",
                run: () => void revoke(id),
              })
            }
          />
        )}
      </Show>
      {error && <Failure message={error} />}
      <CreateKey onCreated={keys.reload} />
      <Webhooks ask={setAsking} />
      <Confirm
        title={asking?.title}
        confirm={asking?.confirm ?? ""}
        onConfirm={() => asking?.run()}
        onClose={() => setAsking(undefined)}
      >
        <p>{asking?.body}</p>
      </Confirm>
    </>
  );
}

function KeyTable(props: { keys: KeyInfo[]; self?: string; onRevoke: (id: string) => void }) {
  if (props.keys.length === 0) return <p>No key yet.</p>;
  return (
    <Scroll label="API keys">
      <table>
        <caption class="sr-only">API keys, their scopes and dates</caption>
        <thead>
          <tr>
            <th scope="col">Key</th>
            <th scope="col">Scopes</th>
            <th scope="col">Created</th>
            <th scope="col">State</th>
          </tr>
        </thead>
        <tbody>
          {props.keys.map((k) => (
            <tr key={k.id}>
              <th scope="row">{k.id}</th>
              <td>{k.scopes.join(", ")}</td>
              <td>{when(k.createdAt)}</td>
              <td>
                {k.revoked ? (
                  `revoked ${when(k.revokedAt)}`
                ) : k.id === props.self ? (
                  "active (this session's key)"
                ) : (
                  <button
                    type="button"
                    class="danger"
                    aria-label={`Revoke ${k.id}`}
                    onClick={() => props.onRevoke(k.id)}
                  >
                    Revoke
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </Scroll>
  );
}

function CreateKey(props: { onCreated: () => void }) {
  const [id, setId] = useState("");
  const [scopes, setScopes] = useState<string[]>(["predict"]);
  const [state, setState] = useState<{
    busy?: boolean;
    error?: string;
    secret?: { id: string; key: string };
  }>({});
  const submit = async (e: Event) => {
    e.preventDefault();
    setState({ busy: true });
    try {
      const made = await api<{ key: string; info: KeyInfo }>("v1/keys", {
        method: "POST",
        body: { id, scopes },
      });
      setState({ secret: { id: made.info.id, key: made.key } });
      setId("");
      props.onCreated();
    } catch (err) {
      setState({ error: (err as Error).message });
    }
  };
  return (
    <>
      <h3>Create a key</h3>
      <form class="create" onSubmit={submit}>
        <label for="key-id">Name</label>
        <input
          id="key-id"
          required
          pattern="[a-z0-9\-]{1,32}"
          placeholder="webshop"
          value={id}
          onInput={(e) => setId(e.currentTarget.value)}
        />
        <Checkboxes legend="Scopes" options={SCOPES} checked={scopes} onChange={setScopes} />
        <button type="submit" disabled={state.busy || scopes.length === 0}>
          Create key
        </button>
      </form>
      <div aria-live="polite">
        {state.error && <Failure message={state.error} />}
        {state.secret && (
          <ShownOnce what={`Key ${state.secret.id}`} value={state.secret.key} onDone={() => setState({})} />
        )}
      </div>
    </>
  );
}
