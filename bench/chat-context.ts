import { pathToFileURL } from "node:url";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { createChatApp } from "../functions/chat/app";
import { mapLimit } from "../functions/core/chat/selection";
import { DynamoDocumentStore } from "../functions/core/documents/dynamo-store";
import type { DocumentRecord } from "../functions/core/documents/model";
import { MoonshotClient } from "../functions/core/moonshot/adapter";
import type { ChatRequest, ProviderApi } from "../functions/core/provider/types";
import { ensureDocumentsTable, startLocalDynamo, startLocalDynamoProcess } from "../local/aws/dynamo";
import { prng } from "../local/emulator/prng";
import { startEmulator } from "../local/emulator/server";

export interface ChatContextBenchOptions {
  documents?: number;
  totalMB?: number;
  runs?: number;
  questions?: number;
  /** Unscoped questions asked at the default budget and again filling the window. @default 10 */
  costQuestions?: number;
  seed?: number;
  /**
   * Run dynalite inside this process (its CPU work then competes with the code under test on one
   * thread) instead of in a child process (like a real, remote DynamoDB). @default false
   */
  dynamoInProcess?: boolean;
}

export interface ChatContextBenchResult {
  dynamo: "child-process" | "in-process";
  documents: number;
  textBytes: number;
  chunks: number;
  seedMs: number;
  readMs: number;
  readRunsMs: number[];
  toUpstreamMs: number;
  toUpstreamRunsMs: number[];
  /** The median request's context summary (chunks and tokens sent) and service timings. */
  context: Record<string, number>;
  timings: Record<string, number>;
  ratio: number;
  ratioTarget: number;
  questions: number;
  contextLengthErrors: number;
  otherErrors: number;
  answeredWithFact: number;
  /**
   * Ranked answers (documents larger than the window): the provider's count of the prompt over the
   * document budget. Near 1 means the window is used; the local estimate alone leaves about 0.8.
   */
  rankedFill: number[];
  /** Of the ranked answers, those whose context was topped up after the provider's count. */
  toppedUp: number;
  questionMix: Record<string, number>;
  /**
   * What an unscoped first question costs (kimi-k2.6's published prices, the prefix cache emptied
   * before each): at the deployment's default context budget, and with the budget above the window
   * (how every answer was sent before the budget).
   */
  cost: Record<
    "atDefault" | "fillWindow",
    { promptTokens: number[]; costUsd: number[]; answeredWithFact: number }
  >;
  /**
   * Cached share of prompt tokens (the emulator's prefix cache) per question of a 10-question
   * conversation: over a scope that fits the default budget ("fits"), and over the whole corpus,
   * ranked per question ("ranked").
   */
  conversation: Record<"fits" | "ranked", { cachedShare: number[]; promptTokens: number[]; modes: string[] }>;
}

const SYLLABLES = [
  "ka",
  "lo",
  "mi",
  "ren",
  "tso",
  "vu",
  "ber",
  "dal",
  "ish",
  "nor",
  "pel",
  "qua",
  "sen",
  "tar",
  "ul",
  "wex",
];
const ATTRIBUTES = [
  "budget code",
  "launch harbour",
  "chief engineer",
  "vault number",
  "signal colour",
  "patron saint",
];

interface Fact {
  doc: number;
  entity: string;
  attribute: string;
  value: string;
}

