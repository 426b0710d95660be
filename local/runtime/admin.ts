/**
 * Local-only admin routes, served next to the chat API under `/_local/` with the same bearer token:
 *
 * - `GET /_local/queue`: queue counters and the dead-letter list (each with the S3 object it is about);
 * - `POST /_local/queue/redrive`: moves every dead letter back into the queue;
 * - `DELETE /_local/queue/dead-letters`: drops the dead-letter list.
 */
import { timingSafeEqual } from "node:crypto";
import type { S3EventRecord } from "aws-lambda";
import { Hono } from "hono";
import type { LocalQueue } from "./queue";
import { decodeS3EventKey } from "./s3-events";

export function createAdminApp(deps: { token: string; queue: LocalQueue; bucket: string }): Hono {
  const app = new Hono();
  const expected = Buffer.from(`Bearer ${deps.token}`);
  app.use("/_local/*", async (c, next) => {
    const given = Buffer.from(c.req.header("authorization") ?? "");
    if (given.length !== expected.length || !timingSafeEqual(given, expected))
      return c.json({ error: { type: "unauthorized", message: "missing or wrong bearer token" } }, 401);
    await next();
  });
  app.get("/_local/queue", (c) =>
    c.json({
      stats: deps.queue.stats(),
      deadLetters: deps.queue.deadLetters().map((d) => ({
        ...d,
        objects: objectsOf(d.body),
        sentAt: new Date(d.sentAt).toISOString(),
        deadLetteredAt: new Date(d.deadLetteredAt).toISOString(),
      })),
    }),
  );
  app.post("/_local/queue/redrive", (c) => c.json({ redriven: deps.queue.redrive() }));
  app.delete("/_local/queue/dead-letters", (c) => c.json({ purged: deps.queue.purgeDeadLetters() }));
  app.notFound((c) =>
    c.json({ error: { type: "not_found", message: `no local route ${c.req.method} ${c.req.path}` } }, 404),
  );
  return app;
}

function objectsOf(body: string): { event: string; bucket: string; key: string }[] {
  try {
    const records = (JSON.parse(body) as { Records?: S3EventRecord[] }).Records ?? [];
    return records.map((r) => ({
      event: r.eventName,
      bucket: r.s3.bucket.name,
      key: decodeS3EventKey(r.s3.object.key),
    }));
  } catch {
    return [];
  }
}
