/**
 * What a CreateSnapshot(s) call may send and how its end is named: no attempt after our own
 * abort, no resend of a request that got no answer, and every failure one of "error" (EC2 said
 * why), "unknown" (no answer: EC2 may have made the snapshot) or "aborted" (our own abort).
 */
import { Agent as HttpAgent } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import type { AgentOptions } from "node:http";
import { errorCode, errorMessage } from "../util/errors.ts";
import type { FailureKind } from "../types/side_effects.ts";

/** A failed call, named. */
export interface Failure {
  /** How it ended: "error", "unknown" or "aborted". */
  kind: FailureKind;
  /** The AWS error code ("error"), the socket error ("unknown", e.g. ECONNRESET), or "Aborted". */
  code: string;
  /** The first line of the error's message. */
  message: string;
}

interface SdkErrorShape {
  name?: string;
  $fault?: string;
  $metadata?: { httpStatusCode?: number };
}

/** The AWS error code of an error EC2 answered with, or undefined when EC2 did not answer one. */
export function awsErrorCode(error: unknown): string | undefined {
  const e = error as SdkErrorShape | undefined;
  if (!(error instanceof Error) || e?.$metadata?.httpStatusCode === undefined || !e.$fault) {
    return undefined;
  }
  return ["UnknownError", "Unknown", "Error", ""].includes(error.name) ? undefined : error.name;
}

/**
 * Names how a call failed: an AWS error code wins (EC2 answered), then our own abort, and
 * anything else (reset, closed, socket error, an answer without a code) is "unknown".
 *
 * @example
 * ```ts
 * const signal = new AbortController().signal;
 * classifyFailure(Object.assign(new Error("socket hang up"), { code: "ECONNRESET" }), signal);
 * // { kind: "unknown", code: "ECONNRESET", message: "socket hang up" }
 * ```
 */
export function classifyFailure(error: unknown, signal: AbortSignal): Failure {
  const message = errorMessage(error);
  const code = awsErrorCode(error);
  if (code) return { kind: "error", code, message };
  if (signal.aborted) return { kind: "aborted", code: "Aborted", message };
  const original = error instanceof NoAnswerError ? error.detail : errorCode(error);
  return { kind: "unknown", code: original === "Aborted" ? "NoAnswer" : original, message };
}

/**
 * An attempt that got no answer from EC2. Not retryable by the SDK (its name and fields match
 * none of the SDK's transient errors): the request may have reached EC2, which has no
 * idempotency token for CreateSnapshot, so a resend could make a second snapshot. No `cause`
 * and no `code` either: the SDK looks for transient errors in both.
 */
export class NoAnswerError extends Error {
  /**
   * The socket error's code (ECONNRESET, EPIPE ...) or the original error's name. Not called
   * `code`: the SDK retries any error whose `code` is a socket error's.
   */
  readonly detail: string;
  /** Wraps the error of an attempt that got no answer. */
  constructor(error: unknown) {
    super(errorMessage(error));
    this.name = "NoAnswer";
    this.detail = errorCode(error);
  }
}

function abortError(): Error {
  return Object.assign(new Error("aborted before the attempt was sent"), { name: "AbortError" });
}

/** The part of an SDK command this module needs: its middleware stack. */
interface Guardable {
  middlewareStack: {
    addRelativeTo(
      middleware: (
        next: (args: unknown) => Promise<unknown>,
      ) => (args: unknown) => Promise<unknown>,
      options: { relation: "after"; toMiddleware: string; name: string },
    ): void;
  };
}

/**
 * Puts a guard inside the SDK's retry loop of one command: once `signal` is aborted no attempt
 * is sent (the SDK's retry of an aborted call stops there), and an attempt that got no HTTP
 * answer is not retried. Returns the command.
 *
 * @example
 * ```ts
 * import { CreateSnapshotCommand, type CreateSnapshotCommandInput } from "@aws-sdk/client-ec2";
 * import type { EC2Client } from "./ec2.ts";
 * const client = {} as EC2Client, input = {} as CreateSnapshotCommandInput, signal = {} as AbortSignal;
 * await client.send(guardCreateCall(new CreateSnapshotCommand(input), signal), { abortSignal: signal });
 * ```
 */
export function guardCreateCall<C>(command: C, signal: AbortSignal): C {
  (command as unknown as Guardable).middlewareStack.addRelativeTo(
    (next) => async (args) => {
      if (signal.aborted) throw abortError();
      try {
        return await next(args);
      } catch (error) {
        const answered = (error as SdkErrorShape)?.$metadata?.httpStatusCode !== undefined;
        if (signal.aborted || answered) throw error;
        throw new NoAnswerError(error);
      }
    },
    { relation: "after", toMiddleware: "retryMiddleware", name: "ecsCreateCallGuard" },
  );
  return command;
}

/**
 * Deno's node:http resends a request on a reused keep-alive connection that closed before the
 * answer, even one we destroyed ourselves (denoland/deno#36786): a CreateSnapshot sent again
 * after the thaw. Requests made through these agents are marked so that it never does (the
 * property is the one Deno's `canRetryRequest` reads; Node.js has no such resend).
 */
function markNoResend(request: unknown): void {
  (request as { _retrying?: boolean })._retrying = true;
}

class NoResendHttpAgent extends HttpAgent {
  addRequest(request: unknown, options: unknown): void {
    markNoResend(request);
    // @ts-ignore: addRequest is Node's internal agent API, not in the type declarations.
    super.addRequest(request, options);
  }
}

class NoResendHttpsAgent extends HttpsAgent {
  addRequest(request: unknown, options: unknown): void {
    markNoResend(request);
    // @ts-ignore: addRequest is Node's internal agent API, not in the type declarations.
    super.addRequest(request, options);
  }
}

/**
 * The SDK's request handler options with agents that never resend a request by themselves:
 * keep-alive as the SDK's default agents (the preflight's connection carries the create call).
 */
export function noResendRequestHandler(): { httpAgent: HttpAgent; httpsAgent: HttpsAgent } {
  const options: AgentOptions = { keepAlive: true, maxSockets: 50 };
  return { httpAgent: new NoResendHttpAgent(options), httpsAgent: new NoResendHttpsAgent(options) };
}
