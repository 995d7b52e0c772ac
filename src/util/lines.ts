/** The one line reader: lines of a byte stream, each read bounded by an optional signal. */
import { abortable } from "./deadline.ts";

/**
 * Reads "\n"-terminated lines from a stream. A read that is aborted loses nothing: the pending
 * chunk is kept for the next call. A broken stream counts as its end.
 *
 * @example
 * ```ts
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
