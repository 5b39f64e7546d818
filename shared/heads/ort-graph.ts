/**
 * onnxruntime as a numeric engine for training heads: the heavy matrix products of a fit run in
 * its multi-threaded SIMD kernels (MLAS) instead of JavaScript loops. Graphs are built with our
 * ONNX writer; a session per distinct graph is created once per process and the promise cached.
 */
import { InferenceSession, Tensor } from "onnxruntime-node";
import { encodeModel, type GraphBuilder } from "../backbone/onnx-writer.ts";

const sessions = new Map<string, Promise<InferenceSession>>();
const MAX_SESSIONS = 32;

/**
 * The session for the graph `build()` produces, cached under `key` (which must identify the graph:
 * include every shape or constant baked into it).
 */
export function graphSession(key: string, build: () => GraphBuilder): Promise<InferenceSession> {
  let s = sessions.get(key);
  if (!s) {
    s = InferenceSession.create(encodeModel(build()), {
      executionProviders: ["cpu"],
      graphOptimizationLevel: "all",
      executionMode: "sequential",
      interOpNumThreads: 1,
    });
    s.catch(() => sessions.delete(key));
    if (sessions.size >= MAX_SESSIONS) sessions.delete(sessions.keys().next().value!);
    sessions.set(key, s);
  }
  return s;
}

export function f32(data: Float32Array, dims: readonly number[]): Tensor {
  return new Tensor("float32", data, dims);
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
