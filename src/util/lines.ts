/** Lines: the one line reader (each read bounded by an optional signal) and the one writer of text and lines. */
import { abortable } from "./deadline.ts";

/**
 * Reads "\n"-terminated lines from a stream. A read that is aborted loses nothing: the pending
 * chunk is kept for the next call. A broken stream counts as its end.
 *
 * @example
 * ```ts
 * import { deadline } from "./deadline.ts";
 * const child = {} as Deno.ChildProcess;
 * const lines = new LineReader(child.stdout);
 * const first = await lines.next(deadline(5_000)); // rejects with TimeoutError after 5 s
 * for await (const line of lines) console.log(line);
 * ```
 */
export class LineReader {
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly #decoder = new TextDecoder();
  #buffered = "";
  #ended = false;
  #pending?: Promise<ReadableStreamReadResult<Uint8Array>>;

  /** Reads `stream` (it is locked to this reader). */
  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.getReader();
  }

  /**
   * The next line (without "\n"); undefined at the end of the stream. Rejects with
   * `signal.reason` when the signal aborts first.
   */
  async next(signal?: AbortSignal): Promise<string | undefined> {
    while (true) {
      const newline = this.#buffered.indexOf("\n");
      if (newline >= 0) {
        const line = this.#buffered.slice(0, newline);
        this.#buffered = this.#buffered.slice(newline + 1);
        return line;
      }
      if (this.#ended) {
        const rest = this.#buffered;
        this.#buffered = "";
        return rest || undefined;
      }
      this.#pending ??= this.#reader.read().catch(() => ({ done: true, value: undefined }));
      const result = signal ? await abortable(this.#pending, signal) : await this.#pending;
      this.#pending = undefined;
      if (result.done) this.#ended = true;
      else this.#buffered += this.#decoder.decode(result.value, { stream: true });
    }
  }

  /** The remaining lines. */
  async *[Symbol.asyncIterator](): AsyncGenerator<string> {
    while (true) {
      const line = await this.next();
      if (line === undefined) return;
      yield line;
    }
  }

  /** Stops reading (a pending read ends). */
  async cancel(): Promise<void> {
    await this.#reader.cancel().catch(() => {});
  }
}

/** A stream written synchronously: Deno.stdout, Deno.stderr, an open file. */
export interface SyncWriter {
  /** Writes some of `p`; returns how many bytes. */
  writeSync(p: Uint8Array): number;
}

/** A stream written asynchronously: a socket (Deno.Conn), a stream's writer. */
export interface AsyncWriter {
  /** Writes some of `p`; resolves with how many bytes. */
  write(p: Uint8Array): Promise<number>;
}

const encoder = new TextEncoder();

/**
 * The one writer of text: writes all of `text` to `stream` synchronously (nothing is lost
 * when the process exits right after). Throws what the stream throws (a closed pipe); each
 * caller decides what a failed write means.
 *
 * @example
 * ```ts
 * import { writeAllSync } from "./lines.ts";
 * writeAllSync(Deno.stderr, "one line\n");
 * ```
 */
export function writeAllSync(stream: SyncWriter, text: string): void {
  const bytes = encoder.encode(text);
  let written = 0;
  while (written < bytes.length) written += stream.writeSync(bytes.subarray(written));
}

/**
 * Writes `line` and its "\n" to `stream`, all of it; rejects with what the stream throws.
 *
 * @example
 * ```ts
 * import { writeLine } from "./lines.ts";
 * const conn = await Deno.connect({ transport: "unix", path: "/run/ec2-consistent-snapshot/hold.sock" });
 * await writeLine(conn, "release");
 * ```
 */
export async function writeLine(stream: AsyncWriter, line: string): Promise<void> {
  const bytes = encodeLine(line);
  let written = 0;
  while (written < bytes.length) written += await stream.write(bytes.subarray(written));
}

/**
 * The bytes of one line of a line protocol: `line` and "\n" (for a WritableStream's writer,
 * which takes whole chunks).
 *
 * @example
 * ```ts
 * import { encodeLine } from "./lines.ts";
 * encodeLine("ok"); // Uint8Array [111, 107, 10]
 * ```
 */
export function encodeLine(line: string): Uint8Array {
  return encoder.encode(line + "\n");
}
