/** The roff man page `ec2-consistent-snapshot.1`, made from the same option table as --help. */
import { ExitCode, type ExitCodeValue } from "../util/errors.ts";
import { defaultLabel } from "./help.ts";
import { OPTION_TABLE, type OptionSpec } from "../types/options.ts";
import { STOP_SIGNALS } from "../run/cleanup.ts";
import { EXAMPLES } from "./examples.ts";

/** One line per exit code, for the EXIT STATUS section (the compiler demands every code). */
export const EXIT_CODE_HELP: Readonly<Record<ExitCodeValue, string>> = {
  [ExitCode.ok]: "Success: every snapshot was initiated (and, with --wait, completed).",
  [ExitCode.internal]: "A bug or an unexpected failure.",
  [ExitCode.usage]:
    "Bad command line, configuration file or input file; nothing was locked, frozen or created.",
  [ExitCode.preflight]:
    "A check before locking failed: credentials, region, permission, volume, discovery or " +
    "instance metadata; nothing was locked, frozen or created.",
  [ExitCode.snapshot]: "One or more CreateSnapshot calls failed.",
  [ExitCode.timeout]:
    "A time limit passed: --snapshot-timeout before every snapshot was initiated, or " +
    "--hold-within before everything was held (everything was released).",
  [ExitCode.database]: "The database could not be connected, flushed, locked, stopped or started.",
  [ExitCode.freeze]: "A file system could not be frozen or thawed.",
  [ExitCode.hook]: "--pre-freeze-command or --post-thaw-command failed.",
  [ExitCode.wait]: "With --wait: a snapshot or a copy ended in error, or the wait timed out.",
  [ExitCode.retention]: "Retention (--keep, --keep-days) could not delete an old snapshot.",
  [ExitCode.busy]:
    "Another run or hold freezes, or is about to freeze, the same file system; nothing was locked.",
  [ExitCode.consistencyUnknown]:
    "A snapshot of unknown consistency: EC2 made it from a CreateSnapshot call that was aborted " +
    "or got no answer, or it was made while someone else had thawed a file system or ended the " +
    "database lock (--release: such a hold). Reported by id (stderr, JSON) and kept, not deleted.",
  [ExitCode.output]: "stdout or stderr was closed or could not be written.",
  [ExitCode.notHeld]:
    "--release: nothing is held, and no hold ended before it: no --hold came first.",
  [ExitCode.metrics]:
    "--metrics-file could not be written (after a run that otherwise succeeded; a failed run " +
    "keeps its own code).",
  [ExitCode.holdInPlace]:
    "--hold: a hold is already in place (its --release has not come); nothing new was locked.",
  [ExitCode.holdEnded]:
    "--release: the hold had already ended (its deadline, or its holder was killed or stopped); " +
    "a snapshot taken meanwhile is not application-consistent. --hold: the holder was killed " +
    "(or stopped, and ended by its watchdog) before everything was held.",
  [ExitCode.drillRefused]:
    "--restore-drill refused before creating anything: incomplete, pending or unknown-consistency " +
    "set, missing tags, permission, server binaries or Availability Zone.",
  [ExitCode.drillFailed]:
    "--restore-drill: the restored data failed a check (server start, recorded position, " +
    "--drill-check-command).",
  [ExitCode.drillLeftover]:
    "--restore-drill: a volume it created could not be detached or deleted (named on stderr; " +
    "the next drill removes it).",
};

/** What goes into the page besides the option table. */
export interface ManPageOptions {
  /** The program's version, shown in the page footer. */
  version: string;
  /** The page date, `YYYY-MM-DD`; none when omitted (keeps builds reproducible). */
  date?: string;
}

