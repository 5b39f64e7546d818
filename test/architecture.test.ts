/**
 * The layout's rules (the map at the top of docs/architecture.md), read from the import graph of
 * `shared/`, `functions/`, `infra/`, `scripts/` and `console/` (the browser's code, which imports
 * none of the server's): no import cycle between the folders of
 * `shared/` (its top-level files count as one node each), no arrow the wrong way (the library
 * never imports its entry points, the infrastructure or the dev tools; the infrastructure never
 * imports the functions it deploys; the estimators in `shared/learn/` and the ONNX adapter in
 * `shared/onnx/` import only what they are allowed; domain code never names an AWS adapter), and
 * the AWS SDK and onnxruntime only in their adapters.
 *
 * Imports are read with TypeScript's `preProcessFile`: static `import … from`, `export … from`,
 * `import type`, `require` and `import("…")` with a string literal. An import whose specifier is
 * computed at run time is not seen (none is relative today).
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import ts from "typescript";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const SCANNED = ["shared", "functions", "infra", "scripts", "console"];
const SOURCE = /\.(ts|tsx|mts|cts|js|mjs|cjs)$/;

/**
 * Packages with one home: only files under the given folder may import them. The AWS SDK lives in
 * the AWS adapters (behind `ObjectStore`, `JobRunner`, `TrainDispatcher`); onnxruntime and the
 * ONNX protobuf in the ONNX adapter (sessions, graph writing and running, conversion, fusion).
 * Dev tools (`scripts/`) are exempt.
 */
const PACKAGE_HOMES: Array<{ pkg: string; home: string }> = [
  { pkg: "@aws-sdk/", home: "shared/aws/" },
  { pkg: "onnxruntime-node", home: "shared/onnx/" },
  { pkg: "onnx-proto", home: "shared/onnx/" },
];

/**
 * Folders that may import only what is listed (relative imports; `packages` for bare ones). The
 * estimators are pure numerics: no store, no API, no zod, no file or network I/O.
 */
const CONFINED: Array<{ folder: string; may: string[]; packages: string[]; why: string }> = [
  {
    folder: "shared/learn/",
    may: ["shared/learn/", "shared/onnx/", "shared/errors.ts"],
    packages: ["node:os", "node:async_hooks"],
    why: "estimators are pure numerics; the lifecycle (store, versions, API) is heads/",
  },
  {
    folder: "shared/onnx/",
    may: ["shared/onnx/", "shared/errors.ts"],
    packages: [
      "onnxruntime-node",
      "onnx-proto",
      "node:fs",
      "node:fs/promises",
      "node:path",
      "node:module",
      "node:os",
    ],
    why: "the ONNX adapter knows graphs and sessions, nothing of heads, backbones or stores",
  },
  {
    folder: "console/",
    may: ["console/"],
    packages: ["preact", "preact/hooks", "preact/jsx-runtime", "fflate"],
    why: "the web console is a client of the public API over fetch: it imports no server code",
  },
];

/**
 * What the rest of `shared/` and `functions/` may take from `learn/`: the estimator interface and
 * registry, the task-independent tools around fitting (task enum, limits, calibration, metrics,
 * splits) and the data-quality scorers (active learning, confident learning, MMD, unknown
 * inputs). A single estimator's module is reached only through the registry, so a new head type
 * is one module plus one registry line.
 */
const LEARN_PUBLIC = new Set(
  [
    "estimator",
    "registry",
    "task",
    "budget",
    "calibration",
    "metrics",
    "task-metrics",
    "split",
    "confident-learning",
    "active",
    "ood",
    "ood-select",
    "mmd",
    "pca",
  ].map((m) => `shared/learn/${m}.ts`),
);

/**
 * Inside `shared/`, the AWS adapters are wired in only by the composition roots; domain code
 * holds the interfaces. Entry points (`functions/`) and `infra/` may name them directly.
 */
const AWS_WIRING = new Set(["shared/bootstrap.ts", "shared/open-store.ts"]);

