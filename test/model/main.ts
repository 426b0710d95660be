/**
 * The model-based run on its own, in its own process (`npm run soak` spawns it first, so the soak's
 * process-wide settings stay untouched): `tsx test/model/main.ts [runs] [seconds] [seed]`. Prints
 * progress, then one JSON line `RESULT {...}`; exit code 1 when an invariant broke.
 */
import { runStoreModel } from "./store-model";

const [runs = "100", seconds = "240", seed] = process.argv.slice(2);
try {
  const report = await runStoreModel({
    runs: Number(runs),
    maxCommands: 30,
    seed: seed === undefined ? undefined : Number(seed),
    timeLimitMs: Number(seconds) * 1000,
    log: (line) => console.log(line),
  });
  console.log(`RESULT ${JSON.stringify({ ok: true, ...report })}`);
  process.exit(0);
} catch (err) {
  const message = err instanceof Error ? err.message : String(err);
  console.log(`RESULT ${JSON.stringify({ ok: false, error: message })}`);
  process.exit(1);
}
