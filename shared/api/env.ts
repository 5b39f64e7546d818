import type { Principal } from "../auth/api-keys.ts";

/**
 * What middleware hands the routes: `principal` is the caller the auth middleware admitted
 * (absent on public routes); `authRequired` says whether it had to show a key (false only for a
 * loopback server of a store without keys), so `GET /v1/me` can tell the console to skip sign-in.
 */
export type AppEnv = { Variables: { principal?: Principal; authRequired?: boolean } };
