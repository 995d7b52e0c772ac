/**
 * The command line's words made unambiguous before node's parser sees them: a negative number
 * after an option is its value, and a number after `--wait` (whose value is optional) is refused
 * with the spelling that works.
 */
import { UsageError } from "../util/errors.ts";
import type { OptionSpec } from "../types/options.ts";

const NUMBER = /^(\d+(\.\d*)?|\.\d+)$/;
const NEGATIVE_NUMBER = /^-(\d+(\.\d*)?|\.\d+)$/;

/**
 * Rewrites `--name VALUE` pairs whose meaning node's parser would get wrong. `args` are long
 * options already expanded from abbreviations; `specs` the option table.
 * - `--keep -1`: node takes `-1` for an option and says "needs a value"; joined as `--keep=-1`,
 *   the value check says what is wrong with it, as for `--keep=-1`.
 * - `--wait` alone means the default; `--wait 600` would make 600 a volume id: refused, naming
 *   `--wait=600`. An option that takes no volume ids beside it (`--hold`, marked
 *   `valueAfterSpace`) takes a number that follows as its value: `--hold 90` is `--hold=90`.
 *
 * @example
 * ```ts
 * prepareArgs(["--keep", "-1", "--wait"], OPTION_TABLE); // ["--keep=-1", "--wait="]
 * prepareArgs(["--wait", "600"], OPTION_TABLE); // throws UsageError: ... write --wait=600
 * ```
 */
export function prepareArgs(args: readonly string[], specs: readonly OptionSpec[]): string[] {
  const byName = new Map<string, OptionSpec>();
  for (const spec of specs) {
    for (const name of [spec.name, ...(spec.aliases ?? [])]) byName.set(`--${name}`, spec);
  }
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--") {
      out.push(...args.slice(i));
      break;
    }
    const spec = byName.get(arg);
    const next = args[i + 1];
    if (spec?.kind === "optional-seconds") {
      if (spec.valueAfterSpace && next !== undefined && NUMBER.test(next)) {
        out.push(`${arg}=${next}`);
        i++;
        continue;
      }
      if (next !== undefined && NUMBER.test(next)) {
        throw new UsageError(
          `${arg} ${next}: the value of ${arg} goes after '=': write ${arg}=${next} ` +
            `(alone, ${next} would be taken for a volume id)`,
        );
      }
      out.push(`${arg}=`);
    } else if (
      spec && spec.kind !== "flag" && next !== undefined && NEGATIVE_NUMBER.test(next)
    ) {
      out.push(`${arg}=${next}`);
      i++;
    } else {
      out.push(arg);
    }
  }
  return out;
}