/** Deterministic prose: a 3,000-word vocabulary in sentences and paragraphs, with planted facts. */
export function makeCorpus(docs: number, bytesPerDoc: number, rand: () => number) {
  const word = () => {
    let w = "";
    const n = 2 + Math.floor(rand() * 3);
    for (let i = 0; i < n; i++) w += SYLLABLES[Math.floor(rand() * SYLLABLES.length)];
    return w;
  };
  const vocabulary = Array.from({ length: 3000 }, word);
  const sentence = () => {
    const n = 8 + Math.floor(rand() * 14);
    const words = Array.from({ length: n }, () => vocabulary[Math.floor(rand() * vocabulary.length)]!);
    return `${words[0]![0]!.toUpperCase()}${words.join(" ").slice(1)}.`;
  };
  const facts: Fact[] = [];
  const texts: string[] = [];
  for (let d = 0; d < docs; d++) {
    const planted: string[] = [];
    for (let f = 0; f < 3; f++) {
      const fact: Fact = {
        doc: d,
        entity: `Project ${word()}-${d}-${f}`,
        attribute: ATTRIBUTES[Math.floor(rand() * ATTRIBUTES.length)]!,
        value: `${word()}-${Math.floor(rand() * 9000 + 1000)}`,
      };
      facts.push(fact);
      planted.push(`The ${fact.attribute} of ${fact.entity} is ${fact.value}.`);
    }
    const parts: string[] = [];
    let size = 0;
    let next = 0;
    const every = Math.floor(bytesPerDoc / 4);
    while (size < bytesPerDoc) {
      let p = "";
      const n = 3 + Math.floor(rand() * 6);
      for (let i = 0; i < n; i++) p += `${sentence()} `;
      if (next < planted.length && size >= every * (next + 1) - every / 2) p += `${planted[next++]} `;
      p = `${p.trim()}\n\n`;
      parts.push(p);
      size += p.length;
    }
    while (next < planted.length) parts.push(`${planted[next++]}\n\n`);
    texts.push(parts.join(""));
  }
  return { texts, facts };
}

interface AnswerJson {
  answer: string;
  usage: { promptTokens: number; cachedTokens: number; costUsd: number | null };
  context: { mode: string };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};

