/**
 * onnxruntime as a numeric engine for training heads: the heavy matrix products of a fit run in
 * its multi-threaded SIMD kernels (MLAS) instead of JavaScript loops. Graphs are built with our
 * ONNX writer; a session per distinct graph is created once per process and the promise cached.
 */
import type { InferenceSession, Tensor } from "onnxruntime-node";
import { HeadstartError } from "../errors.ts";

export type { InferenceSession, Tensor } from "onnxruntime-node";

import { encodeModel, type GraphBuilder } from "./writer.ts";

type Ort = typeof import("onnxruntime-node");

/**
 * onnxruntime is loaded with the first graph, not with the heads: serving a linear head is plain
 * TypeScript, and its cold start should not wait for a 44 MB native library. Every tensor is
 * made after a `graphSession` was awaited, so `tensor()` can stay synchronous.
 */
let ort: Ort | undefined;
let ortLoading: Promise<Ort> | undefined;

async function loadOrt(): Promise<Ort> {
  ortLoading ??= import("onnxruntime-node").then((m) => {
    ort = m;
    return m;
  });
  return ortLoading;
}

const sessions = new Map<string, Promise<InferenceSession>>();
const MAX_SESSIONS = 32;

/**
 * The session for the graph `build()` produces, cached under `key` (which must identify the graph:
 * include every shape or constant baked into it).
 */
export function graphSession(key: string, build: () => GraphBuilder): Promise<InferenceSession> {
  let s = sessions.get(key);
  if (!s) {
    s = loadOrt().then((o) =>
      o.InferenceSession.create(encodeModel(build()), {
        executionProviders: ["cpu"],
        graphOptimizationLevel: "all",
        executionMode: "sequential",
        interOpNumThreads: 1,
      }),
    );
    s.catch(() => sessions.delete(key));
    if (sessions.size >= MAX_SESSIONS) sessions.delete(sessions.keys().next().value!);
    sessions.set(key, s);
  }
  return s;
}

/** A tensor for a graph's feeds; only after a `graphSession` has been awaited. */
export function tensor(
  ...args:
    | ["float32", Float32Array, readonly number[]]
    | ["float64", Float64Array, readonly number[]]
    | ["int64", BigInt64Array, readonly number[]]
): Tensor {
  if (!ort)
    throw new HeadstartError("internal", "onnxruntime is not loaded: await graphSession() before tensor()");
  const [type, data, dims] = args;
  return new ort.Tensor(type, data as Float32Array, dims);
}

export function f32(data: Float32Array, dims: readonly number[]): Tensor {
  return tensor("float32", data, dims);
}

/** Runs `session` and returns its outputs as float32 arrays by name. */
export async function runGraph(
  session: InferenceSession,
  feeds: Record<string, Tensor>,
): Promise<Record<string, Float32Array>> {
  const out = await session.run(feeds);
  const result: Record<string, Float32Array> = {};
  for (const [name, t] of Object.entries(out)) result[name] = t.data as Float32Array;
  return result;
}
