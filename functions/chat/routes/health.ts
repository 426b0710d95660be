/** GET /health: liveness of the API itself (no provider or database call, so it is cheap and safe to poll). */
import { Hono } from "hono";
import type { ChatAppContext, ChatEnv } from "../context";

export function healthRoutes(ctx: ChatAppContext): Hono<ChatEnv> {
  const routes = new Hono<ChatEnv>();
  routes.get("/health", (c) =>
    c.json({
      status: "ok",
      service: "kimi-doc-pipeline chat API",
      defaultModel: ctx.deps.defaultModel,
      time: new Date().toISOString(),
    }),
  );
  return routes;
}
