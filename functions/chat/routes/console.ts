/**
 * The web console's static assets (built by `vite build web` into web/dist), served by the chat API:
 * - GET /              index.html, `Cache-Control: no-cache` + ETag (revalidated on every load, so
 *                      a deploy is picked up at once)
 * - GET /assets/{file} content-hashed JS/CSS/SVG, `Cache-Control: public, max-age=31536000, immutable`
 * Both carry a strict Content-Security-Policy (scripts, styles and images from this origin only, no
 * inline code, no framing, Trusted Types enforced; `connect-src` allows this origin plus the S3
 * origin presigned uploads go to) and the usual hardening headers. Files are read once (at app
 * creation, i.e. the Lambda's cold start), kept in memory with gzip and brotli variants (the whole
 * console is a few tens of KB), and chosen by Accept-Encoding. Nothing is fetched from a CDN.
 *
 * These routes are PUBLIC (the page is the sign-in form; it holds no data): the app must register
 * them before its auth middleware, and API Gateway must serve `GET /` and `GET /assets/{proxy+}`
 * without the authorizer. Every API route the page calls stays authenticated.
 *
 * Where the files are: `dir` if given, else $CONSOLE_DIR, else `console/` next to the bundled
 * handler ($LAMBDA_TASK_ROOT/console, copied there at bundling), else web/dist in this repository.
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { dirname, extname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { brotliCompressSync, gzipSync, constants as zlib } from "node:zlib";
import type { Context } from "hono";
import { Hono } from "hono";
import type { ChatAppContext, ChatEnv } from "../context";
import { describeRoute } from "../openapi";
import { type UploadConfig, uploadConfigFromEnv, uploadOrigin } from "./uploads";

export interface ConsoleOptions {
  /** Directory holding the built console (index.html and assets/). */
  dir?: string;
  /** Upload config whose S3 origin goes into `connect-src` (default: from the environment). */
  uploads?: UploadConfig;
  /** More origins the page may connect to. */
  connectSrc?: string[];
}

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".webp": "image/webp",
  ".woff2": "font/woff2",
  ".json": "application/json",
  ".txt": "text/plain; charset=utf-8",
};
const COMPRESSIBLE = new Set([".html", ".js", ".mjs", ".css", ".svg", ".json", ".txt"]);

export const IMMUTABLE = "public, max-age=31536000, immutable";
export const REVALIDATE = "no-cache";

interface Asset {
  body: Buffer;
  gzip?: Buffer;
  br?: Buffer;
  type: string;
  etag: string;
}

interface Bundle {
  index: Asset;
  assets: Map<string, Asset>;
}

/** The directory candidates, in order (see the module comment). */
export function consoleDirCandidates(): string[] {
  const out: string[] = [];
  if (process.env.CONSOLE_DIR) out.push(process.env.CONSOLE_DIR);
  if (process.env.LAMBDA_TASK_ROOT) out.push(join(process.env.LAMBDA_TASK_ROOT, "console"));
  try {
    // In the repository (tsx, tests): functions/chat/routes -> web/dist. In a CommonJS bundle
    // import.meta.url is undefined and this throws; the task-root candidate covers that case.
    const here = dirname(fileURLToPath(import.meta.url));
    out.push(join(here, "console"), resolve(here, "../../../web/dist"));
  } catch {
    // not an ES module at run time
  }
  out.push(resolve(process.cwd(), "web/dist"));
  return [...new Set(out)];
}

function findDir(explicit?: string): string | undefined {
  if (explicit) return existsSync(join(explicit, "index.html")) ? explicit : undefined;
  return consoleDirCandidates().find((d) => existsSync(join(d, "index.html")));
}

function makeAsset(body: Buffer, ext: string): Asset {
  const asset: Asset = {
    body,
    type: TYPES[ext] ?? "application/octet-stream",
    etag: `"${createHash("sha256").update(body).digest("base64url").slice(0, 27)}"`,
  };
  if (COMPRESSIBLE.has(ext) && body.length > 512) {
    asset.gzip = gzipSync(body, { level: 9 });
    asset.br = brotliCompressSync(body, {
      // Quality 5: within ~7% of quality 11 on these files at 1% of the CPU time (cold starts matter).
      params: { [zlib.BROTLI_PARAM_QUALITY]: 5, [zlib.BROTLI_PARAM_SIZE_HINT]: body.length },
    });
  }
  return asset;
}

async function loadBundle(dir: string): Promise<Bundle> {
  const index = makeAsset(await readFile(join(dir, "index.html")), ".html");
  const assets = new Map<string, Asset>();
  const assetsDir = join(dir, "assets");
  if (existsSync(assetsDir)) {
    for (const entry of await readdir(assetsDir, { recursive: true, withFileTypes: true })) {
      if (!entry.isFile()) continue;
      const full = join(entry.parentPath, entry.name);
      const name = relative(assetsDir, full).split(sep).join("/");
      assets.set(name, makeAsset(await readFile(full), extname(name).toLowerCase()));
    }
  }
  return { index, assets };
}

/** The Content-Security-Policy for the console, allowing `connect-src` to the given extra origins. */
export function contentSecurityPolicy(connectOrigins: string[] = []): string {
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "font-src 'self'",
    `connect-src ${["'self'", ...new Set(connectOrigins)].join(" ")}`,
    "manifest-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
    "object-src 'none'",
    "require-trusted-types-for 'script'",
    "trusted-types 'none'",
  ].join("; ");
}

