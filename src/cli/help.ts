/** The `--help` text, and the labels it shares with the man page, made from the option table. */
import { OPTION_TABLE, type OptionSpec } from "./options.ts";

/**
 * The default shown for an option in --help and the man page, if any.
 *
 * @example
 * ```ts
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
 * synopsis(findOption("debug")!); // "-d, --debug"
 * synopsis(findOption("region")!); // "--region REGION"
 * synopsis(findOption("wait")!); // "--wait[=SECONDS]"
 * ```
 */
export function synopsis(spec: OptionSpec): string {
  const names = [
    ...(spec.short ? [`-${spec.short}`] : []),
    `--${spec.name}`,
    ...(spec.aliases ?? []).map((a) => `--${a}`),
  ].join(", ");
  if (spec.kind === "flag") return names;
  if (spec.kind === "optional-seconds") return `${names}[=${spec.value}]`;
  return `${names} ${spec.value}`;
}

/**
 * The --help text, made from the table: the usage, then each group's options with their help
 * and defaults.
 *
 * @example
 * ```ts
 * console.log(helpText(VERSION));
 * ```
 */
export function helpText(version: string): string {
  const lines = [
    `ec2-consistent-snapshot ${version}`,
    "",
    "Usage: ec2-consistent-snapshot [options] [VOLUME_ID ...]",
    "",
    "Creates EBS snapshots while file systems are frozen and databases are flushed and locked,",
    "and releases everything right after the snapshots are initiated. With no VOLUME_ID, the",
    "volumes are found from the mount points given with --freeze-filesystem and",
    "--no-freeze-filesystem.",
  ];
  let group = "";
  for (const spec of OPTION_TABLE as readonly OptionSpec[]) {
    if (spec.group !== group) {
      group = spec.group;
      lines.push("", `${group}:`);
    }
    const label = defaultLabel(spec);
    lines.push(`  ${synopsis(spec)}`);
    lines.push(`      ${spec.help}${label ? ` (default: ${label})` : ""}`);
  }
  lines.push("", "Exit codes: see the README or the man page.", "");
  return lines.join("\n");
}
