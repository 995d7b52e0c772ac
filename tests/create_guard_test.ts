/** How a failed CreateSnapshot call is named: an AWS error, "unknown" (no answer), "aborted". */
import { assertEquals } from "./support/assert.ts";
import { awsErrorCode, classifyFailure, NoAnswerError } from "../src/aws/create_guard.ts";

const live = new AbortController().signal;
const aborted = AbortSignal.abort();

/** An error as the SDK makes it from EC2's XML answer. */
function awsError(code: string, status: number): Error {
  return Object.assign(new Error(`${code} happened`), {
    name: code,
    $fault: status >= 500 ? "server" : "client",
    $metadata: { httpStatusCode: status },
  });
}

/** A socket error as node-http-handler hands it on (it names ECONNRESET a "TimeoutError"). */
function socketError(code: string): Error {
  return Object.assign(new Error("socket hang up"), { name: "TimeoutError", code });
}

Deno.test("EC2's answer with a code is an AWS error, even when our abort came after it", () => {
  const error = awsError("SnapshotCreationPerVolumeRateExceeded", 400);
  assertEquals(awsErrorCode(error), "SnapshotCreationPerVolumeRateExceeded");
  assertEquals(classifyFailure(error, aborted).kind, "error");
});

Deno.test("a reset or closed connection is 'unknown', never 'aborted' unless we aborted", () => {
  assertEquals(classifyFailure(socketError("ECONNRESET"), live), {
    kind: "unknown",
    code: "ECONNRESET",
    message: "socket hang up",
  });
  assertEquals(classifyFailure(new NoAnswerError(socketError("EPIPE")), live).code, "EPIPE");
  assertEquals(classifyFailure(socketError("ECONNRESET"), aborted).kind, "aborted");
});

Deno.test("an answer without an AWS code (a proxy's 503 page) is 'unknown'", () => {
  const page = Object.assign(new Error("Service Unavailable"), {
    name: "UnknownError",
    $fault: "server",
    $metadata: { httpStatusCode: 503 },
  });
  assertEquals(awsErrorCode(page), undefined);
  assertEquals(classifyFailure(page, live).kind, "unknown");
});

Deno.test("the no-answer error carries nothing the SDK's retry takes as transient", () => {
  const error = new NoAnswerError(Object.assign(socketError("ECONNRESET"), { cause: "x" }));
  const fields = error as unknown as Record<string, unknown>;
  assertEquals([fields.code, fields.cause, fields.$retryable], [undefined, undefined, undefined]);
  assertEquals(error.name, "NoAnswer");
});