/** Escapes text for roff: backslashes, hyphens (as minus signs) and leading control dots. */
export function escapeRoff(text: string): string {
  const escaped = text.replaceAll("\\", "\\e").replaceAll("-", "\\-");
  return /^[.']/.test(escaped) ? `\\&${escaped}` : escaped;
}

function optionHeading(spec: OptionSpec): string {
  const names = [
    ...(spec.short ? [`\\fB\\-${spec.short}\\fR`] : []),
    ...(spec.shortAliases ?? []).map((a) => `\\fB\\-${escapeRoff(a)}\\fR`),
    `\\fB\\-\\-${escapeRoff(spec.name)}\\fR`,
    ...(spec.aliases ?? []).map((alias) => `\\fB\\-\\-${escapeRoff(alias)}\\fR`),
  ].join(", ");
  if (spec.kind === "flag") return names;
  const value = `\\fI${escapeRoff(spec.value ?? "VALUE")}\\fR`;
  return spec.kind === "optional-seconds" ? `${names}[=${value}]` : `${names} ${value}`;
}

function optionBody(spec: OptionSpec): string[] {
  // The sentence below says it for every repeatable option: not twice.
  const help = spec.kind === "list" ? spec.help.replace(/ \(repeatable\)\./, ".") : spec.help;
  const lines = [escapeRoff(help)];
  const label = defaultLabel(spec);
  if (label) lines.push(`Default: ${escapeRoff(label)}.`);
  if (spec.kind === "list") lines.push("May be given more than once.");
  if (spec.commandLineOnly) lines.push("Command line only; not read from a configuration file.");
  if (spec.secret) {
    lines.push("A secret: the tool warns when it is given on the command line and never logs it.");
  }
  return lines;
}

/** Columns left of the footer's centred date (80 wide): a longer left part runs into it. */
const FOOTER_LEFT = 32;

/**
 * The `.TH` line. The footer shows the source (program and version) on the left and the date in
 * the middle; a long version (git describe's `1.2-14-gabc1234-dirty`) would run into the date,
 * so then the left part is the version alone (the right part names the program), and past that
 * the date follows the version instead of sitting in the middle.
 */
function titleLine(version: string, date: string | undefined): string {
  let source = `ec2-consistent-snapshot ${version}`;
  let middle = date ?? "";
  if (date && source.length > FOOTER_LEFT) {
    source = version.length > FOOTER_LEFT ? `${version}, ${date}` : version;
    if (version.length > FOOTER_LEFT) middle = "";
  }
  return `.TH EC2\\-CONSISTENT\\-SNAPSHOT 1 "${middle}" "${escapeRoff(source)}" ` +
    `"User Commands"`;
}

function paragraphs(...texts: string[]): string[] {
  return texts.flatMap((text, i) => [...(i > 0 ? [".PP"] : []), escapeRoff(text)]);
}

/**
 * The man page in roff (man macros).
 *
 * @example
 * ```ts
 * await Deno.writeTextFile("ec2-consistent-snapshot.1", manPage({ version: "1.0.0" }));
 * ```
 */
export function manPage({ version, date }: ManPageOptions): string {
  const out: string[] = [
    `.\\" Generated by scripts/manpage.ts from src/options.ts; do not edit.`,
    titleLine(version, date),
    ".SH NAME",
    "ec2\\-consistent\\-snapshot \\- create consistent EBS snapshots of a running EC2 instance",
    ".SH SYNOPSIS",
    ".B ec2\\-consistent\\-snapshot",
    "[\\fIoptions\\fR] [\\fIVOLUME_ID\\fR ...]",
    ".SH DESCRIPTION",
    ...paragraphs(
      "Creates EBS snapshots while file systems are frozen and databases are flushed and " +
        "locked, and releases everything right after the snapshots are initiated.",
      "Everything that can fail or take time happens before anything is locked: options, " +
        "credentials, region, volumes, mount points and a permission check (DryRun) of every " +
        "snapshot. Then, in order: flush and lock the database (MySQL or MariaDB; PostgreSQL gets " +
        "a CHECKPOINT, and its WAL position is taken at the freeze), run " +
        "--pre-freeze-command, sync, freeze each file system, create all snapshots in one " +
        "concurrent round with their tags, thaw, run --post-thaw-command, unlock the database. " +
        "The releases run on success, on error, on timeout and on SIGINT, SIGTERM and SIGHUP; a " +
        "separate watchdog process thaws the file systems (and starts a database stopped with " +
        "--mysql-stop) if the tool itself is killed, and kills a tool stuck past its deadline.",
      "One run at a time freezes a file system: each run holds an exclusive lock per file " +
        "system (by device) from before it locks anything to its end; another run on the same " +
        "file system is refused (exit status 11), runs on other file systems go on. A file " +
        "system found frozen already is left frozen: a run thaws only what it froze.",
      "With no VOLUME_ID, the volumes are found from the mount points given with " +
        "--freeze-filesystem and --no-freeze-filesystem, through device-mapper, LVM and MD " +
        "devices, NVMe serial numbers and the instance's block device mappings.",
      "Output: each snapshot id on its own line on standard output, in volume order; with " +
        "--mysql, a line with the binary log coordinates; --quiet prints neither; --output json " +
        "prints one JSON document with the snapshots, the coordinates and the measured lock and " +
        "freeze windows.",
    ),
    ".SH OPTIONS",
    ...paragraphs(
      "As with the old tool, which read its command line with Perl's Getopt::Long: a long " +
        "option may be written with one dash (-region) and shortened to any unique prefix " +
        "(--desc or -desc for --description); an abbreviation that was unique among the old " +
        "tool's options keeps that meaning (-r is --region); an ambiguous one is refused, " +
        "naming the candidates. An option that takes a value accepts it as the next argument " +
        "(whatever it looks like) or after an equals sign (--region=eu-west-1). -? is --help; " +
        "-- ends the options.",
    ),
  ];
  let group = "";
  for (const spec of OPTION_TABLE as readonly OptionSpec[]) {
    if (spec.group !== group) {
      group = spec.group;
      out.push(`.SS ${escapeRoff(group)}`);
    }
    out.push(".TP", optionHeading(spec), ...optionBody(spec));
  }
  out.push(".SH EXAMPLES");
  for (const { what, command } of EXAMPLES) {
    out.push(".PP", escapeRoff(what), ".PP", `.B ${escapeRoff(command)}`);
  }
  out.push(
    ".SH CONFIGURATION FILE",
    ...paragraphs(
      "--config FILE reads options from an INI file whose keys are the long option names " +
        "without the leading dashes (for example region = eu-west-1); a repeatable option is " +
        "given once per line; a flag takes true or false. Options on the command line win over " +
        "the file.",
    ),
    ".SH EXIT STATUS",
  );
  for (const [code, help] of Object.entries(EXIT_CODE_HELP)) {
    out.push(".TP", `.B ${code}`, escapeRoff(help));
  }
  const signals = Object.entries(STOP_SIGNALS).map(([name, n]) => `${128 + n} for ${name}`);
  out.push(
    ".TP",
    ".B 128+N",
    escapeRoff(
      `Stopped by signal N (${signals.join(", ")}), after everything taken was released.`,
    ),
  );
  out.push(
    ".SH ENVIRONMENT",
    ...[
      ["AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY", "Default of the two key options."],
      ["AWS_CREDENTIALS", "Default of --aws-credentials-file."],
      ["AWS_PROFILE", "Default of --profile."],
      ["AWS_REGION", "Default of --region."],
      ["AWS_DEFAULT_REGION", "Default of --region when AWS_REGION is not set."],
      ["AWS_ENDPOINT_URL_EC2", "Default of --ec2-endpoint."],
      ["ECS_RUN_DIR", "Where the freeze locks live instead of /run/ec2-consistent-snapshot."],
    ].flatMap(([name, help]) => [".TP", `.B ${escapeRoff(name)}`, escapeRoff(help)]),
    ".PP",
    "The rest of the AWS SDK's default credential chain applies as well (SSO, web identity, " +
      "container credentials, the instance role through IMDSv2).",
    ".SH FILES",
    ...[
      ["~/.awssecret", "Legacy credentials file: the access key id, then the secret access key."],
      ["~/.aws/credentials, ~/.aws/config", "AWS shared credentials and configuration files."],
      ["~/.my.cnf", "MySQL option file, read for the [client] and [mysql] sections."],
      ["/proc/self/mountinfo, /sys/dev/block", "Read to find the volumes behind mount points."],
      [
        "/run/ec2-consistent-snapshot/",
        "Root only (0700): one lock file per frozen file system (freeze-MAJ-MIN.lock) naming " +
        "the process that holds it.",
      ],
    ].flatMap(([name, help]) => [".TP", `.I ${escapeRoff(name)}`, escapeRoff(help)]),
    ".SH SEE ALSO",
    ".BR fsfreeze (8),",
    ".BR xfs_freeze (8),",
    ".BR systemd.timer (5),",
    ".BR crontab (5)",
    "",
  );
  return out.join("\n");
}