function securityHeaders(csp: string, https: boolean): Record<string, string> {
  return {
    "Content-Security-Policy": csp,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
    ...(https ? { "Strict-Transport-Security": "max-age=31536000; includeSubDomains" } : {}),
  };
}

/** Picks br, then gzip, then identity, by the request's Accept-Encoding (q=0 excludes). */
export function pickEncoding(acceptEncoding: string | undefined, asset: Asset): "br" | "gzip" | undefined {
  if (!acceptEncoding || !asset.gzip) return undefined;
  const accepted = new Map<string, number>();
  for (const part of acceptEncoding.toLowerCase().split(",")) {
    const [name, ...params] = part.trim().split(";");
    const q = params.map((p) => p.trim()).find((p) => p.startsWith("q="));
    accepted.set(name.trim(), q ? Number(q.slice(2)) : 1);
  }
  const ok = (name: string) => (accepted.get(name) ?? accepted.get("*") ?? 0) > 0;
  if (asset.br && ok("br")) return "br";
  if (ok("gzip")) return "gzip";
  return undefined;
}

function etagMatches(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  return header.split(",").some((t) => {
    const v = t.trim().replace(/^W\//, "");
    return v === etag || v === "*";
  });
}

function send(
  c: Context<ChatEnv>,
  asset: Asset,
  cacheControl: string,
  headers: Record<string, string>,
): Response {
  const encoding = pickEncoding(c.req.header("accept-encoding"), asset);
  const etag = encoding ? `${asset.etag.slice(0, -1)}-${encoding}"` : asset.etag;
  const common: Record<string, string> = {
    ...headers,
    "Cache-Control": cacheControl,
    ETag: etag,
    Vary: "Accept-Encoding",
  };
  if (etagMatches(c.req.header("if-none-match"), etag))
    return new Response(null, { status: 304, headers: common });
  const body = encoding === "br" ? asset.br! : encoding === "gzip" ? asset.gzip! : asset.body;
  return new Response(c.req.method === "HEAD" ? null : new Uint8Array(body), {
    status: 200,
    headers: {
      ...common,
      "Content-Type": asset.type,
      "Content-Length": String(body.length),
      ...(encoding ? { "Content-Encoding": encoding } : {}),
    },
  });
}

/** Mounts the console at GET / and GET /assets/*. Register before the auth middleware (public). */
export function consoleRoutes(ctx: ChatAppContext, options: ConsoleOptions = {}): Hono<ChatEnv> {
  const routes = new Hono<ChatEnv>();
  let bundle: Promise<Bundle | undefined> | undefined;
  let csp: Promise<string> | undefined;

  const getBundle = () => {
    bundle ??= (async () => {
      const dir = findDir(options.dir);
      if (!dir) return undefined;
      return loadBundle(dir);
    })().then(
      (found) => {
        if (!found) bundle = undefined; // not built yet: look again on the next request
        return found;
      },
      (err) => {
        bundle = undefined; // retry on the next request
        throw err;
      },
    );
    return bundle;
  };
  const getCsp = () => {
    csp ??= (async () => {
      const origins = [...(options.connectSrc ?? [])];
      const uploads = options.uploads ?? uploadConfigFromEnv();
      if (uploads) {
        try {
          origins.push(await uploadOrigin(uploads));
        } catch (err) {
          ctx.log.warn("console: no upload origin for connect-src", { message: (err as Error).message });
        }
      }
      return contentSecurityPolicy(origins);
    })();
    return csp;
  };

  // Load during the cold start rather than on the first page view (failures surface per request).
  getBundle().catch(() => undefined);
  getCsp().catch(() => undefined);

  const notBuilt = (c: Context<ChatEnv>) =>
    c.json(
      {
        error: {
          type: "configuration_error",
          message:
            "The web console is not built: run `npm run build:web` (vite build web), then restart. The API itself works without it.",
        },
      },
      503,
    );

  // The console is a page, not part of the API: left out of GET /openapi.json.
  routes.get("/", describeRoute({ hide: true }), async (c) => {
    // Behind an API Gateway stage (`/prod`), relative asset URLs need the trailing slash.
    const gatewayPath = (c.env?.event?.requestContext as { path?: string } | undefined)?.path;
    if (gatewayPath && !gatewayPath.endsWith("/")) return c.redirect(`${gatewayPath}/`, 301);
    const found = await getBundle();
    if (!found) return notBuilt(c);
    const https = new URL(c.req.url).protocol === "https:";
    return send(c, found.index, REVALIDATE, securityHeaders(await getCsp(), https));
  });

  routes.get("/assets/:path{.+}", describeRoute({ hide: true }), async (c) => {
    const found = await getBundle();
    if (!found) return notBuilt(c);
    const asset = found.assets.get(c.req.param("path"));
    if (!asset) {
      return c.json(
        {
          error: {
            type: "not_found_error",
            message: "No such console asset; reload the page to get the current version.",
          },
        },
        404,
        { "Cache-Control": "no-store" },
      );
    }
    const https = new URL(c.req.url).protocol === "https:";
    return send(c, asset, IMMUTABLE, securityHeaders(await getCsp(), https));
  });

  return routes;
}
