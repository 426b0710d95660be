#!/usr/bin/env node
// `kdp`: registers tsx so the TypeScript CLI runs without a build step, then runs it.
import { register } from "tsx/esm/api";

register();
await import("./kdp.ts");
