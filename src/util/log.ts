/** The logger: timestamped debug steps with elapsed milliseconds, warnings and errors, on stderr. */
import { writeAllSync } from "./lines.ts";

/** What every part logs through: debug steps, warnings and errors, each one line on stderr. */
export interface Logger {
  /** Only with --debug: a timestamped step with milliseconds since start. */
  debug(message: string): void;
  /**
   * A warning; shown unless --quiet. `evenWhenQuiet`: a warning about the backup itself (its
   * files outside the frozen set), which --quiet does not hide: it is not chatter.
   */
  warn(message: string, options?: { evenWhenQuiet?: boolean }): void;
  /** An error; always shown. */
  error(message: string): void;
  /** Milliseconds since the logger was made (the program's start). */
  elapsed(): number;
}

/** How {@linkcode createLogger} makes a logger. */
export interface LoggerOptions {
  /** --debug: print `debug` lines, timestamped, with elapsed milliseconds. */
  debug?: boolean;
  /** --quiet: print only errors. */
  quiet?: boolean;
  /** Where lines go; stderr by default. */
  write?: (line: string) => void;
  /** Monotonic clock in milliseconds; performance.now by default. */
  now?: () => number;
}

const PROGRAM = "ec2-consistent-snapshot";

/** Secrets registered here are replaced by `***` in every line the logger writes. */
const secrets = new Set<string>();

/** Registers a secret so that no log line can ever show it. */
export function registerSecret(secret: string | undefined): void {
  if (secret && secret.length >= 4) secrets.add(secret);
}

/**
 * A line as it may be written: every registered secret replaced by `***`, and every control
 * character escaped (newlines and tabs too: a value with a newline must not make a second
 * line, nor fake one). The one place where the program's error texts are made printable.
 */
function redact(line: string): string {
  let out = line;
  for (const secret of secrets) out = out.split(secret).join("***");
  return printable(out);
}

/**
 * Escapes control characters (C0, DEL, C1, and the bidirectional overrides that can reorder
 * what a terminal shows) as `\xNN` / `\u{NNNN}`, so that echoed input cannot move the
 * cursor, fake a line or hide text. Newlines and tabs stay only with `keepNewlines`.
 *
 * @example
 * ```ts
 * printable("bad\x1b[2Jname"); // "bad\\x1b[2Jname"
 * ```
 */
export function printable(text: string, options: { keepNewlines?: boolean } = {}): string {
  return text.replace(
    // deno-lint-ignore no-control-regex
    /[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/g,
    (char) => {
      if (options.keepNewlines && (char === "\n" || char === "\t")) return char;
      const code = char.codePointAt(0)!;
      return code <= 0xff
        ? `\\x${code.toString(16).padStart(2, "0")}`
        : `\\u{${code.toString(16)}}`;
    },
  );
}

/** The first failed write to stderr (closed, a broken pipe), if any. */
let stderrFailure: string | undefined;

/** Why a line could not be written to stderr (it was closed, ...); undefined when all went. */
export function stderrWriteFailure(): string | undefined {
  return stderrFailure;
}

/**
 * Writes all of `text` to stderr, synchronously (nothing is lost when the process exits right
 * after). Never throws: a closed stderr must not stop a release; the failure is remembered
 * (stderrWriteFailure) and later lines are dropped at once.
 */
export function writeStderr(text: string): void {
  if (stderrFailure) return;
  try {
    writeAllSync(Deno.stderr, text);
  } catch (error) {
    stderrFailure = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  }
}

function writeLine(line: string): void {
  writeStderr(line + "\n");
}

/**
 * Makes a logger.
 *
 * @example
 * ```ts
 * const log = createLogger({ debug: true });
 * log.debug("freezing /data");
 * ```
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const now = options.now ?? (() => performance.now());
  const sink = options.write ?? writeLine;
  const write = (line: string) => {
    try {
      sink(line);
    } catch {
      // Logging never throws into the sequence.
    }
  };
  const start = now();
  const elapsed = () => Math.round(now() - start);
  return {
    debug(message) {
      if (!options.debug) return;
      const stamp = new Date().toISOString();
      write(redact(`${stamp} +${elapsed()}ms ${message}`));
    },
    warn(message, warning) {
      if (options.quiet && !warning?.evenWhenQuiet) return;
      write(redact(`${PROGRAM}: warning: ${message}`));
    },
    error(message) {
      write(redact(`${PROGRAM}: ${message}`));
    },
    elapsed,
  };
}

/** A logger that drops everything; for tests and library use. */
export const silentLogger: Logger = {
  debug() {},
  warn() {},
  error() {},
  elapsed: () => 0,
};
