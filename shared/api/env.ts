export type AppEnv = { Variables: Record<string, never> };
