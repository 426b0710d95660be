/**
 * The store and ingestion invariants, model-based (test/model/store-model.ts), bounded for npm test:
 * a dozen random sequences of up to 30 events on the real local servers, invariants after each step.
 * `npm run soak` runs a longer one. MODEL_RUNS / MODEL_SEED override the count and the seed.
 */
import { describe, expect, it } from "vitest";
import { runStoreModel } from "./store-model";

describe("store and ingestion invariants (model-based)", () => {
  it("hold after every step of random deliveries, duplicates, crashes, overwrites, deletes and sweeps", {
    timeout: 240_000,
  }, async () => {
    const report = await runStoreModel({
      runs: Number(process.env.MODEL_RUNS) || 12,
      maxCommands: 30,
      seed: process.env.MODEL_SEED ? Number(process.env.MODEL_SEED) : undefined,
      timeLimitMs: 120_000,
    });
    console.log(`model-based: ${JSON.stringify(report)}`);
    expect(report.runs).toBeGreaterThan(0);
    expect(report.steps).toBeGreaterThan(report.runs);
  });
});
