/**
 * The short soak in `npm test` (test/soak/short-soak.ts says what it does), against the test
 * provider: vitest.config.ts runs this file once per provider (TEST_PROVIDER), each in its own process.
 */
import { TEST_PROVIDER } from "../support/provider";
import { describeShortSoak } from "./short-soak";

describeShortSoak(TEST_PROVIDER);
