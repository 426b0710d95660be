/**
 * CDK assertions on the synthesized pipeline, grouped in one test file so the stack is synthesized once
 * per process (see SHARED_PROPS in ./synth.ts): ingestion, chat API, functions and secrets, janitor,
 * alarms and dashboard. The checks live in the *.checks.ts modules imported here.
 */
import "./ingestion.checks";
import "./chat-api.checks";
import "./functions.checks";
import "./janitor-observability.checks";
