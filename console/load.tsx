/** Loading one API answer into a page: its data, its error, and a way to load it again. */
import type { ComponentChildren } from "preact";
import { useCallback, useEffect, useState } from "preact/hooks";

export interface Loaded<T> {
  data?: T;
  error?: Error;
  reload: () => void;
}

export function useApi<T>(load: () => Promise<T>, deps: unknown[]): Loaded<T> {
  const [state, setState] = useState<{ data?: T; error?: Error }>({});
  const [tick, setTick] = useState(0);
  // The caller names what the load depends on (`deps`), as with useEffect itself.
  useEffect(() => {
    let live = true;
    setState({});
    load().then(
      (data) => live && setState({ data }),
      (error: Error) => live && setState({ error }),
    );
    return () => {
      live = false;
    };
  }, [...deps, tick]);
  return { ...state, reload: useCallback(() => setTick((t) => t + 1), []) };
}

/** Renders `children(data)` once loaded; meanwhile a status line, or the API's error. */
export function Show<T>(props: {
  loaded: Loaded<T>;
  what: string;
  children: (data: T) => ComponentChildren;
}) {
  const { data, error } = props.loaded;
  if (error) {
    return (
      <p class="error" role="alert">
        Could not load {props.what}: {error.message}
      </p>
    );
  }
  if (data === undefined) return <p aria-live="polite">Loading {props.what}…</p>;
  return <>{props.children(data)}</>;
}
