/**
 * API Gateway Lambda authorizer for the chat API: checks `Authorization: Bearer <token>` against the
 * API token kept in Secrets Manager (read with caching).
 *
 * Works as a TOKEN authorizer (identity source: the Authorization header) or a REQUEST authorizer.
 * On success it returns an IAM policy allowing every method of the stage (`<api>/<stage>/*`), not
 * only the one called, so API Gateway's authorizer cache can answer later calls to other routes with
 * the same token. A missing or wrong token throws "Unauthorized", which API Gateway turns into 401.
 */
import type {
  APIGatewayAuthorizerResult,
  APIGatewayRequestAuthorizerEvent,
  APIGatewayTokenAuthorizerEvent,
} from "aws-lambda";
import { isAuthorized } from "../core/auth/token";
import { logger } from "../core/runtime/observability";
import { getApiToken } from "../core/runtime/secrets";

export type AuthorizerEvent = APIGatewayTokenAuthorizerEvent | APIGatewayRequestAuthorizerEvent;

/** The principal the policy names; the chat app checks it is present (see functions/chat/app.ts). */
export const API_TOKEN_PRINCIPAL = "api-token";

/** `arn:aws:execute-api:region:account:apiId/stage/*` from a method ARN (`...:apiId/stage/VERB/path`). */
export function stageWildcardArn(methodArn: string): string {
  // arn:aws:execute-api:<region>:<account>:<apiId> / <stage> / <verb> / <path...>
  const [apiArn, stage] = methodArn.split("/");
  if (!apiArn || !stage) return methodArn;
  return `${apiArn}/${stage}/*`;
}

function authorizationHeader(event: AuthorizerEvent): string | undefined {
  if (event.type === "TOKEN") return event.authorizationToken;
  const headers = event.headers ?? {};
  for (const [name, value] of Object.entries(headers)) {
    if (name.toLowerCase() === "authorization" && value) return value;
  }
  return undefined;
}

/** Builds the handler; `getToken` and `log` are injectable for tests. */
export function createAuthorizer(
  getToken: () => Promise<string | undefined> = getApiToken,
  log: Pick<typeof logger, "warn" | "error"> = logger,
): (event: AuthorizerEvent) => Promise<APIGatewayAuthorizerResult> {
  return async (event) => {
    let expected: string | undefined;
    try {
      expected = await getToken();
    } catch (err) {
      log.error("could not read the API token; denying", { error: (err as Error).name });
      throw new Error("Unauthorized");
    }
    if (!expected) {
      log.error("no API token is configured; denying every request");
      throw new Error("Unauthorized");
    }
    if (!isAuthorized(authorizationHeader(event), expected)) {
      // Never log the presented credential.
      log.warn("rejected a request with a missing or wrong bearer token", { methodArn: event.methodArn });
      throw new Error("Unauthorized");
    }
    return {
      principalId: API_TOKEN_PRINCIPAL,
      policyDocument: {
        Version: "2012-10-17",
        Statement: [
          { Action: "execute-api:Invoke", Effect: "Allow", Resource: stageWildcardArn(event.methodArn) },
        ],
      },
      context: { auth: "bearer" },
    };
  };
}

export const handler = createAuthorizer();
