/**
 * The short soak of `npm test` as a suite, for one provider: ~200 generated documents (small ones, two
 * 3 MiB ones, bad inputs) through local S3 -> queue (every event twice, some out of order) -> the real
 * ingest handler in killable worker processes, with 15% provider faults, a 100-file cap, the janitor on
 * an interval, overwrites, deletes, chat requests and readers (chat and search against documents
 * overwritten and deleted while they read, test/soak/readers.ts); then every invariant of the full soak
 * (test/soak/soak.ts). SOAK_TEST_DOCS overrides the document count. One provider per test file: the
 * handlers read their configuration once per process, as at a cold start.
 */
import { describe, expect, it } from "vitest";
import { formatReport, runSoak, SHORT_SOAK, type SoakOptions, type SoakReport } from "./soak";

export function describeShortSoak(provider: SoakOptions["provider"]): void {
  describe(`short soak (${provider})`, () => {
    let report: SoakReport;

    const options = { timeout: SHORT_SOAK.seconds * 1000 + 60_000 };

    it("converges under duplicated events, faults, crashes, overwrites and deletes", options, async () => {
      report = await runSoak({
        ...SHORT_SOAK,
        provider,
        documents: Number(process.env.SOAK_TEST_DOCS) || SHORT_SOAK.documents,
        log: () => undefined,
      });
      const failed = report.invariants.filter((i) => !i.ok);
      expect(failed, formatReport(report)).toEqual([]);
    });

    it("exercised what it claims to", () => {
      expect(report, "the soak did not run").toBeDefined();
      const d = report.documents;
      // Every kind of trouble actually happened during the run.
      expect(report.emulator.faulted).toBeGreaterThan(0);
      expect(report.emulator.byStatus["429"]).toBeGreaterThan(0);
      expect(report.emulator.byStatus["500"]).toBeGreaterThan(0);
      expect(report.emulator.byStatus["0"]).toBeGreaterThan(0);
      expect(d.overwrites).toBeGreaterThan(0);
      expect(d.deletes).toBeGreaterThan(0);
      expect(d.expectedFailed).toBeGreaterThan(0);
      expect(report.queue.sent).toBeGreaterThanOrEqual(2 * (d.versionsPut + d.deletes));
      expect(report.chat.requests).toBeGreaterThan(0);
      // Readers ran against documents being overwritten and deleted, and checked what they got.
      expect(report.readers.puts).toBeGreaterThan(report.options.readerDocs);
      expect(report.readers.deletes).toBeGreaterThan(0);
      expect(report.readers.chat.sources).toBeGreaterThan(0);
      expect(report.readers.search.hits).toBeGreaterThan(0);
      // Both tenants asked: answers inside their prefix, and requests naming the other's documents refused.
      expect(report.tenants.answered).toBeGreaterThan(0);
      expect(report.tenants.refused).toBeGreaterThan(0);
      expect(report.tenants.leaks).toEqual([]);
      expect(report.janitor.sweeps).toBeGreaterThan(1);
      // The file cap was reached, so quota room making and the janitor did real work.
      expect(report.remote.peakFiles).toBeGreaterThanOrEqual(0.8 * report.remote.maxFiles);
      expect(d.ready).toBe(d.expectedReady);
    });
  });
}
