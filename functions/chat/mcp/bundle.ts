/**
 * Where the MCP server module lives in the chat function's deployment package: bundled on its own
 * (lib/chat-api.ts) into this file next to the handler's `index.mjs`, which imports it on the first
 * `POST /mcp` (functions/chat/handler.ts). Kept apart so the chat function's cold start never parses
 * the MCP SDK.
 */
export const MCP_SERVER_BUNDLE = "mcp-server.mjs";
