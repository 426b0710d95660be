/**
 * `kdp keys create|ls|revoke`: scoped API keys, through the API's admin routes (POST/GET/DELETE /keys),
 * so they work the same against `npm start` and a deployed stack, with the stack's API token.
 */
import { type ApiClient, CliError } from "./api";
import { formatTime, table } from "./format";

type Out = NodeJS.WritableStream;

interface KeyInfo {
  id: string;
  name: string;
  prefix: string;
  createdAt: string;
  expiresAt?: string;
  revokedAt?: string;
}

export async function keys(
  api: ApiClient,
  sub: string | undefined,
  args: string[],
  opts: { prefix?: string; name?: string; expiresInDays?: number; json?: boolean },
  out: Out = process.stdout,
): Promise<number> {
  switch (sub) {
    case "create": {
      if (!opts.prefix) throw new CliError('kdp keys create needs --prefix, e.g. --prefix "team-a/"', 2);
      const created = await api.json<KeyInfo & { key: string }>("POST", "/keys", {
        prefix: opts.prefix,
        ...(opts.name ? { name: opts.name } : {}),
        ...(opts.expiresInDays ? { expiresInDays: opts.expiresInDays } : {}),
      });
      if (opts.json) {
        // The last line is the machine-readable answer; the key appears nowhere else.
        out.write(
          `${JSON.stringify({ id: created.id, key: created.key, prefix: created.prefix, name: created.name })}\n`,
        );
        return 0;
      }
      out.write(
        `created key ${created.id} for prefix "${created.prefix}"${created.name ? ` (${created.name})` : ""}` +
          `${created.expiresAt ? `, expires ${formatTime(created.expiresAt)}` : ""}\n` +
          "the key is shown only now; store it safely:\n\n" +
          `${created.key}\n`,
      );
      return 0;
    }
    case "ls":
    case "list": {
      const { items } = await api.json<{ items: KeyInfo[] }>("GET", "/keys");
      if (opts.json) {
        out.write(`${JSON.stringify(items, null, 2)}\n`);
        return 0;
      }
      if (items.length === 0) {
        out.write('no API keys yet — create one with `kdp keys create --prefix "team-a/"`\n');
        return 0;
      }
      const now = Date.now();
      const state = (k: KeyInfo) =>
        k.revokedAt
          ? `revoked ${formatTime(k.revokedAt)}`
          : k.expiresAt && Date.parse(k.expiresAt) <= now
            ? `expired ${formatTime(k.expiresAt)}`
            : "active";
      const rows = [["ID", "PREFIX", "CREATED", "STATE", "NAME"]];
      for (const k of items) rows.push([k.id, k.prefix, formatTime(k.createdAt), state(k), k.name || "-"]);
      out.write(`${table(rows)}\n`);
      return 0;
    }
    case "revoke": {
      const [id] = args;
      if (!id) throw new CliError("kdp keys revoke needs a key id (see `kdp keys ls`)", 2);
      const res = await api.json<{ id: string; revokedAt: string }>(
        "DELETE",
        `/keys/${encodeURIComponent(id)}`,
        undefined,
        {
          notFound: `no API key with id ${id} (see \`kdp keys ls\`)`,
        },
      );
      out.write(`revoked key ${res.id} (${formatTime(res.revokedAt)})\n`);
      return 0;
    }
    default:
      throw new CliError("kdp keys needs create, ls or revoke — run `kdp --help`", 2);
  }
}
