/**
 * The command line's words as the old tool's parser (Perl's Getopt::Long, its defaults) reads
 * them, rewritten into the one spelling node's parser takes: `--name=VALUE`, `--flag`, operands.
 */
import { UsageError } from "../util/errors.ts";
import type { OptionSpec } from "../types/options.ts";

const NUMBER = /^(\d+(\.\d*)?|\.\d+)$/;

/** Every name an option answers to, exactly: long names, aliases and one-character names. */
function namesOf(spec: OptionSpec): string[] {
  return [
    spec.name,
    ...(spec.aliases ?? []),
    ...(spec.short ? [spec.short] : []),
    ...(spec.shortAliases ?? []),
  ];
}

/**
 * The option a name given on the command line means, as Getopt::Long decides: an exact name
 * (long, alias or one character) first; else the one option whose long names start with it;
 * where newer options made that ambiguous, the one the old tool's options gave (its meaning
 * there). Undefined when nothing matches; ambiguous names are refused, naming the candidates.
 *
 * @example
 * ```ts
 * import { OPTION_TABLE } from "../types/options.ts";
 * resolveOption("desc", OPTION_TABLE)?.name; // "description"
 * resolveOption("r", OPTION_TABLE)?.name; // "region" (as in the old tool)
 * resolveOption("lock-t", OPTION_TABLE); // throws: --lock-timeout, --lock-tries
 * ```
 */
export function resolveOption(
  name: string,
  specs: readonly OptionSpec[],
  written = `--${name}`,
): OptionSpec | undefined {
  const exact = specs.find((spec) => namesOf(spec).includes(name));
  if (exact) return exact;
  const matches = specs.flatMap((spec) =>
    [spec.name, ...(spec.aliases ?? [])].filter((long) => long.startsWith(name))
      .map((long) => ({ spec, long }))
  );
  const candidates = [...new Set(matches.map((m) => m.spec))];
  if (candidates.length === 1) return candidates[0];
  const legacy = candidates.filter((spec) => spec.legacy);
  if (legacy.length === 1) return legacy[0];
  if (candidates.length > 1) {
    throw new UsageError(
      `option ${written} is ambiguous: ${matches.map((m) => `--${m.long}`).join(", ")}`,
    );
  }
  return undefined;
}

/** True when `word` is a bundle of one-character flags (`-dq`), which node's parser splits. */
function isFlagBundle(word: string, specs: readonly OptionSpec[]): boolean {
  return /^-[A-Za-z]{2,}$/.test(word) &&
    [...word.slice(1)].every((c) => specs.some((s) => s.kind === "flag" && s.short === c));
}

/**
 * Rewrites the command line into node's spelling, with the old tool's meaning:
 * - an option starts with `--`, `-` or `+` (Getopt::Long's compatibility prefix) and may be
 *   abbreviated (see {@linkcode resolveOption}): `-region eu-west-1`, `-desc x`, `-quiet`, `-?`;
 *   `-dq` (one-character flags bundled) is left for node's parser;
 * - `--name=VALUE` and `--name VALUE`: an option that needs a value takes the next word whatever
 *   it looks like (`--description -x`, `--keep -1`: the value check then says what is wrong);
 *   `--name=` with nothing after `=` is refused, as Getopt::Long refuses it (`--name ''` is not);
 * - `--wait` alone means its default; `--wait 600` would make 600 a volume id: refused, naming
 *   `--wait=600`. An option that takes no volume ids beside it (`--hold`, marked
 *   `valueAfterSpace`) takes a number that follows as its value: `--hold 90` is `--hold=90`;
 * - `--` ends the options: every word after it is a volume id, as given.
 *
 * @example
 * ```ts
 * import { OPTION_TABLE } from "../types/options.ts";
 * prepareArgs(["-region", "eu-west-1", "-desc", "-x", "vol-1"], OPTION_TABLE);
 * // ["--region=eu-west-1", "--description=-x", "vol-1"]
 * prepareArgs(["--wait", "600"], OPTION_TABLE); // throws UsageError: ... write --wait=600
 * ```
 */
export function prepareArgs(args: readonly string[], specs: readonly OptionSpec[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--") {
      out.push(...args.slice(i));
      break;
    }
    const match = /^(--|-|\+)([^=]+)(=(.*))?$/s.exec(arg);
    if (!match || arg === "-" || isFlagBundle(arg, specs)) {
      out.push(arg);
      continue;
    }
    const [, dashes, name, equals, inline] = match;
    const spec = resolveOption(name, specs, `${dashes}${name}`);
    if (!spec) throw new UsageError(`unknown option ${dashes}${name} (see --help)`);
    const option = `--${spec.name}`;
    const next = args[i + 1];
    if (spec.kind === "flag") {
      // A value given to a flag is node's to refuse ("takes no value").
      out.push(equals ? `${option}=${inline}` : option);
    } else if (equals) {
      // Getopt::Long: "Option description requires an argument" (`--description=$UNSET`).
      if (inline === "" && spec.kind !== "optional-seconds") {
        throw new UsageError(`${dashes}${name}=: needs a value after '='`);
      }
      out.push(`${option}=${inline}`);
    } else if (spec.kind === "optional-seconds") {
      if (spec.valueAfterSpace && next !== undefined && NUMBER.test(next)) {
        out.push(`${option}=${next}`);
        i++;
      } else if (next !== undefined && NUMBER.test(next)) {
        throw new UsageError(
          `${arg} ${next}: the value of ${option} goes after '=': write ${option}=${next} ` +
            `(alone, ${next} would be taken for a volume id)`,
        );
      } else {
        out.push(`${option}=`);
      }
    } else if (next === undefined) {
      throw new UsageError(`${option}: needs a value`);
    } else {
      out.push(`${option}=${next}`);
      i++;
    }
  }
  return out;
}
