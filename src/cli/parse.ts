/** The command-line parser: argv against the option table, into typed `Options`. */
import { parseArgs } from "node:util";
import { UsageError } from "../util/errors.ts";
import { prepareArgs } from "./argv.ts";
import {
  DEFAULT_WAIT_SECONDS,
  defaultOptions,
  findOption,
  OPTION_TABLE,
  optionKey,
  type Options,
  type OptionSpec,
  type ParsedArgs,
} from "../types/options.ts";

/** The longest time a timer can wait (setTimeout's 2^31-1 ms), in whole seconds. */
export const MAX_SECONDS: number = Math.floor((2 ** 31 - 1) / 1000);

function parseNumber(spec: OptionSpec, raw: string): number {
  const text = raw.trim();
  const unit = spec.unit ?? "seconds";
  const valid = spec.kind === "count" ? /^\d+$/.test(text) : /^\d+(\.\d+)?$|^\.\d+$/.test(text);
  if (!valid) {
    const what = spec.kind === "count" ? "a whole number" : `a number of ${unit}`;
    const problem = /^-/.test(text) ? "must not be negative" : `must be ${what}`;
    throw new UsageError(`--${spec.name}: ${problem}, got '${raw}'`);
  }
  const value = Number(text);
  if (spec.kind !== "count") {
    const max = spec.max ?? MAX_SECONDS;
    if (value > max) {
      const about = max === MAX_SECONDS && unit === "seconds" ? " (about 24 days)" : "";
      throw new UsageError(`--${spec.name}: must be at most ${max} ${unit}${about}, got '${raw}'`);
    }
    if (spec.min !== undefined && value < spec.min) {
      throw new UsageError(`--${spec.name}: must be at least ${spec.min} ${unit}, got '${raw}'`);
    }
  }
  // Below a millisecond is 0 for a timer, which would fire at once.
  if (spec.positive && value < 0.001) {
    throw new UsageError(`--${spec.name}: must be more than 0 ${unit}, got '${raw}'`);
  }
  return value;
}

/**
 * Converts one raw value of an option to its typed value, checking it. Shared by the command
 * line and the configuration file.
 *
 * @example
 * ```ts
 * import { findOption } from "../types/options.ts";
 * convertValue(findOption("snapshot-timeout")!, "2.5"); // 2.5
 * convertValue(findOption("wait")!, true); // 3600 (--wait without SECONDS)
 * convertValue(findOption("keep")!, "-1"); // throws UsageError: --keep: must not be negative
 * ```
 */
export function convertValue(spec: OptionSpec, raw: string | boolean): unknown {
  switch (spec.kind) {
    case "flag":
      if (typeof raw === "boolean") return raw;
      if (/^(1|true|yes|on)$/i.test(raw)) return true;
      if (/^(0|false|no|off)$/i.test(raw)) return false;
      throw new UsageError(`--${spec.name}: takes no value, got '${raw}'`);
    case "optional-seconds": {
      if (raw === true || raw === "") return spec.bareValue ?? DEFAULT_WAIT_SECONDS;
      if (raw === false) return undefined;
      return parseNumber(spec, raw);
    }
    case "seconds":
    case "count":
      if (typeof raw === "boolean") throw new UsageError(`--${spec.name}: needs a value`);
      return parseNumber(spec, raw);
    default:
      if (typeof raw === "boolean") throw new UsageError(`--${spec.name}: needs a value`);
      // An empty path names no file: refused here, not found out after something is locked.
      if (raw === "" && (spec.value === "PATH" || spec.value === "FILE")) {
        throw new UsageError(`--${spec.name}: the path is empty`);
      }
      return raw;
  }
}

/**
 * Sets one raw value on options (appending for lists).
 *
 * @example
 * ```ts
 * import { defaultOptions, findOption } from "../types/options.ts";
 * const options = defaultOptions();
 * applyValue(options, findOption("tag")!, "team=db");
 * options.tag; // ["team=db"]
 * ```
 */
export function applyValue(options: Options, spec: OptionSpec, raw: string | boolean): void {
  const target = options as unknown as Record<string, unknown>;
  const key = optionKey(spec.name);
  if (spec.kind === "list") {
    if (typeof raw === "boolean") throw new UsageError(`--${spec.name}: needs a value`);
    (target[key] as string[]).push(raw);
  } else {
    target[key] = convertValue(spec, raw);
  }
}

function parseErrorMessage(error: { code?: string; message: string }): string {
  const first = error.message.split("\n")[0];
  const name = /'(?:-\w, )?(-{1,2}[^' ]+)/.exec(first)?.[1] ?? "";
  switch (error.code) {
    case "ERR_PARSE_ARGS_UNKNOWN_OPTION":
      return `unknown option ${name} (see --help)`;
    case "ERR_PARSE_ARGS_INVALID_OPTION_VALUE":
      if (/argument missing|ambiguous/.test(first)) return `${name}: needs a value`;
      if (/does not take an argument/.test(first)) return `${name}: takes no value`;
      return first;
    default:
      return first;
  }
}

/**
 * Parses the command line against the table.
 *
 * @example
 * ```ts
 * const { options, volumeIds } = parseCommandLine(["--region", "eu-west-1", "vol-0123abcd"]);
 * ```
 */
export function parseCommandLine(argv: readonly string[]): ParsedArgs {
  const specs = OPTION_TABLE as readonly OptionSpec[];
  const config: Record<string, { type: "string" | "boolean"; short?: string; multiple: true }> = {};
  for (const spec of specs) {
    const type = spec.kind === "flag" ? "boolean" : "string";
    for (const name of [spec.name, ...(spec.aliases ?? [])]) {
      config[name] = {
        type,
        multiple: true,
        ...(name === spec.name && spec.short ? { short: spec.short } : {}),
      };
    }
  }
  // The old tool's spellings (Getopt::Long: `-region`, `-desc`, `-?`, `--keep -1`), and `--wait`
  // alone (node's parser has no optional values), rewritten into node's.
  const args = prepareArgs(argv, specs);

  let tokens;
  try {
    tokens =
      parseArgs({ args, options: config, strict: true, allowPositionals: true, tokens: true })
        .tokens;
  } catch (error) {
    throw new UsageError(parseErrorMessage(error as { code?: string; message: string }));
  }
  const options = defaultOptions();
  const given = new Set<string>();
  const volumeIds: string[] = [];
  for (const token of tokens) {
    if (token.kind === "positional") {
      volumeIds.push(token.value);
    } else if (token.kind === "option") {
      const spec = findOption(token.name)!;
      applyValue(options, spec, token.value ?? true);
      given.add(spec.name);
    }
  }
  return { options, volumeIds, given };
}
