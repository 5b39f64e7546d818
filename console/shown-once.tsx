/**
 * A secret the API answers once (a new API key, a webhook's signing secret): shown in a read-only
 * field with a copy button, and forgotten when dismissed.
 */
import { useState } from "preact/hooks";

/** A secret the API answers once: shown, copyable, gone when dismissed. */
export function ShownOnce(props: { what: string; value: string; onDone: () => void }) {
  const [copied, setCopied] = useState<string>();
  const copy = () =>
    navigator.clipboard
      .writeText(props.value)
      .then(() => setCopied("Copied."))
      .catch(() => setCopied("Copying is not allowed here: select the text and copy it."));
  const fieldId = `secret-${props.what.replace(/\W+/g, "-")}`;
  return (
    <section class="secret" aria-label={`${props.what}: shown once`}>
      <p>
        <strong>{props.what}</strong>: copy it now, it is not shown again.
      </p>
      <label for={fieldId}>Secret</label>
      <input id={fieldId} readOnly value={props.value} onFocus={(e) => e.currentTarget.select()} />
      <span class="choices">
        <button type="button" onClick={() => void copy()}>
          Copy
        </button>
        <button type="button" class="secondary" onClick={props.onDone}>
          Done
        </button>
      </span>
      {copied && <p aria-live="polite">{copied}</p>}
    </section>
  );
}
