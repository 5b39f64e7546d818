/**
 * The shell: who the caller is (`GET /v1/me`), sign-in when the server wants a key, navigation
 * to the pages the key's scopes can use, and the page the hash names.
 */
import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError, api, apiKey, type Me, type Scope } from "./api.ts";
import { DatasetPage, DatasetsPage } from "./pages/datasets.tsx";
import { HeadPage, HeadsPage } from "./pages/heads.tsx";
import { SettingsPage } from "./pages/settings.tsx";
import { TrainPage } from "./pages/train.tsx";
import { TryItPage } from "./pages/try-it.tsx";
import { WorkPage } from "./pages/work.tsx";
import { href, parseRoute, type Route, useHash } from "./route.ts";
import { SignIn } from "./sign-in.tsx";

type Section = "datasets" | "heads" | "try" | "work" | "settings";

/** Which sections a key's scopes can use (the API refuses the rest anyway). */
export function sectionsFor(scopes: readonly Scope[]): Section[] {
  const has = (...s: Scope[]) => scopes.includes("admin") || s.some((x) => scopes.includes(x));
  const out: Section[] = [];
  if (has("ingest", "train")) out.push("datasets");
  if (has("train")) out.push("heads");
  if (has("predict")) out.push("try");
  if (has("train")) out.push("work");
  if (scopes.includes("admin")) out.push("settings");
  return out;
}

const LABELS: Record<Section, string> = {
  datasets: "Datasets",
  heads: "Heads",
  try: "Try it",
  work: "Work",
  settings: "Settings",
};
const sectionOf = (r: Route): Section =>
  r.page === "dataset"
    ? "datasets"
    : r.page === "head" || r.page === "train"
      ? "heads"
      : r.page === "try"
        ? "try"
        : r.page;

type Who = { state: "loading" } | { state: "signin"; error?: string } | { state: "in"; me: Me };

export function App() {
  const [who, setWho] = useState<Who>({ state: "loading" });
  const check = () =>
    api<Me>("v1/me").then(
      (me) => setWho({ state: "in", me }),
      (err: Error) => {
        const refused = err instanceof ApiError && (err.status === 401 || err.status === 403);
        if (refused && apiKey.get()) apiKey.clear();
        setWho({ state: "signin", error: refused && who.state !== "loading" ? err.message : undefined });
      },
    );
  useEffect(() => void check(), []);
  if (who.state === "loading") return <p aria-live="polite">Loading…</p>;
  if (who.state === "signin") {
    return (
      <SignIn
        error={who.error}
        onKey={(key) => {
          apiKey.set(key);
          return check();
        }}
      />
    );
  }
  const signOut = () => {
    apiKey.clear();
    setWho({ state: "signin" });
  };
  return <Shell me={who.me} onSignOut={signOut} />;
}

function Shell(props: { me: Me; onSignOut: () => void }) {
  const hash = useHash();
  const sections = sectionsFor(props.me.scopes);
  const parsed = parseRoute(hash);
  const route: Route | undefined = parsed && sections.includes(sectionOf(parsed)) ? parsed : undefined;
  // A section's first page is what its own link opens (`#/work` is the labelling queue).
  const shown: Route | undefined = route ?? (sections[0] ? parseRoute(href(sections[0])) : undefined);
  const main = useRef<HTMLElement>(null);
  const first = useRef(true);
  // A new page moves focus to its content, as a page load would, so keyboard users start there
  // (not on the first page: a fresh load starts at the top, before the skip link).
  useEffect(() => {
    if (first.current) first.current = false;
    else main.current?.focus();
  }, [hash]);
  return (
    <>
      {/* A button, not a link to #main: the hash holds the route. */}
      <button type="button" class="skip" onClick={() => main.current?.focus()}>
        Skip to content
      </button>
      <header class="top">
        <span class="brand">headstart</span>
        <nav aria-label="Sections">
          <ul>
            {sections.map((s) => (
              <li key={s}>
                <a href={href(s)} aria-current={shown && sectionOf(shown) === s ? "page" : undefined}>
                  {LABELS[s]}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        {props.me.authRequired && (
          <span class="who">
            <span class="key-id">{props.me.keyId}</span>
            <button type="button" onClick={props.onSignOut}>
              Sign out
            </button>
          </span>
        )}
      </header>
      <main id="main" ref={main} tabIndex={-1}>
        {shown ? <Page route={shown} me={props.me} /> : <p>This key has no scope the console can use.</p>}
      </main>
    </>
  );
}

function Page({ route, me }: { route: Route; me: Me }) {
  switch (route.page) {
    case "datasets":
      return <DatasetsPage />;
    case "dataset":
      return <DatasetPage name={route.name} />;
    case "heads":
      return <HeadsPage />;
    case "head":
      return <HeadPage name={route.name} version={route.version} />;
    case "try":
      return <TryItPage head={route.head} />;
    case "work":
      return <WorkPage tab={route.tab} args={route.args} />;
    case "settings":
      return <SettingsPage me={me} />;
    case "train":
      return <TrainPage dataset={route.dataset} />;
  }
}
