import { createChatApp } from "./functions/chat/app";
import { MoonshotClient } from "./functions/core/moonshot/client";
import { startEmulator } from "./local/emulator/server";
import { MemoryStore } from "./test/chat/support";

const emulator = await startEmulator({
  models: [
    { id: "kimi-k2.6", context_length: 262144 },
    { id: "moonshot-v1-8k", context_length: 8192 },
  ],
});
const store = new MemoryStore();
const filler = (t: string, n: number) => `${t} handbook paragraph with ordinary words.\n\n`.repeat(n);
store.add({ documentId: "port-1", key: "port/1.txt" }, filler("port", 400));
const app = createChatApp({
  store,
  moonshot: new MoonshotClient({
    baseURL: emulator.baseURL,
    apiKey: async () => "k",
    retry: { maxAttempts: 1 },
    onRequest: (e) => {
      if (e.error) console.log("req", e);
    },
  }),
  objects: { deleteObject: async () => {} },
  defaultModel: "kimi-k2.6",
  requireGatewayAuthorizer: false,
  logger: {
    info() {},
    warn(m, a) {
      console.log(m, a);
    },
    error(m, a) {
      console.log(m, JSON.stringify(a));
    },
  },
});
for (const stream of [false, true]) {
  const res = await app.request("/chat", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      question: "h*qb{($",
      prefix: "port/",
      maxContextTokens: 9999986,
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: "Where is the Nuremberg Chronicle kept?" },
        { role: "assistant", content: "In a vault." },
        { role: "user", content: "Which one?" },
      ],
      model: "moonshot-v1-8k",
      stream,
    }),
  });
  console.log(stream, res.status, (await res.text()).slice(0, 400));
}
await emulator.close();
