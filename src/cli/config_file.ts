/** Reads `--config FILE` (INI, with the `ini` package) and merges it under the command line. */
import ini from "ini";
import { UsageError } from "../util/errors.ts";
import { readableByOthers, readUserFile } from "../util/files.ts";
import { findOption, OPTION_TABLE, type OptionSpec, type ParsedArgs } from "../types/options.ts";
import { applyValue } from "./parse.ts";

/** Every long option name and alias. */
function optionNames(): string[] {
  return (OPTION_TABLE as readonly OptionSpec[]).flatMap((spec) => [
    spec.name,
    ...(spec.aliases ?? []),
  ]);
}

/**
 * The one section the file may have. Keys may also stand at the top, before any section; any
 * other section is an error (a misspelt section would otherwise be silently ignored).
 */
export const CONFIG_SECTION = "ec2-consistent-snapshot";

/** The key that lists volume ids (the command line's positional arguments); repeatable. */
export const VOLUME_KEY = "volume";

/** One key of the file: every value it was given, in order, with their lines. */
export interface ConfigEntry {
  /** The option's long name (aliases resolved), or VOLUME_KEY. */
  name: string;
  /** Each value as written (`true` for a key without `=`, e.g. `multi-volume`). */
  values: (string | boolean)[];
  /** The line of each value. */
  lines: number[];
}

/** A configuration file, read and checked. */
export interface ConfigFile {
  /** The file, as given to --config. */
  path: string;
  /** Its keys, in the order first seen. */
  entries: ConfigEntry[];
  /** Warnings to show once the logger exists (e.g. secrets in a file others can read). */
  warnings: string[];
}

/** Where a key stands in the text: found by scanning lines, for error messages. */
interface Occurrence {
  section: string | null;
  key: string;
  line: number;
  /** The text after `=`, untouched; undefined for a bare key. */
  raw: string | undefined;
}

// The same line shapes the ini package recognises (lib/ini.js `decode`), used only to locate
// keys and sections by line number; the values themselves come from `decode`.
const SECTION_LINE = /^\[([^\]]*)\]\s*$/;
const KEY_LINE = /^([^=]+)(=(.*))?$/;

