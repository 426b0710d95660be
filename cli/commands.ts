/** `kdp ls`, `kdp show`, `kdp rm`, `kdp ask`, `kdp search`, `kdp queue`. Each returns the process exit code. */
import { type ApiClient, type ApiDocument, type ChatAnswer, CliError, readSse } from "./api";
import { formatBytes, formatTime, formatUsd, table } from "./format";

type Out = NodeJS.WritableStream;

const STATUSES = ["processing", "ready", "failed", "deleted"];

export async function ls(
  api: ApiClient,
  opts: { prefix?: string; status?: string; limit?: number; json?: boolean },
  out: Out = process.stdout,
): Promise<number> {
  if (opts.status && !STATUSES.includes(opts.status))
    throw new CliError(`--status must be one of ${STATUSES.join(", ")}`, 2);
  const docs = await api.listDocuments({ prefix: opts.prefix, status: opts.status, max: opts.limit });
  if (opts.json) {
    out.write(`${JSON.stringify(docs, null, 2)}\n`);
    return 0;
  }
  if (docs.length === 0) {
    const filters = [opts.prefix && `prefix "${opts.prefix}"`, opts.status && `status ${opts.status}`].filter(
      Boolean,
    );
    out.write(
      `no documents${filters.length ? ` with ${filters.join(" and ")}` : " yet — add one with `kdp put <file>`"}\n`,
    );
    return 0;
  }
  const rows = [["STATUS", "SIZE", "UPDATED", "ID", "KEY"]];
  for (const d of docs) {
    const key = d.status === "failed" && d.error ? `${d.key}  (${d.error.message})` : d.key;
    rows.push([d.status, formatBytes(d.size), formatTime(d.updatedAt), d.documentId, key]);
  }
  out.write(`${table(rows)}\n`);
  const counts = new Map<string, number>();
  for (const d of docs) counts.set(d.status, (counts.get(d.status) ?? 0) + 1);
  const summary = [...counts].map(([s, n]) => `${n} ${s}`).join(", ");
  out.write(`\n${docs.length} document(s): ${summary}\n`);
  return 0;
}

export async function show(
  api: ApiClient,
  id: string | undefined,
  opts: { json?: boolean },
  out: Out = process.stdout,
) {
  if (!id) throw new CliError("kdp show needs a document id (see `kdp ls`)", 2);
  const d = await api.getDocument(id);
  if (opts.json) {
    out.write(`${JSON.stringify(d, null, 2)}\n`);
    return 0;
  }
  out.write(`${describeDocument(d)}\n`);
  return 0;
}

export function describeDocument(d: ApiDocument): string {
  const rows: [string, string][] = [
    ["id", d.documentId],
    ["key", `s3://${d.bucket}/${d.key}`],
    ["status", d.status],
  ];
  if (d.error) rows.push(["reason", `${d.error.message} [${d.error.code}]`]);
  rows.push(["size", `${formatBytes(d.size)}${d.contentType ? `, ${d.contentType}` : ""}`]);
  if (d.chunkCount !== undefined)
    rows.push([
      "text",
      `${formatBytes(d.textBytes)} in ${d.chunkCount} chunk(s), ~${d.tokenEstimate ?? "?"} tokens`,
    ]);
  if (d.remoteFile?.id)
    rows.push(["remote file", `${d.remoteFile.id} (uploaded ${formatTime(d.remoteFile.createdAt)})`]);
  else if (d.remoteFile?.releasedAt)
    rows.push(["remote file", `released ${formatTime(d.remoteFile.releasedAt)}`]);
  rows.push(["created", formatTime(d.createdAt)], ["updated", formatTime(d.updatedAt)]);
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join("\n");
}

