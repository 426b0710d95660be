/**
 * The short soak in `npm test` against the GLM profile: the pipeline configured with PROVIDER=glm,
 * the emulator playing Zhipu GLM (paged file list, 100-file cap, GLM error codes), the janitor and the
 * room maker keeping the account under that cap. See test/soak/short-soak.ts.
 */
import { describeShortSoak } from "./short-soak";

describeShortSoak("glm");
