/**
 * GET /v1/models and GET /v1/models/{id}: the models the provider offers, in OpenAI's shape, from the
 * same cached list the chat routes resolve models against (model pickers such as Open WebUI call this
 * first). Each carries `context_length`, the window the context budget is capped by.
 */
import { Hono } from "hono";
import * as z from "zod/mini";
import { ApiError } from "../../core/chat/errors";
import { contextLengthOf } from "../../core/chat/models";
import type { ModelInfo } from "../../core/provider/types";
import type { ChatAppContext, ChatEnv } from "../context";
import { describeRoute, errorResponses, jsonResponse, modelSchema, PROVIDER_ERRORS } from "../openapi";

const modelListSchema = z.object({ object: z.literal("list"), data: z.array(modelSchema) });

/** One model in OpenAI's `model` object shape, plus its context window. */
export function openaiModel(info: ModelInfo) {
  return {
    id: info.id,
    object: "model" as const,
    created: typeof info.created === "number" ? info.created : 0,
    owned_by: info.owned_by ?? "moonshot",
    context_length: contextLengthOf(info),
  };
}

export function modelsRoutes(ctx: ChatAppContext): Hono<ChatEnv> {
  const routes = new Hono<ChatEnv>();

  routes.get(
    "/v1/models",
    describeRoute({
      summary: "The models the provider offers (OpenAI shape, with context_length)",
      tags: ["openai"],
      responses: {
        200: jsonResponse("The model list", modelListSchema),
        ...errorResponses(...PROVIDER_ERRORS),
      },
    }),
    async (c) => {
      const models = await ctx.models.models();
      const data = [...models.values()].sort((a, b) => a.id.localeCompare(b.id)).map(openaiModel);
      return c.json({ object: "list", data });
    },
  );

  routes.get(
    "/v1/models/:id{.+}",
    describeRoute({
      summary: "One model",
      tags: ["openai"],
      parameters: [{ name: "id", in: "path", required: true, schema: { type: "string", minLength: 1 } }],
      responses: {
        200: jsonResponse("The model", modelSchema),
        ...errorResponses(400, 404, ...PROVIDER_ERRORS),
      },
    }),
    async (c) => {
      const id = c.req.param("id");
      const info = (await ctx.models.models()).get(id);
      if (!info) {
        throw new ApiError(
          404,
          "not_found_error",
          `The model "${id}" does not exist; GET /v1/models lists the models offered.`,
          { param: "model", code: "model_not_found" },
        );
      }
      return c.json(openaiModel(info));
    },
  );

  return routes;
}