export async function rm(api: ApiClient, ids: string[], out: Out = process.stdout): Promise<number> {
  if (ids.length === 0) throw new CliError("kdp rm needs at least one document id (see `kdp ls`)", 2);
  let failures = 0;
  for (const id of ids) {
    try {
      const res = await api.json<{ key: string }>(
        "DELETE",
        `/documents/${encodeURIComponent(id)}`,
        undefined,
        {
          notFound: `no document with id ${id} (see \`kdp ls\` for ids)`,
        },
      );
      out.write(`deleted    ${res.key} (id=${id}); its text and remote file are removed shortly\n`);
    } catch (err) {
      if (!(err instanceof CliError) || ids.length === 1) throw err;
      failures++;
      out.write(`error      ${id}: ${err.message}\n`);
    }
  }
  return failures ? 1 : 0;
}

export interface AskOptions {
  question: string;
  prefix?: string;
  documentIds?: string[];
  model?: string;
  maxTokens?: number;
  /** Most tokens of document text to send (the deployment's default when absent). */
  maxContextTokens?: number;
  /** Print the whole JSON answer instead of streaming text. */
  json?: boolean;
  /** Also stream a thinking model's reasoning (to stderr). */
  reasoning?: boolean;
}

export async function ask(
  api: ApiClient,
  opts: AskOptions,
  out: Out = process.stdout,
  err: Out = process.stderr,
) {
  if (!opts.question.trim())
    throw new CliError('kdp ask needs a question, e.g. kdp ask "What is this about?"', 2);
  const body = {
    question: opts.question,
    ...(opts.documentIds?.length ? { documentIds: opts.documentIds } : {}),
    ...(opts.prefix ? { prefix: opts.prefix } : {}),
    ...(opts.model ? { model: opts.model } : {}),
    ...(opts.maxTokens ? { maxTokens: opts.maxTokens } : {}),
    ...(opts.maxContextTokens ? { maxContextTokens: opts.maxContextTokens } : {}),
    stream: !opts.json,
  };
  const notFound = "one of the documents given with --doc does not exist (see `kdp ls` for ids)";
  if (opts.json) {
    const answer = await api.json<ChatAnswer>("POST", "/chat", body, { notFound });
    out.write(`${JSON.stringify(answer, null, 2)}\n`);
    return 0;
  }
  const response = await api.request("POST", "/chat", body, { notFound });
  if (!response.body) throw new CliError("the API sent an empty answer");
  let final: ChatAnswer | undefined;
  let wroteText = false;
  for await (const frame of readSse(response.body)) {
    let data: Record<string, unknown>;
    try {
      data = JSON.parse(frame.data) as Record<string, unknown>;
    } catch {
      continue; // e.g. a `[DONE]` sentinel
    }
    const type = (data.type as string | undefined) ?? frame.event;
    if (type === "delta") {
      if (typeof data.content === "string") {
        out.write(data.content);
        wroteText = true;
      } else if (typeof data.reasoning === "string" && opts.reasoning) err.write(data.reasoning);
    } else if (type === "done") {
      final = data as unknown as ChatAnswer;
    } else if (type === "error") {
      if (wroteText) out.write("\n");
      const e = data.error as { message?: string; type?: string } | undefined;
      throw new CliError(
        `the answer was interrupted: ${e?.message ?? "provider error"}${e?.type ? ` [${e.type}]` : ""}`,
      );
    }
  }
  if (!final) throw new CliError("the answer stream ended early (no final event); try again");
  if (!wroteText && final.answer) out.write(final.answer);
  out.write("\n");
  out.write(`${formatSources(final)}\n`);
  return 0;
}

export function formatSources(answer: ChatAnswer): string {
  const lines: string[] = [];
  if (answer.sources?.length) {
    lines.push("", "Sources:");
    answer.sources.forEach((s, i) => {
      const chunks = s.chunks?.length
        ? `chunk${s.chunks.length > 1 ? "s" : ""} ${s.chunks.map((c) => c.index).join(", ")}`
        : "";
      lines.push(`  ${i + 1}. ${s.key}  (id=${s.documentId}${chunks ? `, ${chunks}` : ""})`);
    });
  } else lines.push("", "Sources: none (no ready documents in scope)");
  for (const s of answer.skipped ?? [])
    lines.push(`  skipped ${s.key}: ${s.status}${s.reason ? ` (${s.reason})` : ""}`);
  const u = answer.usage;
  if (u?.totalTokens) {
    const cached = u.cachedTokens ? ` (${u.cachedTokens} cached)` : "";
    const cost =
      typeof u.costUsd === "number" ? formatUsd(u.costUsd) : `cost unknown (no price for ${answer.model})`;
    lines.push(
      `\n${answer.model}, ${u.promptTokens ?? "?"} prompt${cached} + ${u.completionTokens ?? "?"} completion tokens, ${cost}`,
    );
  }
  return lines.join("\n");
}

