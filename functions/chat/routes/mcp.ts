/**
 * `/mcp`: the Model Context Protocol endpoint (Streamable HTTP, stateless, JSON responses), behind the
 * same bearer check as every route. Agents list and call the tools of functions/chat/mcp/tools.ts.
 *
 * - `POST /mcp`: one JSON-RPC message (or batch) per request; the answer is `application/json`.
 * - `GET /mcp` (a server-to-client SSE stream) and `DELETE /mcp` (ending a session): 405, as the spec
 *   says for a server that offers neither; there are no sessions to end or streams to resume.
 *
 * The SDK is loaded on the first POST through `deps.loadMcpServer` (see functions/chat/mcp/server.ts);
 * the tools module is imported then too, so a cold start that serves no MCP request builds none of
 * their schemas.
 */
import { Hono } from "hono";
import * as z from "zod/mini";
import { ApiError } from "../../core/chat/errors";
import type { ChatAppContext, ChatEnv } from "../context";
import { callOptions } from "../http";
import type { McpEndpoint } from "../mcp/server";
import type { McpToolContext } from "../mcp/tools";
import { describeRoute, errorResponses, jsonResponse } from "../openapi";
import { readerFor, selectionFor } from "../scope";

/** A JSON-RPC error, as the MCP transport answers a request it refuses. */
const jsonRpcErrorSchema = z.looseObject({
  jsonrpc: z.literal("2.0"),
  error: z.looseObject({ code: z.number(), message: z.string() }),
  id: z.nullable(z.union([z.string(), z.number()])),
});
const rpcErrorResponse = (description: string) => jsonResponse(description, jsonRpcErrorSchema);

export const MCP_SERVER_INFO = {
  name: "kimi-doc-pipeline",
  title: "Kimi document pipeline",
  version: "0.1.0",
};

export const MCP_INSTRUCTIONS =
  "Documents stored in this kimi-doc-pipeline deployment (PDF, DOCX, text... as extracted text). " +
  "search_documents finds passages by keywords; get_document reads a document's text from a chunk on; " +
  "ask answers a question from the documents with the Kimi model and cites them (slower, costs tokens); " +
  "list_documents shows what is stored and each document's status. Narrow any of them with prefix (a key prefix) or documentIds.";

/** JSON-RPC-shaped error for requests the MCP transport never sees (405), as the SDK shapes its own. */
const jsonRpcError = (status: number, message: string, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify({ jsonrpc: "2.0", error: { code: -32000, message }, id: null }), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });

export function mcpRoutes(ctx: ChatAppContext): Hono<ChatEnv> {
  const routes = new Hono<ChatEnv>();

  routes.post(
    "/mcp",
    describeRoute({
      summary: "Model Context Protocol over Streamable HTTP (stateless, JSON responses)",
      description: "JSON-RPC 2.0 messages; send `Accept: application/json, text/event-stream`. See API.md.",
      tags: ["mcp"],
      requestBody: {
        required: true,
        content: { "application/json": { schema: { type: ["object", "array"] } } },
      },
      responses: {
        200: jsonResponse("The JSON-RPC response", z.looseObject({ jsonrpc: z.literal("2.0") })),
        202: { description: "Notifications only: accepted, no body" },
        400: rpcErrorResponse("Not a JSON-RPC message the server can take"),
        406: rpcErrorResponse("The Accept header lacks application/json or text/event-stream"),
        415: rpcErrorResponse("Not application/json"),
        ...errorResponses(403, 413, 503),
      },
    }),
    async (c) => {
      const load = ctx.deps.loadMcpServer;
      if (!load)
        throw new ApiError(
          503,
          "configuration_error",
          "The MCP endpoint is not configured on this deployment.",
        );
      const [{ handleMcpRequest }, tool] = await Promise.all([load(), import("../mcp/tools")]);
      const tools: McpToolContext = {
        // The documents this caller may see: where a tenant scope applies, as on every HTTP route.
        reader: readerFor(c, ctx),
        select: (asked) => selectionFor(c, ctx, asked),
        search: ctx.search,
        chat: ctx.service,
        provider: ctx.deps.provider,
        call: callOptions(c),
        log: ctx.log,
        metrics: ctx.metrics,
        prices: ctx.prices,
      };
      const endpoint: McpEndpoint = {
        serverInfo: MCP_SERVER_INFO,
        instructions: MCP_INSTRUCTIONS,
        tools: tool.toolDefinitions,
        callTool: (name, args, version) => tool.callTool(name, args, tools, version),
        resourceTemplates: () => [tool.DOCUMENT_RESOURCE_TEMPLATE],
        listResources: (cursor) => tool.listDocumentResources(tools, cursor),
        readResource: (uri) => tool.readDocumentResource(tools, uri),
        onTransportError: (error) => ctx.log.warn("mcp request refused", { message: error.message }),
      };
      return handleMcpRequest(c.req.raw, endpoint);
    },
  );

  routes.on(
    ["GET", "DELETE", "PUT", "PATCH"],
    "/mcp",
    describeRoute({
      summary: "Not offered: the server is stateless (POST only)",
      tags: ["mcp"],
      responses: { 405: rpcErrorResponse("Method not allowed (`Allow: POST`)"), ...errorResponses() },
    }),
    () =>
      jsonRpcError(
        405,
        "Method not allowed: this MCP server is stateless and answers POST only (no SSE stream to open, no session to end).",
        { Allow: "POST" },
      ),
  );

  return routes;
}
