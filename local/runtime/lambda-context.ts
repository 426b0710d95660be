/**
 * A minimal Lambda `Context` for invoking handler code in-process, shaped like the one the Node.js
 * runtime passes: the deadline drives `getRemainingTimeInMillis()`, which the ingest handler uses to
 * decide whether another provider retry still fits in the invocation.
 */
import { randomUUID } from "node:crypto";
import type { Context } from "aws-lambda";

/** Account id used in every local ARN (the one LocalStack and the AWS docs use for examples). */
export const LOCAL_ACCOUNT_ID = "000000000000";

export interface LambdaContextOptions {
  functionName: string;
  /** Function timeout; the deadline is `now + timeoutMs`. */
  timeoutMs: number;
  region?: string;
  memoryLimitInMB?: number;
  /** Injected clock for tests. */
  now?: () => number;
}

/** Builds a fresh context (new request id, new deadline) for one invocation. */
export function createLambdaContext(opts: LambdaContextOptions): Context {
  const now = opts.now ?? Date.now;
  const deadline = now() + opts.timeoutMs;
  const region = opts.region ?? "us-east-1";
  const awsRequestId = randomUUID();
  const day = new Date(now()).toISOString().slice(0, 10).replace(/-/g, "/");
  const unsupported = (name: string) => () => {
    throw new Error(`context.${name}() is not supported: return a value or a promise from the handler`);
  };
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: opts.functionName,
    functionVersion: "$LATEST",
    invokedFunctionArn: `arn:aws:lambda:${region}:${LOCAL_ACCOUNT_ID}:function:${opts.functionName}`,
    memoryLimitInMB: String(opts.memoryLimitInMB ?? 1024),
    awsRequestId,
    logGroupName: `/aws/lambda/${opts.functionName}`,
    logStreamName: `${day}/[$LATEST]${awsRequestId.replace(/-/g, "")}`,
    getRemainingTimeInMillis: () => Math.max(0, deadline - now()),
    done: unsupported("done"),
    fail: unsupported("fail"),
    succeed: unsupported("succeed"),
  };
}
