/**
 * The short soak in `npm test` against the Moonshot profile (test/soak/short-soak.ts says what it
 * does); soak-glm.test.ts runs the same against the GLM profile.
 */
import { describeShortSoak } from "./short-soak";

describeShortSoak("moonshot");
