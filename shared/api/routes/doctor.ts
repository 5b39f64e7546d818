/**
 * `POST /v1/doctor`: the store check of `headstart doctor`, for admins. Reports only unless the
 * body asks for `repair`; what repair touches is safe with writers running (docs/architecture.md).
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { DEFAULT_GRACE_MS } from "../../doctor/index.ts";
import { DoctorReport as DoctorReportDoc } from "../../doctor/report.ts";
import type { Platform } from "../../platform.ts";
import type { AppEnv } from "../env.ts";
import { errorResponses, jsonBody } from "../responses.ts";

const DoctorReport = DoctorReportDoc.describe(
  "Per check, what it looked at and the problems found (docs/formats.md#doctor-report)",
).openapi("DoctorReport");

const DoctorRequest = z
  .object({
    repair: z.boolean().optional().openapi({
      description: "Remove stray temporaries older than the grace period and leases on committed shards",
    }),
    graceSeconds: z
      .number()
      .int()
      .min(0)
      .max(7 * 24 * 3600)
      .optional()
      .openapi({
        description: `Temporaries younger than this are left alone (default ${DEFAULT_GRACE_MS / 1000})`,
      }),
  })
  .strict()
  .openapi("DoctorRequest");

const doctor = createRoute({
  method: "post",
  path: "/",
  operationId: "runDoctor",
  tags: ["system"],
  summary: "Verify the store (and repair what is safe); admins only",
  request: {
    body: { content: { "application/json": { schema: DoctorRequest } }, required: false },
  },
  responses: {
    200: jsonBody(DoctorReport, "The report; `ok` is false while problems remain"),
    ...errorResponses({ 400: true }),
  },
});

export function doctorRoutes(platform: Platform) {
  const app = new OpenAPIHono<AppEnv>();
  app.openapi(doctor, async (c) => {
    const body = c.req.header("content-type") ? c.req.valid("json") : {};
    const report = await platform.doctor({
      repair: body.repair ?? false,
      graceMs: body.graceSeconds === undefined ? undefined : body.graceSeconds * 1000,
    });
    return c.json(report, 200);
  });
  return app;
}