function locate(text: string): Occurrence[] {
  const found: Occurrence[] = [];
  let section: string | null = null;
  text.split(/\r\n|\r|\n/).forEach((line, index) => {
    if (/^\s*([;#]|$)/.test(line)) return;
    const header = SECTION_LINE.exec(line);
    if (header) {
      section = header[1].trim();
      found.push({ section, key: "", line: index + 1, raw: undefined });
      return;
    }
    const match = KEY_LINE.exec(line);
    if (match) {
      found.push({ section, key: match[1].trim(), line: index + 1, raw: match[3] });
    }
  });
  return found;
}

/** An unquoted value with `;` or `#` in it would be cut there by INI's inline comments. */
function cutByComment(raw: string): boolean {
  const value = raw.trim();
  if (/^(".*"|'.*')$/s.test(value)) return false;
  return /(^|[^\\])[;#]/.test(value);
}

/** Edit distance of two short strings (a swap of neighbours counts once), for "did you mean". */
function distance(a: string, b: string): number {
  const d = Array.from(
    { length: a.length + 1 },
    (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.length][b.length];
}

/** The option name a misspelt key was probably meant to be: our own text, never the input. */
function suggestion(key: string): string | undefined {
  const lower = key.replace(/\[\]$/, "").toLowerCase().replaceAll("_", "-");
  let best: { name: string; cost: number } | undefined;
  for (const name of [...optionNames(), VOLUME_KEY]) {
    const cost = distance(lower, name);
    if (cost <= 2 && cost < lower.length / 2 && (!best || cost < best.cost)) best = { name, cost };
  }
  return best?.name;
}

/**
 * A line whose key is not an option: the line is not shown, since it may be a secret (a value
 * put on the line after its key). Only our own names appear in the message.
 */
function unknownKey(where: string, at: Occurrence, previous: Occurrence | undefined): UsageError {
  const hint = suggestion(at.key);
  const emptyBefore = previous && previous.line === at.line - 1 && previous.key !== "" &&
      previous.raw?.trim() === "" && findOption(previous.key)
    ? `; line ${previous.line} gives '${
      findOption(previous.key)!.name
    }' an empty value: a value must stand on the same line as its key`
    : "";
  return new UsageError(
    `${where}: unknown key${hint ? ` (did you mean '${hint}'?)` : ""}; keys are long option ` +
      `names (the line is not shown: it could hold a secret)${emptyBefore}`,
  );
}

function checkOccurrence(
  path: string,
  at: Occurrence,
  previous: Occurrence | undefined,
): OptionSpec | undefined {
  const where = `${path}:${at.line}`;
  if (at.key === "") {
    if (at.section !== CONFIG_SECTION) {
      throw new UsageError(
        `${where}: unknown section; use [${CONFIG_SECTION}] or no section ` +
          "(the line is not shown: it could hold a secret)",
      );
    }
    return undefined;
  }
  if (at.key.endsWith("[]")) {
    const base = findOption(at.key.slice(0, -2));
    if (!base) throw unknownKey(where, at, previous);
    throw new UsageError(
      `${where}: write '${base.name}' once per value instead of '${base.name}[]'`,
    );
  }
  const spec = findOption(at.key);
  if (!spec && at.key !== VOLUME_KEY) throw unknownKey(where, at, previous);
  if (spec?.commandLineOnly) {
    throw new UsageError(`${where}: '${at.key}' is accepted on the command line only`);
  }
  if (at.raw !== undefined && cutByComment(at.raw)) {
    throw new UsageError(
      `${where}: the value of '${at.key}' contains ';' or '#', which INI reads as a comment; ` +
        `put the value in double quotes`,
    );
  }
  return spec;
}

function asList(value: unknown): unknown[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

/** ini turns bare `true`, `false` and `null` into JSON values; options want the text back. */
function valueFor(
  spec: OptionSpec | undefined,
  value: unknown,
  at: Occurrence,
  path: string,
): string | boolean {
  const name = spec?.name ?? VOLUME_KEY;
  if (at.raw === undefined) {
    if (!spec || (spec.kind !== "flag" && spec.kind !== "optional-seconds")) {
      throw new UsageError(`${path}:${at.line}: '${at.key}' needs a value`);
    }
    return true;
  }
  if (typeof value === "string") return value;
  if (spec?.kind === "flag" && typeof value === "boolean") return value;
  if (value === null || typeof value === "boolean") return String(value);
  throw new UsageError(`${path}:${at.line}: cannot read the value of '${name}'`);
}

/**
 * Parses and checks the text of a configuration file; `path` is only for messages.
 *
 * @example
 * ```ts
 * const file = parseConfigText("region = eu-west-1\nvolume = vol-0123abcd\n", "/etc/ecs.conf");
 * ```
 */
export function parseConfigText(text: string, path: string): ConfigFile {
  const occurrences = locate(text);
  const specs = occurrences.map((at, i) => checkOccurrence(path, at, occurrences[i - 1]));
  // bracketedArray: false makes a repeated key an array, as repeated options are.
  const decoded = ini.decode(text, { bracketedArray: false }) as Record<string, unknown>;
  const section = (decoded[CONFIG_SECTION] ?? {}) as Record<string, unknown>;

  const entries = new Map<string, ConfigEntry>();
  const seen = new Map<string, number>();
  occurrences.forEach((at, i) => {
    if (at.key === "") return;
    const scope = at.section === null ? decoded : section;
    const index = seen.get(`${at.section}\0${at.key}`) ?? 0;
    seen.set(`${at.section}\0${at.key}`, index + 1);
    const spec = specs[i];
    const value = valueFor(spec, asList(scope[at.key])[index], at, path);
    const name = spec?.name ?? VOLUME_KEY;
    const entry = entries.get(name) ?? { name, values: [], lines: [] };
    entry.values.push(value);
    entry.lines.push(at.line);
    entries.set(name, entry);
  });
  return { path, entries: [...entries.values()], warnings: [] };
}

/** Reads and checks a configuration file; problems are UsageErrors naming the file and line. */
export function readConfigFile(path: string): ConfigFile {
  const text = readUserFile(path, "--config");
  const file = parseConfigText(text, path);
  const secrets = file.entries.filter((e) => findOption(e.name)?.secret).map((e) => e.name);
  if (secrets.length > 0) {
    if (readableByOthers(path)) {
      file.warnings.push(
        `--config ${path} holds ${secrets.join(", ")} and is readable by group or others; ` +
          `chmod 600 it`,
      );
    }
  }
  return file;
}

/**
 * Puts the file's values under the command line: an option given on the command line keeps its
 * command-line value (for repeatable options, the command line's values replace the file's);
 * volume ids on the command line replace the file's `volume` keys.
 */
export function mergeConfig(args: ParsedArgs, file: ConfigFile): ParsedArgs {
  const options = structuredClone(args.options);
  const given = new Set(args.given);
  const fromConfigFile = new Set<string>();
  let volumeIds = args.volumeIds;
  for (const entry of file.entries) {
    if (entry.name === VOLUME_KEY) {
      if (args.volumeIds.length === 0) volumeIds = entry.values.map(String);
      continue;
    }
    if (args.given.has(entry.name)) continue;
    const spec = findOption(entry.name)!;
    entry.values.forEach((value, i) => {
      try {
        applyValue(options, spec, value);
      } catch (error) {
        if (!(error instanceof UsageError)) throw error;
        throw new UsageError(`${file.path}:${entry.lines[i]}: ${error.message}`);
      }
    });
    given.add(entry.name);
    fromConfigFile.add(entry.name);
  }
  return { options, volumeIds, given, fromConfigFile };
}

/**
 * Reads `--config FILE`, when given, and merges it under the command line.
 *
 * @example
 * ```ts
 * import { parseCommandLine } from "./parse.ts";
 * const { args, warnings } = withConfigFile(parseCommandLine(Deno.args));
 * ```
 */
export function withConfigFile(args: ParsedArgs): { args: ParsedArgs; warnings: string[] } {
  const path = args.options.config;
  if (path === undefined) return { args, warnings: [] };
  const file = readConfigFile(path);
  return { args: mergeConfig(args, file), warnings: file.warnings };
}
