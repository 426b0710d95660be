/** A short fuzz run from the OpenAPI document (test/openapi/fuzz.ts); `npm run soak` runs thousands. */
import { expect, it } from "vitest";
import { runApiFuzz } from "./fuzz";

it("requests generated from GET /openapi.json never get a 5xx or an undocumented answer", async () => {
  const report = await runApiFuzz({ runs: 400, seed: Number(process.env.FUZZ_SEED ?? 15), maxSeconds: 60 });
  expect(report.failures).toEqual([]);
  expect(report.requests).toBeGreaterThan(100);
  // The run reached past validation: answers, refusals and unknown documents all happened.
  expect(report.byStatus["200"]).toBeGreaterThan(0);
  expect(report.byStatus["400"]).toBeGreaterThan(0);
  expect(report.byStatus["404"]).toBeGreaterThan(0);
}, 120_000);