/** `from` may not import `to` (paths relative to the repository root, `/`-separated). */
const FORBIDDEN: Array<{ from: string; to: string; why: string }> = [
  { from: "shared/", to: "functions/", why: "the library never imports its entry points" },
  { from: "shared/", to: "infra/", why: "the library never imports the infrastructure" },
  { from: "shared/", to: "scripts/", why: "the library never imports dev tools" },
  { from: "shared/", to: "test/", why: "the library never imports tests" },
  { from: "infra/", to: "functions/", why: "infra deploys the bundles; it never loads their code" },
  { from: "functions/", to: "infra/", why: "deployed code never bundles the CDK app" },
  { from: "functions/", to: "scripts/", why: "deployed code never bundles dev tools" },
  { from: "functions/", to: "test/", why: "deployed code never bundles tests" },
  {
    from: "shared/",
    to: "console/",
    why: "the server never imports the browser's code (it serves its build)",
  },
  {
    from: "functions/",
    to: "console/",
    why: "the server never imports the browser's code (it serves its build)",
  },
];

interface ImportEdge {
  /** The importing file, relative to the root. */
  from: string;
  /** A relative specifier resolved against the root, or the bare package specifier. */
  to: string;
  relative: boolean;
}

/** The specifiers one source text imports (static, re-export, type-only, `require`, dynamic). */
export function importsOf(source: string): string[] {
  return ts.preProcessFile(source, true, true).importedFiles.map((f) => f.fileName);
}

function sourceFiles(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    if (name === "node_modules" || name.startsWith(".")) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) sourceFiles(path, out);
    else if (SOURCE.test(name) && !name.endsWith(".d.ts")) out.push(path);
  }
  return out;
}

const posix = (p: string) => p.split(sep).join("/");

function readImportGraph(): ImportEdge[] {
  const edges: ImportEdge[] = [];
  for (const file of SCANNED.flatMap((d) => sourceFiles(join(ROOT, d)))) {
    const from = posix(relative(ROOT, file));
    for (const spec of importsOf(readFileSync(file, "utf8"))) {
      if (spec.startsWith(".")) {
        edges.push({ from, to: posix(relative(ROOT, resolve(dirname(file), spec))), relative: true });
      } else {
        edges.push({ from, to: spec, relative: false });
      }
    }
  }
  return edges;
}

/** The node a file of `shared/` belongs to: its folder (`shared/api`), or itself at the top. */
export function sharedNode(path: string): string | undefined {
  const parts = path.split("/");
  if (parts[0] !== "shared") return undefined;
  return parts.length > 2 ? `shared/${parts[1]}` : path;
}

/** One cycle per strongly connected part of `graph`, as a path that ends where it starts. */
export function findCycles(graph: ReadonlyMap<string, Iterable<string>>): string[][] {
  const cycles: string[][] = [];
  const done = new Set<string>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const visit = (node: string) => {
    stack.push(node);
    onStack.add(node);
    for (const next of graph.get(node) ?? []) {
      if (onStack.has(next)) cycles.push([...stack.slice(stack.indexOf(next)), next]);
      else if (!done.has(next)) visit(next);
    }
    stack.pop();
    onStack.delete(node);
    done.add(node);
  };
  for (const node of [...graph.keys()].sort()) if (!done.has(node)) visit(node);
  return cycles;
}

/** The folder graph of `shared/` (edges inside one node left out). */
export function sharedFolderGraph(edges: readonly ImportEdge[]): Map<string, Set<string>> {
  const graph = new Map<string, Set<string>>();
  for (const e of edges) {
    if (!e.relative) continue;
    const a = sharedNode(e.from);
    const b = sharedNode(e.to);
    if (!a || !b || a === b) continue;
    if (!graph.has(a)) graph.set(a, new Set());
    graph.get(a)?.add(b);
  }
  return graph;
}

/** The edges that break a rule of `FORBIDDEN`, `CONFINED` or `AWS_WIRING`, as readable lines. */
export function wrongArrows(edges: readonly ImportEdge[]): string[] {
  const wrong: string[] = [];
  for (const e of edges) {
    if (e.relative) {
      for (const rule of FORBIDDEN) {
        if (e.from.startsWith(rule.from) && e.to.startsWith(rule.to)) {
          wrong.push(`${e.from} → ${e.to} (${rule.why})`);
        }
      }
      if (
        e.to.startsWith("shared/learn/") &&
        (e.from.startsWith("shared/") || e.from.startsWith("functions/")) &&
        !e.from.startsWith("shared/learn/") &&
        !LEARN_PUBLIC.has(e.to)
      ) {
        wrong.push(
          `${e.from} → ${e.to} (estimators are reached through learn/estimator.ts and learn/registry.ts)`,
        );
      }
      if (
        e.to.startsWith("shared/aws/") &&
        e.from.startsWith("shared/") &&
        !e.from.startsWith("shared/aws/") &&
        !AWS_WIRING.has(e.from)
      ) {
        wrong.push(`${e.from} → ${e.to} (domain code reaches AWS through its interfaces)`);
      }
    }
    for (const rule of CONFINED) {
      if (!e.from.startsWith(rule.folder)) continue;
      const ok = e.relative
        ? rule.may.some((m) => e.to.startsWith(m))
        : rule.packages.includes(e.to) || e.to.startsWith(".");
      if (!ok) wrong.push(`${e.from} → ${e.to} (${rule.why})`);
    }
  }
  return wrong;
}