interface QueueView {
  stats: Record<string, number>;
  deadLetters: {
    messageId: string;
    receiveCount: number;
    deadLetteredAt: string;
    lastError?: string;
    objects: { event: string; bucket: string; key: string }[];
  }[];
}

/** `kdp queue [redrive|purge]`: the local ingest queue and its dead-letter list (local stack only). */
export async function queue(
  api: ApiClient,
  action: string | undefined,
  out: Out = process.stdout,
): Promise<number> {
  if (!api.target.local)
    throw new CliError("kdp queue inspects the local stack only (a deployed stack's DLQ is an SQS queue)", 2);
  if (action === "redrive") {
    const r = await api.json<{ redriven: number }>("POST", "/_local/queue/redrive");
    out.write(`moved ${r.redriven} message(s) from the dead-letter list back to the queue\n`);
    return 0;
  }
  if (action === "purge") {
    const r = await api.json<{ purged: number }>("DELETE", "/_local/queue/dead-letters");
    out.write(`dropped ${r.purged} dead letter(s)\n`);
    return 0;
  }
  if (action !== undefined) throw new CliError(`unknown queue action "${action}" (use redrive or purge)`, 2);
  const view = await api.json<QueueView>("GET", "/_local/queue");
  const s = view.stats;
  out.write(
    `queue: ${s.waiting} waiting, ${s.inFlight} in flight, ${s.deadLetters} dead-lettered ` +
      `(${s.sent} sent, ${s.deleted} processed, ${s.failedReceives} failed attempts)\n`,
  );
  for (const d of view.deadLetters) {
    const what = d.objects.map((o) => `${o.event} s3://${o.bucket}/${o.key}`).join(", ") || d.messageId;
    out.write(`  dead: ${what} after ${d.receiveCount} attempts: ${d.lastError ?? "?"}\n`);
  }
  if (view.deadLetters.length) out.write("`kdp queue redrive` retries them.\n");
  return 0;
}

export interface SearchOptions {
  query: string;
  prefix?: string;
  documentIds?: string[];
  limit?: number;
  json?: boolean;
}

interface SearchResponse {
  results: { documentId: string; key: string; chunkIndex: number; score: number; text: string }[];
}

/** `kdp search "<query>"`: the best chunks, best first, each with where it comes from and a snippet. */
export async function search(api: ApiClient, opts: SearchOptions, out: Out = process.stdout) {
  if (!opts.query.trim())
    throw new CliError('kdp search needs words to look for, e.g. kdp search "refund policy"', 2);
  const body = {
    query: opts.query,
    ...(opts.documentIds?.length ? { documentIds: opts.documentIds } : {}),
    ...(opts.prefix ? { prefix: opts.prefix } : {}),
    ...(opts.limit ? { limit: opts.limit } : {}),
  };
  const res = await api.json<SearchResponse>("POST", "/search", body, {
    notFound: "one of the documents given with --doc does not exist, or no key starts with --prefix",
  });
  if (opts.json) {
    out.write(`${JSON.stringify(res, null, 2)}\n`);
    return 0;
  }
  if (res.results.length === 0) {
    out.write(
      "No matching text (stop words alone match nothing; new documents are searchable within seconds).\n",
    );
    return 0;
  }
  for (const [i, r] of res.results.entries()) {
    const snippet = r.text.replace(/\s+/g, " ").trim().slice(0, 200);
    out.write(
      `${i + 1}. ${r.key}  chunk ${r.chunkIndex}  score ${r.score.toFixed(2)}  id=${r.documentId}\n   ${snippet}${r.text.length > 200 ? "…" : ""}\n`,
    );
  }
  return 0;
}
