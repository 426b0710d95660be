/** GET /health: liveness of the API itself (no provider or database call, so it is cheap and safe to poll). */
import { Hono } from "hono";
import * as z from "zod/mini";
import type { ChatAppContext, ChatEnv } from "../context";
import { describeRoute, errorResponses, jsonResponse } from "../openapi";

const healthSchema = z.object({
  status: z.literal("ok"),
  service: z.string(),
  defaultModel: z.string(),
  time: z.string(),
});

export function healthRoutes(ctx: ChatAppContext): Hono<ChatEnv> {
  const routes = new Hono<ChatEnv>();
  routes.get(
    "/health",
    describeRoute({
      summary: "Liveness (no database or provider call)",
      tags: ["health"],
      responses: { 200: jsonResponse("The API is up", healthSchema), ...errorResponses() },
    }),
    (c) =>
      c.json({
        status: "ok",
        service: "kimi-doc-pipeline chat API",
        defaultModel: ctx.deps.defaultModel,
        time: new Date().toISOString(),
      }),
  );
  return routes;
}