/** Imports of a package outside its one home (`PACKAGE_HOMES`), in `shared/` and `functions/`. */
export function homelessPackageImports(edges: readonly ImportEdge[]): string[] {
  const wrong: string[] = [];
  for (const e of edges) {
    if (e.relative || e.from.startsWith("scripts/") || e.from.startsWith("infra/")) continue;
    for (const { pkg, home } of PACKAGE_HOMES) {
      if (e.to.startsWith(pkg) && !e.from.startsWith(home)) wrong.push(`${e.from} → ${e.to} (only ${home})`);
    }
  }
  return wrong;
}

const NODE_TOKEN = /^[a-z][a-z0-9-]*(\/|\.ts)$/;

/**
 * The rows of the map's picture in docs/architecture.md, top first: each row the `shared/` nodes
 * it names (its leading words that look like `folder/` or `file.ts`).
 */
export function mapRows(markdown: string): string[][] {
  const section = markdown.split("## Map: folders and the direction of imports")[1] ?? "";
  const picture = section.split("```")[1] ?? "";
  const rows: string[][] = [];
  for (const line of picture.split("\n")) {
    if (!/^ {3}[a-z]/.test(line)) continue;
    const nodes: string[] = [];
    for (const word of line.trim().split(/\s+/)) {
      if (!NODE_TOKEN.test(word)) break;
      nodes.push(`shared/${word.replace(/\/$/, "")}`);
    }
    rows.push(nodes);
  }
  return rows;
}

/** Where the picture disagrees with the folder graph: a node missing or twice, an arrow upward. */
export function mapMismatches(
  rows: readonly string[][],
  graph: ReadonlyMap<string, Iterable<string>>,
): string[] {
  const rowOf = new Map<string, number>();
  const problems: string[] = [];
  rows.forEach((row, r) => {
    for (const n of row) {
      if (rowOf.has(n)) problems.push(`${n} stands in two rows`);
      rowOf.set(n, r);
    }
  });
  const nodes = new Set([...graph.keys(), ...[...graph.values()].flatMap((t) => [...t])]);
  for (const n of [...nodes].sort()) if (!rowOf.has(n)) problems.push(`${n} is not in the picture`);
  for (const n of [...rowOf.keys()].sort())
    if (!nodes.has(n)) problems.push(`${n} is in the picture but not in shared/`);
  for (const [from, tos] of graph) {
    for (const to of tos) {
      const a = rowOf.get(from);
      const b = rowOf.get(to);
      if (a !== undefined && b !== undefined && b <= a)
        problems.push(`${from} → ${to} does not point down the picture`);
    }
  }
  return problems;
}

/** Functions may be at most this many lines (signature to closing brace) in shared/, functions/, infra/, console/. */
const MAX_FUNCTION_LINES = 80;
/**
 * Functions allowed past the limit, each with its reason. None today: the WebAssembly kernel's
 * emitter (learn/logistic-kernel-wasm.ts), the one candidate, was split into per-block emitters.
 */
const LONG_FUNCTION_EXCEPTIONS: ReadonlyMap<string, string> = new Map();

