/**
 * Routes live in the URL's hash (`#/datasets/reviews`), so the server serves one page at `/` and
 * needs no route per screen; back, forward and bookmarks still work.
 */
import { useEffect, useState } from "preact/hooks";

export type Route =
  | { page: "datasets" }
  | { page: "dataset"; name: string }
  | { page: "heads" }
  | { page: "head"; name: string; version?: string }
  | { page: "train"; dataset?: string }
  | { page: "try"; head?: string }
  | { page: "work"; tab: WorkTab; args: string[] }
  | { page: "settings" };

/** The work queues' tabs (`#/work/<tab>/…`); the rest of the path is the tab's own. */
export const WORK_TABS = ["label", "issues", "batch", "drift"] as const;
export type WorkTab = (typeof WORK_TABS)[number];

export function parseRoute(hash: string): Route | undefined {
  const parts = hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  const [top, name, version] = parts;
  if (top === "datasets") return name ? { page: "dataset", name } : { page: "datasets" };
  if (top === "heads") return name ? { page: "head", name, version } : { page: "heads" };
  if (top === "try") return { page: "try", head: name };
  if (top === "work") {
    const tab = WORK_TABS.find((t) => t === name) ?? "label";
    return { page: "work", tab, args: parts.slice(2) };
  }
  if (top === "settings") return { page: "settings" };
  if (top === "train") return { page: "train", dataset: name };
  return undefined;
}

export const href = (...parts: string[]) => `#/${parts.map(encodeURIComponent).join("/")}`;

export function useHash(): string {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const onChange = () => setHash(location.hash);
    addEventListener("hashchange", onChange);
    return () => removeEventListener("hashchange", onChange);
  }, []);
  return hash;
}
