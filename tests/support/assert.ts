/** Assertions for the tests, on node:assert (the @std/assert registry is unreachable here). */
import nodeAssert from "node:assert/strict";

/** Asserts that `value` is truthy. */
export function assert(value: unknown, message?: string): asserts value {
  nodeAssert.ok(value, message);
}

/** Asserts deep, strict equality. */
export function assertEquals<T>(actual: T, expected: T, message?: string): void {
  nodeAssert.deepStrictEqual(actual, expected, message);
}

/** Asserts that `text` matches `pattern`. */
export function assertMatch(text: string, pattern: RegExp, message?: string): void {
  nodeAssert.match(text, pattern, message);
}

/**
 * Asserts that `fn` rejects with an error of `type` whose message matches `pattern` (a RegExp,
 * or a string the message must include); returns the error for further checks.
 */
export async function assertRejects<E extends Error>(
  fn: () => Promise<unknown>,
  // deno-lint-ignore no-explicit-any
  type: new (...args: any[]) => E,
  pattern?: RegExp | string,
): Promise<E> {
  try {
    await fn();
  } catch (error) {
    nodeAssert.ok(error instanceof type, `expected ${type.name}, got ${String(error)}`);
    const message = (error as Error).message;
    if (typeof pattern === "string") {
      nodeAssert.ok(message.includes(pattern), `expected ${JSON.stringify(pattern)} in ${message}`);
    } else if (pattern) {
      nodeAssert.match(message, pattern);
    }
    return error as E;
  }
  throw new nodeAssert.AssertionError({ message: `expected ${type.name}, nothing was thrown` });
}

/** Asserts that `fn` throws an instance of `type` whose message contains `includes`. */
export function assertThrows<E extends Error>(
  fn: () => unknown,
  type: new (...args: never[]) => E,
  includes?: string,
): E {
  try {
    fn();
  } catch (error) {
    if (!(error instanceof type)) throw error;
    if (includes !== undefined && !error.message.includes(includes)) {
      throw new Error(
        `expected a message containing ${JSON.stringify(includes)}: ${error.message}`,
      );
    }
    return error;
  }
  throw new Error(`expected ${type.name} to be thrown`);
}
