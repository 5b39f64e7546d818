#!/usr/bin/env node
// The CLI runs from TypeScript sources through tsx, so a clean clone needs no build step.
import { register } from "tsx/esm/api";

register();
await import("../functions/cli/main.ts");