export async function main(opts: ChatContextBenchOptions = {}): Promise<ChatContextBenchResult> {
  const docs = opts.documents ?? 200;
  const totalBytes = Math.round((opts.totalMB ?? 40) * 1024 * 1024);
  const runs = opts.runs ?? 3;
  const questionCount = opts.questions ?? 100;
  const rand = prng(opts.seed ?? 42);

  const dynamo = opts.dynamoInProcess ? await startLocalDynamo() : await startLocalDynamoProcess();
  const emulator = await startEmulator({
    models: [
      { id: "moonshot-v1-8k", context_length: 8192 },
      { id: "moonshot-v1-32k", context_length: 32768 },
      { id: "moonshot-v1-128k", context_length: 131072 },
      { id: "kimi-k2.6", context_length: 262144 },
    ],
  });
  const dynamoClient = new DynamoDBClient({
    endpoint: dynamo.endpoint,
    region: "us-east-1",
    credentials: { accessKeyId: "local", secretAccessKey: "local" },
  });
  try {
    const tableName = "bench-chat-documents";
    await ensureDocumentsTable(dynamoClient, tableName);
    const store = new DynamoDocumentStore({
      client: DynamoDBDocumentClient.from(dynamoClient, { marshallOptions: { removeUndefinedValues: true } }),
      tableName,
    });

    // ---- seed
    const { texts, facts } = makeCorpus(docs, Math.floor(totalBytes / docs), rand);
    const t0 = performance.now();
    const records: DocumentRecord[] = await mapLimit(texts, 8, (text, i) =>
      store.putDocumentText(
        {
          documentId: `bench-${String(i).padStart(4, "0")}`,
          key: `bench/doc-${String(i).padStart(4, "0")}.txt`,
        },
        text,
      ),
    );
    const seedMs = performance.now() - t0;
    const textBytes = records.reduce((n, r) => n + (r.textBytes ?? 0), 0);
    const chunks = records.reduce((n, r) => n + (r.chunkCount ?? 0), 0);

    // ---- the provider, with a hook on the upstream chat call
    const client = new MoonshotClient({
      baseURL: emulator.baseURL,
      apiKey: async () => "sk-bench",
      retry: { maxAttempts: 1 },
    });
    let upstreamAt = 0;
    let lastTimings: Record<string, number> = {};
    const moonshot: ProviderApi = Object.assign(Object.create(client) as ProviderApi, {
      chat(req: ChatRequest, o?: Parameters<ProviderApi["chat"]>[1]) {
        upstreamAt = performance.now();
        return client.chat(req, o);
      },
    });
    const app = createChatApp({
      store,
      provider: moonshot,
      objects: { deleteObject: async () => {} },
      defaultModel: "kimi-k2.6",
      requireGatewayAuthorizer: false,
      logger: {
        info(message, ...extra) {
          const t = extra[0]?.timings as Record<string, number> | undefined;
          if (message === "chat prepared" && t) lastTimings = t;
        },
        warn() {},
        error() {},
      },
    });
    const ask = (body: Record<string, unknown>) =>
      app.request("/chat", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });

    // ---- read-only baseline vs request-to-upstream, alternating so both see the same warm state
    const readRunsMs: number[] = [];
    const toUpstreamRunsMs: number[] = [];
    const contexts: Record<string, number>[] = [];
    const timings: Record<string, number>[] = [];
    // One warm-up of each (JIT, connection pool, model list cache).
    const warm = await ask({ question: "warm up", prefix: "bench/" });
    if (warm.status !== 200) throw new Error(`warm-up failed: ${warm.status} ${await warm.text()}`);
    for (let r = 0; r < runs; r++) {
      const a = performance.now();
      const listed: DocumentRecord[] = [];
      let cursor: string | undefined;
      do {
        const page = await store.list({ prefix: "bench/", limit: 1000, cursor });
        listed.push(...page.items);
        cursor = page.cursor;
      } while (cursor);
      const read = await mapLimit(listed, 16, (rec) => store.getChunks(rec));
      readRunsMs.push(performance.now() - a);
      if (read.reduce((n, c) => n + c.length, 0) !== chunks) throw new Error("baseline read lost chunks");

      const fact = facts[Math.floor(rand() * facts.length)]!;
      const b = performance.now();
      upstreamAt = 0;
      const res = await ask({
        question: `What is the ${fact.attribute} of ${fact.entity}?`,
        prefix: "bench/",
      });
      const body = (await res.json()) as { context?: Record<string, number | string>; error?: unknown };
      if (res.status !== 200 || upstreamAt === 0)
        throw new Error(`request failed: ${res.status} ${JSON.stringify(body)}`);
      toUpstreamRunsMs.push(upstreamAt - b);
      contexts.push(
        Object.fromEntries(
          Object.entries(body.context ?? {}).filter(([, v]) => typeof v === "number"),
        ) as Record<string, number>,
      );
      timings.push(Object.fromEntries(Object.entries(lastTimings).map(([k, v]) => [k, Math.round(v)])));
    }

    // ---- 100 generated questions over varied scopes and models
    const mix: Record<string, number> = {};
    let contextLengthErrors = 0;
    let otherErrors = 0;
    let answeredWithFact = 0;
    const rankedFill: number[] = [];
    let toppedUp = 0;
    const models = ["moonshot-v1-8k", "moonshot-v1-32k", "moonshot-v1-128k", "kimi-k2.6"];
    for (let q = 0; q < questionCount; q++) {
      const fact = facts[Math.floor(rand() * facts.length)]!;
      const body: Record<string, unknown> = { question: `What is the ${fact.attribute} of ${fact.entity}?` };
      let kind: string;
      if (q % 10 === 0) {
        kind = "prefix-all-256k";
        body.prefix = "bench/";
      } else {
        const model = models[Math.floor(rand() * models.length)]!;
        const n = Math.min(docs, 1 + Math.floor(rand() * 20));
        const ids = new Set([`bench-${String(fact.doc).padStart(4, "0")}`]);
        while (ids.size < n) ids.add(`bench-${String(Math.floor(rand() * docs)).padStart(4, "0")}`);
        body.documentIds = [...ids];
        body.model = model;
        if (rand() < 0.5) body.maxTokens = 64 + Math.floor(rand() * 2000);
        kind = `ids-${model}`;
      }
      mix[kind] = (mix[kind] ?? 0) + 1;
      const res = await ask(body);
      const json = (await res.json()) as {
        answer?: string;
        error?: { code?: string; message?: string };
        context?: { mode?: string; promptTokens?: number; budgetTokens?: number; toppedUp?: boolean };
      };
      if (res.status !== 200) {
        if (
          json.error?.code === "context_length" ||
          /token length|token limit|context/i.test(json.error?.message ?? "")
        ) {
          contextLengthErrors++;
        } else otherErrors++;
        continue;
      }
      if (json.answer?.includes(fact.value)) answeredWithFact++;
      const c = json.context;
      if (c?.mode === "ranked" && c.promptTokens && c.budgetTokens) {
        rankedFill.push(Math.round((c.promptTokens / c.budgetTokens) * 1000) / 1000);
        if (c.toppedUp) toppedUp++;
      }
    }

    // ---- what an answer costs: the default budget against filling the window, same questions
    const cost: ChatContextBenchResult["cost"] = {
      atDefault: { promptTokens: [], costUsd: [], answeredWithFact: 0 },
      fillWindow: { promptTokens: [], costUsd: [], answeredWithFact: 0 },
    };
    for (let q = 0; q < (opts.costQuestions ?? 10); q++) {
      const fact = facts[Math.floor(rand() * facts.length)]!;
      const question = `What is the ${fact.attribute} of ${fact.entity}?`;
      for (const [which, extra] of [
        ["atDefault", {}],
        ["fillWindow", { maxContextTokens: 10_000_000 }],
      ] as const) {
        // A cold prefix cache: the cost of a first question, not of a repeat.
        await emulator.reset();
        const res = await ask({ question, prefix: "bench/", ...extra });
        const json = (await res.json()) as AnswerJson;
        if (res.status !== 200)
          throw new Error(`cost question failed: ${res.status} ${JSON.stringify(json)}`);
        cost[which].promptTokens.push(json.usage.promptTokens);
        cost[which].costUsd.push(json.usage.costUsd ?? Number.NaN);
        if (json.answer.includes(fact.value)) cost[which].answeredWithFact++;
      }
    }

    // ---- a 10-question conversation: over 4 small documents that fit the budget, and ranked
    const small = makeCorpus(4, 12_000, rand);
    await mapLimit(small.texts, 4, (text, i) =>
      store.putDocumentText({ documentId: `conv-${i}`, key: `conv/doc-${i}.txt` }, text),
    );
    const converse = async (prefix: string, pool: Fact[]) => {
      const out = { cachedShare: [] as number[], promptTokens: [] as number[], modes: [] as string[] };
      const messages: { role: "user" | "assistant"; content: string }[] = [];
      for (let q = 0; q < 10; q++) {
        const fact = pool[q % pool.length]!;
        const question = `What is the ${fact.attribute} of ${fact.entity}?`;
        const res = await ask({ question, prefix, messages });
        const json = (await res.json()) as AnswerJson;
        if (res.status !== 200) throw new Error(`conversation failed: ${res.status} ${JSON.stringify(json)}`);
        out.cachedShare.push(Math.round((json.usage.cachedTokens / json.usage.promptTokens) * 1000) / 1000);
        out.promptTokens.push(json.usage.promptTokens);
        out.modes.push(json.context.mode);
        messages.push({ role: "user", content: question }, { role: "assistant", content: json.answer });
      }
      return out;
    };
    const conversation = {
      fits: await converse("conv/", small.facts),
      ranked: await converse("bench/", facts.slice(0, 10)),
    };

    const readMs = median(readRunsMs);
    const toUpstreamMs = median(toUpstreamRunsMs);
    const medianIndex = toUpstreamRunsMs.indexOf(toUpstreamMs);
    return {
      dynamo: opts.dynamoInProcess ? "in-process" : "child-process",
      documents: docs,
      textBytes,
      chunks,
      seedMs: Math.round(seedMs),
      readMs: Math.round(readMs),
      readRunsMs: readRunsMs.map(Math.round),
      toUpstreamMs: Math.round(toUpstreamMs),
      toUpstreamRunsMs: toUpstreamRunsMs.map(Math.round),
      context: contexts[medianIndex] ?? {},
      timings: timings[medianIndex] ?? {},
      ratio: Math.round((toUpstreamMs / readMs) * 100) / 100,
      ratioTarget: 1.5,
      questions: questionCount,
      contextLengthErrors,
      otherErrors,
      answeredWithFact,
      rankedFill,
      toppedUp,
      questionMix: mix,
      cost,
      conversation,
    };
  } finally {
    dynamoClient.destroy();
    await emulator.close();
    await dynamo.close();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const arg = (name: string) => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? Number(process.argv[i + 1]) : undefined;
  };
  main({
    documents: arg("docs"),
    totalMB: arg("mb"),
    runs: arg("runs"),
    questions: arg("questions"),
    costQuestions: arg("cost-questions"),
    dynamoInProcess: process.argv.includes("--dynamo-in-process"),
  })
    .then((r) => console.log(JSON.stringify(r, null, 2)))
    .catch((err) => {
      console.error(err);
      process.exitCode = 1;
    });
}
