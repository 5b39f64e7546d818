/** Sign-in: an API key, kept in this tab's sessionStorage and sent as `x-api-key`. */
import { useState } from "preact/hooks";

export function SignIn(props: { error?: string; onKey: (key: string) => Promise<unknown> }) {
  const [key, setKey] = useState("");
  const [busy, setBusy] = useState(false);
  return (
    <main class="signin">
      <h1>headstart</h1>
      <p>
        This server needs an API key. Create one with <code>headstart keys create</code>.
      </p>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          setBusy(true);
          props.onKey(key.trim()).finally(() => setBusy(false));
        }}
      >
        <label for="api-key">API key</label>
        <input
          id="api-key"
          type="password"
          autocomplete="off"
          spellcheck={false}
          required
          placeholder="hs_…"
          value={key}
          onInput={(e) => setKey(e.currentTarget.value)}
        />
        <button type="submit" disabled={busy}>
          Sign in
        </button>
        {props.error && (
          <p class="error" role="alert">
            {props.error}
          </p>
        )}
      </form>
    </main>
  );
}
