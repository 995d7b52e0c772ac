/** `assertRejects` for node:assert users: checks the class and message of a rejection and returns the error. */

/**
 * Awaits `fn()`, which must reject with an instance of `ErrorClass` whose message includes
 * `includes` (when given); returns the error for further checks.
 */
export async function assertRejects<E extends Error>(
  fn: () => Promise<unknown>,
  // deno-lint-ignore no-explicit-any
  ErrorClass: new (...args: any[]) => E,
  includes?: string,
): Promise<E> {
  let error: unknown;
  try {
    await fn();
  } catch (caught) {
    error = caught;
  }
  if (error === undefined) throw new Error("expected a rejection, but the promise resolved");
  if (!(error instanceof ErrorClass)) {
    throw new Error(`expected ${ErrorClass.name}, got: ${error}`, { cause: error });
  }
  if (includes !== undefined && !error.message.includes(includes)) {
    throw new Error(
      `expected the message to include ${JSON.stringify(includes)}, got ${
        JSON.stringify(error.message)
      }`,
    );
  }
  return error;
}
