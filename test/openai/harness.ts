/**
 * The chat API served on 127.0.0.1 against the Moonshot emulator over HTTP, with a few documents in
 * memory: what the OpenAI-surface tests (client libraries, parameters, usage, cache) run against.
 * The provider client is the real one, wrapped only to record each chat request it sends.
 */
import { createChatApp } from "../../functions/chat/app";
import { bearerAuthenticator } from "../../functions/core/auth/token";
import { MoonshotClient } from "../../functions/core/moonshot/adapter";
import type { ChatRequest, ProviderApi } from "../../functions/core/provider/types";
import { type EmulatorOptions, type RunningEmulator, startEmulator } from "../../local/emulator/server";
import { MemoryStore, type ServedApp, serveApp, TOKEN } from "../chat/support";

export interface OpenAiHarness {
  url: string;
  /** url + "/v1": the baseURL OpenAI-compatible clients take. */
  baseURL: string;
  emulator: RunningEmulator;
  store: MemoryStore;
  /** Every chat request sent to the provider, newest last. */
  sent: ChatRequest[];
  close(): Promise<void>;
}

const filler = (topic: string, n: number, seed = 0) =>
  Array.from(
    { length: n },
    (_, i) =>
      `Section ${i + seed} of the ${topic} handbook describes ordinary procedures for ${topic} staff and visitors.\n\n`,
  ).join("");

/** Starts the emulator and the app; `createChatApp` options beyond the basics may be overridden. */
export async function startOpenAiHarness(
  opts: { emulator?: EmulatorOptions; app?: Partial<Parameters<typeof createChatApp>[0]> } = {},
): Promise<OpenAiHarness> {
  const emulator = await startEmulator({
    models: [
      { id: "kimi-k2.6", context_length: 262_144 },
      { id: "moonshot-v1-32k", context_length: 32_768 },
      { id: "moonshot-v1-8k", context_length: 8192 },
    ],
    ...opts.emulator,
  });
  const client = new MoonshotClient({
    baseURL: emulator.baseURL,
    apiKey: async () => "sk-local",
    retry: { maxAttempts: 1 },
  });
  const sent: ChatRequest[] = [];
  const moonshot: ProviderApi = Object.assign(Object.create(client) as ProviderApi, {
    chat(req: ChatRequest, o?: Parameters<ProviderApi["chat"]>[1]) {
      sent.push(req);
      return client.chat(req, o);
    },
    chatStream(req: ChatRequest, o?: Parameters<ProviderApi["chatStream"]>[1]) {
      sent.push(req);
      return client.chatStream(req, o);
    },
  });
  const store = new MemoryStore();
  store.add(
    { documentId: "zoo", key: "city/zoo.txt" },
    `${filler("zoo", 4)}The zoo's oldest tortoise, Methuselah, turned 152 years old in March.\n\n${filler("zoo", 4, 10)}`,
  );
  store.add(
    { documentId: "library", key: "city/library.txt" },
    `${filler("library", 4)}The library's rarest book is a 1493 Nuremberg Chronicle kept in vault seven.\n\n`,
  );
  const app = createChatApp({
    store,
    provider: moonshot,
    objects: { deleteObject: async () => {} },
    defaultModel: "kimi-k2.6",
    authenticate: bearerAuthenticator(async () => TOKEN),
    ...opts.app,
  });
  const served: ServedApp = await serveApp(app);
  return {
    url: served.url,
    baseURL: `${served.url}/v1`,
    emulator,
    store,
    sent,
    async close() {
      await served.close();
      await emulator.close();
    },
  };
}

export { filler, TOKEN };
