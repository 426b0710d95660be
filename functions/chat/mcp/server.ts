/**
 * The MCP endpoint on the official TypeScript SDK: one stateless Streamable HTTP exchange per call.
 *
 * The only module of the chat function that imports the SDK, and it imports nothing of ours at run
 * time (types only): in AWS it is bundled on its own next to the chat bundle (lib/chat-api.ts) and
 * loaded on the first `POST /mcp`, so the chat function's cold start never parses the SDK; locally and
 * in tests it is imported from source. What the tools do comes in as an `McpEndpoint`.
 *
 * Stateless: every POST gets a fresh `Server` and a fresh `WebStandardStreamableHTTPServerTransport`
 * without session ids (the SDK's stateless mode), so any Lambda instance can answer any request and
 * API Gateway needs no affinity. Responses are plain JSON (`enableJsonResponse`), not an SSE stream:
 * the server never sends a request or notification of its own (no sampling, elicitation or progress),
 * so an SSE stream would only wrap one JSON message in framing and keep-alive timers.
 */
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js";
import {
  CallToolRequestSchema,
  ListResourcesRequestSchema,
  ListResourceTemplatesRequestSchema,
  ListToolsRequestSchema,
  McpError,
  ReadResourceRequestSchema,
} from "@modelcontextprotocol/sdk/types.js";
import type { jsonSchemaValidator } from "@modelcontextprotocol/sdk/validation/types.js";
import type { DocumentResource, ToolDefinition, ToolResult } from "./tools";

/** What the endpoint serves; built per request by functions/chat/routes/mcp.ts. */
export interface McpEndpoint {
  serverInfo: { name: string; title: string; version: string };
  /** Told to the client at initialisation: when to use which tool. */
  instructions: string;
  tools(): ToolDefinition[];
  callTool(name: string, args: unknown, protocolVersion: string | undefined): Promise<ToolResult>;
  resourceTemplates(): {
    uriTemplate: string;
    name: string;
    title: string;
    mimeType: string;
    description: string;
  }[];
  listResources(cursor: string | undefined): Promise<{ resources: DocumentResource[]; nextCursor?: string }>;
  readResource(uri: string): Promise<{ contents: { uri: string; mimeType: string; text: string }[] }>;
  /** Transport-level problems (malformed JSON-RPC...), which the SDK answers with a 4xx itself. */
  onTransportError?(error: Error): void;
}

/**
 * Elicitation is the only SDK feature that validates JSON Schema on the server, and this server never
 * elicits; this stands in for the default Ajv validator so no Ajv instance is built per request.
 */
const noElicitation: jsonSchemaValidator = {
  getValidator: () => () => ({ valid: false, data: undefined, errorMessage: "this server does not elicit" }),
};

/** Errors our endpoint throws to be answered as JSON-RPC errors (tools.ts McpProtocolError). */
function asMcpError(err: unknown): unknown {
  const code = (err as { mcpCode?: unknown })?.mcpCode;
  return typeof code === "number" ? new McpError(code, (err as Error).message) : err;
}

const rethrowAsMcp =
  <A extends unknown[], R>(fn: (...args: A) => Promise<R>) =>
  async (...args: A): Promise<R> => {
    try {
      return await fn(...args);
    } catch (err) {
      throw asMcpError(err);
    }
  };

/** Answers one HTTP request to the MCP endpoint (POST; the route answers other methods itself). */
export async function handleMcpRequest(request: Request, endpoint: McpEndpoint): Promise<Response> {
  const server = new Server(endpoint.serverInfo, {
    capabilities: { tools: { listChanged: false }, resources: { listChanged: false } },
    instructions: endpoint.instructions,
    jsonSchemaValidator: noElicitation,
  });
  server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: endpoint.tools() }));
  server.setRequestHandler(
    CallToolRequestSchema,
    rethrowAsMcp(async (req, extra) => {
      const version = extra.requestInfo?.headers["mcp-protocol-version"];
      return endpoint.callTool(
        req.params.name,
        req.params.arguments,
        typeof version === "string" ? version : undefined,
      );
    }),
  );
  server.setRequestHandler(ListResourceTemplatesRequestSchema, () => ({
    resourceTemplates: endpoint.resourceTemplates(),
  }));
  server.setRequestHandler(
    ListResourcesRequestSchema,
    rethrowAsMcp(async (req) => endpoint.listResources(req.params?.cursor)),
  );
  server.setRequestHandler(
    ReadResourceRequestSchema,
    rethrowAsMcp(async (req) => endpoint.readResource(req.params.uri)),
  );

  const transport = new WebStandardStreamableHTTPServerTransport({
    sessionIdGenerator: undefined,
    enableJsonResponse: true,
  });
  transport.onerror = (error) => endpoint.onTransportError?.(error);
  await server.connect(transport);
  try {
    // With JSON responses this resolves once every response of the request is ready.
    return await transport.handleRequest(request);
  } finally {
    await server.close();
  }
}
