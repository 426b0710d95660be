/**
 * Request paths are checked as the client sent them, before routing: URL parsing (WHATWG, which both
 * @hono/node-server and the Lambda adapter go through) silently resolves `a/../b` and `%2e%2e`, so a
 * route would otherwise answer a path the caller never asked for, and an encoded slash would smuggle a
 * separator into an id. Neither has a legitimate use in this API: both are refused with a 400.
 */
import type { Context } from "hono";

/** The path as received: the raw request line (node-server), the REST event's path (Lambda), else the URL's. */
export function rawRequestPath(c: Context): string {
  const env = c.env as { incoming?: { url?: unknown }; event?: { path?: unknown } } | undefined;
  const raw = env?.incoming?.url ?? env?.event?.path;
  if (typeof raw === "string") {
    const q = raw.indexOf("?");
    return q >= 0 ? raw.slice(0, q) : raw;
  }
  return new URL(c.req.url).pathname;
}

/** Why `path` is refused, or undefined when it is fine. */
export function pathProblem(path: string): string | undefined {
  if (/%2f|%5c|\\/i.test(path)) return "must not contain encoded slashes or backslashes";
  for (const segment of path.split("/")) {
    const s = segment.replace(/%2e/gi, ".");
    if (s === "." || s === "..") return 'must not contain "." or ".." segments';
  }
  return undefined;
}
