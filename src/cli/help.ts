/** The `--help` text, and the labels it shares with the man page, made from the option table. */
import { ExitCode } from "../util/errors.ts";
import { OPTION_TABLE, type OptionSpec } from "../types/options.ts";
import { EXAMPLES } from "./examples.ts";

/**
 * The default shown for an option in --help and the man page, if any.
 *
 * @example
 * ```ts
 * import { findOption } from "../types/options.ts";
 * defaultLabel(findOption("snapshot-timeout")!); // "10"
 * defaultLabel(findOption("region")!); // "$AWS_REGION, the profile, then the instance's region"
 * ```
 */
export function defaultLabel(spec: OptionSpec): string | undefined {
  if (spec.defaultText) return spec.defaultText;
  if (spec.default !== undefined) return String(spec.default);
  return undefined;
}

/**
 * The option's synopsis in --help.
 *
 * @example
 * ```ts
 * import { findOption } from "../types/options.ts";
 * synopsis(findOption("debug")!); // "-d, --debug"
 * synopsis(findOption("help")!); // "-h, -?, --help"
 * synopsis(findOption("region")!); // "--region REGION"
 * synopsis(findOption("wait")!); // "--wait[=SECONDS]"
 * ```
 */
export function synopsis(spec: OptionSpec): string {
  const names = [
    ...(spec.short ? [`-${spec.short}`] : []),
    ...(spec.shortAliases ?? []).map((a) => `-${a}`),
    `--${spec.name}`,
    ...(spec.aliases ?? []).map((a) => `--${a}`),
  ].join(", ");
  if (spec.kind === "flag") return names;
  if (spec.kind === "optional-seconds") return `${names}[=${spec.value}]`;
  return `${names} ${spec.value}`;
}

/** Words of `text` in lines of at most `width` columns, each line after `indent`. */
export function wrap(text: string, width: number, indent: string): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/).filter((w) => w !== "")) {
    if (line !== "" && indent.length + line.length + 1 + word.length > width) {
      lines.push(indent + line);
      line = word;
    } else {
      line = line === "" ? word : `${line} ${word}`;
    }
  }
  if (line !== "") lines.push(indent + line);
  return lines;
}

/**
 * A command in lines of at most 80 columns, indented, broken between words with a shell's
 * line continuation (` \`), so that it can be pasted as it is.
 */
function wrapCommand(command: string): string[] {
  // An option and its value stay on one line.
  const glued = command.replace(/(\s--?[a-z][a-z0-9-]*) (?!-)/g, "$1\u0000");
  const lines = wrap(glued, HELP_WIDTH - 2, "      ").map((l) => l.replaceAll("\u0000", " "));
  return lines.map((line, i) => i < lines.length - 1 ? `${line} \\` : line);
}

/** The width --help fits in. */
export const HELP_WIDTH = 80;

/** The --help text, made from the table; every line fits in 80 columns. */
export function helpText(version: string): string {
  const lines = [
    `ec2-consistent-snapshot ${version}`,
    "",
    "Usage: ec2-consistent-snapshot [options] [VOLUME_ID ...]",
    "",
    ...wrap(
      "Creates EBS snapshots while file systems are frozen and databases are flushed and " +
        "locked, and releases everything right after the snapshots are initiated. With no " +
        "VOLUME_ID, the volumes are found from the mount points given with " +
        "--freeze-filesystem and --no-freeze-filesystem. An option's value follows it " +
        "(--region eu-west-1) or an equals sign (--region=eu-west-1); --wait takes one only " +
        "after '=' (--wait=600). As with the old tool (Perl's Getopt::Long), a long option may " +
        "be written with one dash (-region) and shortened to any unique prefix (--desc, -desc); " +
        "-- ends the options.",
      HELP_WIDTH,
      "",
    ),
  ];
  let group = "";
  for (const spec of OPTION_TABLE as readonly OptionSpec[]) {
    if (spec.group !== group) {
      group = spec.group;
      lines.push("", ...wrap(`${group}:`, HELP_WIDTH, ""));
    }
    const label = defaultLabel(spec);
    const text = spec.help + (spec.kind === "list" ? " Repeatable." : "") +
      (label ? ` (default: ${label})` : "");
    lines.push(...wrap(synopsis(spec), HELP_WIDTH, "  "), ...wrap(text, HELP_WIDTH, "      "));
  }
  lines.push("", "Examples:");
  for (const { what, command } of EXAMPLES) {
    lines.push(...wrap(what, HELP_WIDTH, "  "), ...wrapCommand(command));
  }
  const codes = Object.entries(ExitCode).map(([name, code]) => `${code} ${name}`);
  lines.push(
    "",
    ...wrap(`Exit codes: ${codes.join(", ")}, 128+N stopped by signal N.`, HELP_WIDTH, ""),
    // A paragraph of its own, so that the command never breaks across lines.
    ...wrap(
      "Each is explained in the man page (man ec2-consistent-snapshot, or man " +
        "./dist/ec2-consistent-snapshot.1 after scripts/build.sh).",
      HELP_WIDTH,
      "",
    ),
    "",
  );
  return lines.join("\n");
}
