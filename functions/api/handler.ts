import { handle } from "hono/aws-lambda";
import { createApp } from "../../shared/api/app.ts";
import { bootstrap } from "../../shared/bootstrap.ts";

const { platform, log } = bootstrap("headstart-api");

export const app = createApp(platform, log);
export const handler = handle(app);
