/**
 * Build of the web console: static assets served by the chat API at `/` (functions/chat/routes/console.ts).
 * `base: "./"` keeps every URL relative, so the same build works at `/` (local mode) and under an
 * API Gateway stage path (`/prod/`). Nothing is inlined (no data: URLs, no inline scripts) so the
 * server's Content-Security-Policy can stay `'self'`-only.
 */
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

const root = fileURLToPath(new URL(".", import.meta.url));

export default defineConfig({
  root,
  base: "./",
  publicDir: false,
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    assetsDir: "assets",
    assetsInlineLimit: 0,
    target: "es2022",
    sourcemap: false,
    reportCompressedSize: true,
  },
});