/** `file:line name (N lines)` for every function-like node longer than `max` lines in `source`. */
export function longFunctions(file: string, source: string, max = MAX_FUNCTION_LINES): string[] {
  const sf = ts.createSourceFile(file, source, ts.ScriptTarget.Latest, true);
  const long: string[] = [];
  const visit = (node: ts.Node) => {
    if (ts.isFunctionLike(node) && "body" in node && node.body) {
      const first = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line;
      const last = sf.getLineAndCharacterOfPosition(node.end).line;
      const lines = last - first + 1;
      const name =
        node.name?.getText(sf) ?? (ts.isConstructorDeclaration(node) ? "constructor" : "(anonymous)");
      if (lines > max) long.push(`${file}:${first + 1} ${name} (${lines} lines)`);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return long;
}

describe("architecture: the import graph follows the map in docs/architecture.md", () => {
  const edges = readImportGraph();

  test("the graph was read (guards against a test that passes on nothing)", () => {
    const files = new Set(edges.map((e) => e.from));
    assert.ok(files.size > 100, `only ${files.size} files with imports found`);
    assert.ok(
      edges.some((e) => e.from === "shared/api/app.ts" && e.to.startsWith("shared/platform.ts")),
      "shared/api/app.ts → shared/platform.ts not found",
    );
    assert.ok(edges.some((e) => e.from.startsWith("functions/") && e.to.startsWith("shared/")));
    assert.ok(
      edges.some((e) => e.from === "console/main.tsx" && e.to === "preact"),
      "console/ is read",
    );
  });

  test("no import cycle between the folders of shared/", () => {
    const cycles = findCycles(sharedFolderGraph(edges));
    assert.deepEqual(
      cycles.map((c) => c.join(" → ")),
      [],
      "folder-level import cycles; move what both sides need to the lower one",
    );
  });

  test("the picture in docs/architecture.md is today's graph", () => {
    const rows = mapRows(readFileSync(join(ROOT, "docs/architecture.md"), "utf8"));
    assert.ok(rows.length >= 8, `only ${rows.length} rows read from the picture`);
    const graph = sharedFolderGraph(edges);
    // Every node of shared/ counts, also one that imports nothing of shared/.
    for (const file of edges.map((e) => e.from)) {
      const node = sharedNode(file);
      if (node && !graph.has(node)) graph.set(node, new Set());
    }
    assert.deepEqual(mapMismatches(rows, graph), [], "redraw the map in docs/architecture.md");
  });

  test("no arrow runs the wrong way", () => {
    assert.deepEqual(wrongArrows(edges), []);
  });

  test("the AWS SDK and onnxruntime are imported only in their adapters", () => {
    assert.deepEqual(
      homelessPackageImports(edges),
      [],
      "go through ObjectStore/JobRunner/TrainDispatcher (shared/aws/) or the ONNX adapter (shared/onnx/)",
    );
    for (const { home } of PACKAGE_HOMES) {
      assert.ok(
        edges.some((e) => e.from.startsWith(home) && !e.relative),
        `${home} imports no package: the rule would pass on nothing`,
      );
    }
  });
});

describe("architecture: functions fit on a screen", () => {
  test(`no function in shared/, functions/, infra/ or console/ is longer than ${MAX_FUNCTION_LINES} lines`, () => {
    const files = ["shared", "functions", "infra", "console"].flatMap((d) => sourceFiles(join(ROOT, d)));
    assert.ok(files.length > 100, `only ${files.length} files read`);
    const long = files
      .flatMap((f) => longFunctions(posix(relative(ROOT, f)), readFileSync(f, "utf8")))
      .filter((entry) => !LONG_FUNCTION_EXCEPTIONS.has(entry.split(" (")[0]));
    assert.deepEqual(
      long,
      [],
      "split these into named steps (or list one in LONG_FUNCTION_EXCEPTIONS with its reason)",
    );
  });

  test("longFunctions counts declarations, methods, arrows and constructors", () => {
    const body = (n: number) => Array.from({ length: n }, (_, i) => `  x += ${i};`).join("\n");
    const source = [
      `function short() {\n${body(3)}\n}`,
      `function long() {\n${body(5)}\n}`,
      `const arrow = () => {\n${body(5)}\n};`,
      `class C {\n  constructor() {\n${body(5)}\n  }\n}`,
    ].join("\n");
    assert.deepEqual(longFunctions("x.ts", source, 6), [
      "x.ts:6 long (7 lines)",
      "x.ts:13 (anonymous) (7 lines)",
      "x.ts:21 constructor (7 lines)",
    ]);
  });
});

describe("architecture: the checker itself can fail", () => {
  test("importsOf reads static, re-export, type-only and dynamic imports", () => {
    const source = [
      'import { a } from "./a.ts";',
      'import type { B } from "../b/b.ts";',
      'export { c } from "./c.ts";',
      'export * from "./d.ts";',
      'const e = await import("./e.ts");',
      'import { S3Client } from "@aws-sdk/client-s3";',
    ].join("\n");
    assert.deepEqual(importsOf(source).sort(), [
      "../b/b.ts",
      "./a.ts",
      "./c.ts",
      "./d.ts",
      "./e.ts",
      "@aws-sdk/client-s3",
    ]);
  });

  test("findCycles reports a cycle path in a synthetic graph, and none in a tree", () => {
    const cyclic = new Map([
      ["shared/api", ["shared/platform.ts"]],
      ["shared/platform.ts", ["shared/heads"]],
      ["shared/heads", ["shared/api", "shared/store"]],
      ["shared/store", []],
    ]);
    assert.deepEqual(findCycles(cyclic), [
      ["shared/api", "shared/platform.ts", "shared/heads", "shared/api"],
    ]);
    const acyclic = new Map([
      ["shared/api", ["shared/platform.ts", "shared/store"]],
      ["shared/platform.ts", ["shared/heads", "shared/store"]],
      ["shared/heads", ["shared/store"]],
    ]);
    assert.deepEqual(findCycles(acyclic), []);
  });

  test("the picture check catches a missing node, a repeat and an arrow upward", () => {
    const md = [
      "## Map: folders and the direction of imports",
      "```",
      "   ▼  shared/:",
      "   api/  platform.ts   the app · the facade",
      "   heads/              heads",
      "   store/  heads/",
      "```",
    ].join("\n");
    const rows = mapRows(md);
    assert.deepEqual(rows, [
      ["shared/api", "shared/platform.ts"],
      ["shared/heads"],
      ["shared/store", "shared/heads"],
    ]);
    const graph = new Map([
      ["shared/api", new Set(["shared/platform.ts"])],
      ["shared/store", new Set(["shared/api"])],
      ["shared/errors.ts", new Set<string>()],
    ]);
    assert.deepEqual(mapMismatches(rows, graph), [
      "shared/heads stands in two rows",
      "shared/errors.ts is not in the picture",
      "shared/heads is in the picture but not in shared/",
      "shared/api → shared/platform.ts does not point down the picture",
      "shared/store → shared/api does not point down the picture",
    ]);
  });

  test("the folder graph and the rules catch synthetic wrong edges", () => {
    const edges: ImportEdge[] = [
      { from: "shared/embed/batch.ts", to: "shared/jobs/job.ts", relative: true },
      { from: "shared/jobs/runner.ts", to: "shared/embed/run.ts", relative: true },
      { from: "shared/heads/x.ts", to: "functions/cli/main.ts", relative: true },
      { from: "infra/stack.ts", to: "functions/api/handler.ts", relative: true },
      { from: "shared/learn/mlp.ts", to: "shared/heads/version.ts", relative: true },
      { from: "shared/learn/task.ts", to: "zod", relative: false },
      { from: "shared/onnx/fuse.ts", to: "shared/learn/estimator.ts", relative: true },
      { from: "shared/platform.ts", to: "shared/aws/s3-store.ts", relative: true },
      { from: "shared/bootstrap.ts", to: "shared/aws/s3-store.ts", relative: true },
      { from: "shared/doctor/heads.ts", to: "shared/learn/logreg.ts", relative: true },
      { from: "shared/doctor/heads.ts", to: "shared/learn/registry.ts", relative: true },
    ];
    assert.deepEqual(findCycles(sharedFolderGraph(edges)), [["shared/embed", "shared/jobs", "shared/embed"]]);
    assert.deepEqual(
      wrongArrows(edges).map((w) => w.split(" (")[0]),
      [
        "shared/heads/x.ts → functions/cli/main.ts",
        "infra/stack.ts → functions/api/handler.ts",
        "shared/learn/mlp.ts → shared/heads/version.ts",
        "shared/learn/task.ts → zod",
        "shared/onnx/fuse.ts → shared/learn/estimator.ts",
        "shared/platform.ts → shared/aws/s3-store.ts",
        "shared/doctor/heads.ts → shared/learn/logreg.ts",
      ],
    );
    assert.deepEqual(
      homelessPackageImports([
        { from: "shared/heads/train.ts", to: "@aws-sdk/client-lambda", relative: false },
        { from: "shared/aws/s3-store.ts", to: "@aws-sdk/client-s3", relative: false },
        { from: "functions/api/x.ts", to: "onnxruntime-node", relative: false },
        { from: "scripts/bench.ts", to: "onnxruntime-node", relative: false },
      ]),
      [
        "shared/heads/train.ts → @aws-sdk/client-lambda (only shared/aws/)",
        "functions/api/x.ts → onnxruntime-node (only shared/onnx/)",
      ],
    );
  });
});
