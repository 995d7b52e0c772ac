/**
 * The single option table, and the `Options` type derived from it. The parser (parse.ts),
 * `--help` (help.ts), the man page (manpage.ts) and the configuration-file reader
 * (config_file.ts) are all made from it; no option name is spelled anywhere else.
 */
import { MAX_TAGS, OWN_TAGS } from "./tags.ts";

/** How an option takes its value. */
export type OptionKind =
  | "flag" // no value
  | "string" // one value; the last one given wins
  | "list" // repeatable; every value kept in order
  | "seconds" // a non-negative number of seconds (fractions allowed)
  | "count" // a non-negative whole number
  | "optional-seconds"; // --name or --name=SECONDS

/** One option of the table: everything the parser, --help, the man page and config file need. */
export interface OptionSpec {
  /** Long name without the leading dashes. */
  readonly name: string;
  /** How the option takes its value. */
  readonly kind: OptionKind;
  /** One sentence for --help and the man page. */
  readonly help: string;
  /** The one-letter name, without the dash. */
  readonly short?: string;
  /** Other one-character names (`-?` for help, as the old tool had it). */
  readonly shortAliases?: readonly string[];
  /**
   * The old Perl tool had this option: an abbreviation that was unique among the old tool's
   * options keeps the meaning it had there, where newer options made it ambiguous (`-r` is
   * `--region`, as it was, though `--release` and `--retention-tz` came later).
   */
  readonly legacy?: boolean;
  /** Other long names that mean the same (the old tool's names). */
  readonly aliases?: readonly string[];
  /** The placeholder shown in help, for options with a value. */
  readonly value?: string;
  /** The default value; shown in --help and applied by the parser. */
  readonly default?: string | number;
  /** What --help shows as default when it is not a literal value. */
  readonly defaultText?: string;
  /** The value is a secret: warn when given on the command line, never print it. */
  readonly secret?: boolean;
  /** The section of --help and the man page. */
  readonly group: string;
  /** Accepted only on the command line, never in a configuration file. */
  readonly commandLineOnly?: boolean;
  /** optional-seconds: the value when the option stands alone (`--hold`). */
  readonly bareValue?: number;
  /** The largest value accepted (in `unit`). */
  readonly max?: number;
  /** The smallest value accepted (in `unit`), for a value below which the option makes no sense. */
  readonly min?: number;
  /** The unit of a number kind's value, as messages name it; default "seconds". */
  readonly unit?: "seconds" | "days";
  /**
   * optional-seconds: a number in the next word is the value (`--hold 90`). Only for options
   * that take no volume ids beside them, where a number cannot be meant as one.
   */
  readonly valueAfterSpace?: boolean;
  /** A time limit: the value must be more than 0 (seconds kinds). */
  readonly positive?: boolean;
}

/** The table. Order is the order of --help. */
export const OPTION_TABLE = [
  // General
  {
    name: "help",
    short: "h",
    shortAliases: ["?"],
    legacy: true,
    kind: "flag",
    group: "General",
    help: "Print this help and exit.",
  },
  {
    name: "version",
    short: "V",
    kind: "flag",
    group: "General",
    help: "Print the version and exit.",
  },
  {
    name: "debug",
    legacy: true,
    short: "d",
    kind: "flag",
    group: "General",
    help: "Log every step on stderr, timestamped, with elapsed milliseconds.",
  },
  {
    name: "quiet",
    legacy: true,
    short: "q",
    kind: "flag",
    group: "General",
    help: "Print nothing but errors (no snapshot ids, no binary log line).",
  },
  {
    name: "noaction",
    legacy: true,
    short: "n",
    kind: "flag",
    group: "General",
    help:
      "Dry run: print the plan; lock, freeze, create and delete nothing (read-only lookups only).",
  },
  {
    name: "output",
    kind: "string",
    value: "FORMAT",
    default: "text",
    group: "General",
    help: "Output format: text (the old tool's lines) or json.",
  },
  {
    name: "config",
    kind: "string",
    value: "FILE",
    group: "General",
    commandLineOnly: true,
    help: "Read options from an INI file (keys are long option names); the command line wins.",
  },
  {
    name: "metrics-file",
    kind: "string",
    value: "PATH",
    group: "General",
    help: "After the run, good or failed, write Prometheus metrics to PATH (atomically), for " +
      "node_exporter's textfile collector.",
  },

  // AWS
  {
    name: "aws-access-key-id",
    legacy: true,
    kind: "string",
    value: "KEY",
    defaultText: "$AWS_ACCESS_KEY_ID",
    group: "AWS credentials and endpoint",
    help: "AWS access key id.",
  },
  {
    name: "aws-secret-access-key",
    legacy: true,
    kind: "string",
    value: "SECRET",
    defaultText: "$AWS_SECRET_ACCESS_KEY",
    secret: true,
    group: "AWS credentials and endpoint",
    help: "AWS secret access key (prefer a file: the command line is visible to other users).",
  },
  {
    name: "aws-access-key-id-file",
    legacy: true,
    kind: "string",
    value: "FILE",
    group: "AWS credentials and endpoint",
    help: "Read the access key id from FILE (needs --aws-secret-access-key-file).",
  },
  {
    name: "aws-secret-access-key-file",
    legacy: true,
    kind: "string",
    value: "FILE",
    group: "AWS credentials and endpoint",
    help: "Read the secret access key from FILE (needs --aws-access-key-id-file).",
  },
  {
    name: "aws-credentials-file",
    legacy: true,
    kind: "string",
    value: "FILE",
    defaultText: "$AWS_CREDENTIALS, then ~/.awssecret",
    group: "AWS credentials and endpoint",
    help: "Legacy two-line file: the access key id, then the secret access key.",
  },
  {
    name: "profile",
    kind: "string",
    value: "NAME",
    defaultText: "$AWS_PROFILE",
    group: "AWS credentials and endpoint",
    help: "Use this profile of the AWS shared config and credentials files.",
  },
  {
    name: "use-iam-role",
    legacy: true,
    kind: "flag",
    group: "AWS credentials and endpoint",
    help: "Use the instance's IAM role (IMDSv2) and nothing else.",
  },
  {
    name: "region",
    legacy: true,
    kind: "string",
    value: "REGION",
    defaultText: "$AWS_REGION, $AWS_DEFAULT_REGION, the profile, then the instance's region",
    group: "AWS credentials and endpoint",
    help: "AWS region of the volumes.",
  },
  {
    name: "signature-version",
    legacy: true,
    kind: "string",
    value: "V",
    defaultText: "4",
    group: "AWS credentials and endpoint",
    help: "Accepted for compatibility; only Signature Version 4 exists.",
  },
  {
    name: "ec2-endpoint",
    legacy: true,
    kind: "string",
    value: "URL",
    defaultText: "$AWS_ENDPOINT_URL_EC2, else AWS's",
    group: "AWS credentials and endpoint",
    help: "EC2 API endpoint (VPC endpoints, FIPS, tests).",
  },

  // Snapshots
  {
    name: "description",
    legacy: true,
    kind: "list",
    value: "TEXT",
    defaultText: "ec2-consistent-snapshot",
    group: "Snapshots",
    help: "Snapshot description: once for all volumes, or once per volume in order.",
  },
  {
    name: "tag",
    legacy: true,
    kind: "list",
    value: "K=V;K2=V2",
    group: "Snapshots",
    help: `Snapshot tags: once for all volumes, or once per volume in order; up to ${
      MAX_TAGS - OWN_TAGS
    } (with Name), as the tool sets ${OWN_TAGS} of EC2's ${MAX_TAGS} itself.`,
  },
  {
    name: "name",
    kind: "list",
    value: "NAME",
    group: "Snapshots",
    help: "Snapshot Name tag (the old tool's option): once for all, or once per volume in order.",
  },
  {
    name: "snapshot-timeout",
    legacy: true,
    kind: "seconds",
    value: "SECONDS",
    default: 10,
    positive: true,
    group: "Snapshots",
    help: "Abort the snapshot calls (and thaw) when they take longer than this.",
  },
  {
    name: "multi-volume",
    kind: "flag",
    group: "Snapshots",
    help: "Snapshot all volumes at one instant with one CreateSnapshots call.",
  },
  {
    name: "instance-id",
    kind: "string",
    value: "ID",
    defaultText: "this instance (metadata)",
    group: "Snapshots",
    help: "Instance whose volumes are snapshotted (discovery, --multi-volume).",
  },
  {
    name: "wait",
    kind: "optional-seconds",
    value: "SECONDS",
    defaultText: "no waiting; without SECONDS: 3600",
    bareValue: 3600,
    group: "Snapshots",
    help: "After releasing everything, wait for the snapshots to complete.",
  },
  {
    name: "copy-to-region",
    kind: "list",
    value: "REGION",
    group: "Snapshots",
    help: "Once complete, copy each snapshot to REGION.",
  },
  {
    name: "copy-kms-key-id",
    kind: "string",
    value: "KEY",
    group: "Snapshots",
    help: "KMS key for the copies.",
  },
  // Retention
  {
    name: "keep",
    kind: "count",
    value: "N",
    group: "Retention (after a successful run; only this tool's snapshots of its volumes)",
    help: "Keep the newest N snapshots of each volume, this run's included.",
  },
  {
    name: "keep-days",
    kind: "seconds",
    unit: "days",
    max: 36500,
    value: "DAYS",
    group: "Retention (after a successful run; only this tool's snapshots of its volumes)",
    help: "Keep the snapshots started less than DAYS days ago (DAYS at most 36500).",
  },
  ...(["hourly", "daily", "weekly", "monthly", "yearly"] as const).map((period) => ({
    name: `keep-${period}` as const,
    kind: "count" as const,
    value: "N",
    group: "Retention (after a successful run; only this tool's snapshots of its volumes)",
    help: `For each of the last N ${
      { hourly: "hours", daily: "days", weekly: "ISO weeks", monthly: "months", yearly: "years" }[
        period
      ]
    } that have snapshots, keep the newest (as restic forget --keep-${period}).`,
  })),
  {
    name: "retention-tz",
    kind: "string",
    value: "ZONE",
    defaultText: "UTC",
    group: "Retention (after a successful run; only this tool's snapshots of its volumes)",
    help: "Time zone of the hours, days, weeks, months and years, e.g. Europe/Berlin.",
  },

  // File systems
  {
    name: "freeze-filesystem",
    legacy: true,
    kind: "list",
    value: "MOUNT",
    aliases: ["xfs-filesystem"],
    group: "File systems",
    help: "Freeze this mount point while the snapshots are initiated.",
  },
  {
    name: "no-freeze-filesystem",
    legacy: true,
    kind: "list",
    value: "MOUNT",
    group: "File systems",
    help: "Use this mount point for volume discovery only; do not freeze it.",
  },
  {
    name: "pre-freeze-command",
    legacy: true,
    kind: "string",
    value: "CMD",
    group: "File systems",
    help: "Shell command to run before the freeze; failure aborts the run. Its output goes to " +
      "stderr.",
  },
  {
    name: "post-thaw-command",
    legacy: true,
    kind: "string",
    value: "CMD",
    group: "File systems",
    help: "Shell command to run after the thaw. Its output goes to stderr.",
  },
  {
    name: "hook-timeout",
    kind: "seconds",
    value: "SECONDS",
    default: 30,
    positive: true,
    group: "File systems",
    help: "Kill --pre-freeze-command or --post-thaw-command (and what it started) when it " +
      "runs longer than this: they run while the database is locked.",
  },

  // MySQL
  {
    name: "mysql",
    legacy: true,
    kind: "flag",
    group: "MySQL and MariaDB",
    help: "Flush and lock a running MySQL or MariaDB while the snapshots are initiated.",
  },
  {
    name: "mysql-defaults-file",
    legacy: true,
    kind: "string",
    value: "FILE",
    defaultText: "~/.my.cnf",
    group: "MySQL and MariaDB",
    help: "MySQL option file to read [client] and [mysql] settings from.",
  },
  {
    name: "mysql-host",
    legacy: true,
    kind: "string",
    value: "HOST",
    defaultText: "localhost",
    group: "MySQL and MariaDB",
    help: "Server host; localhost means the Unix socket.",
  },
  {
    name: "mysql-port",
    kind: "count",
    value: "PORT",
    defaultText: "3306",
    group: "MySQL and MariaDB",
    help: "Server TCP port.",
  },
  {
    name: "mysql-socket",
    legacy: true,
    kind: "string",
    value: "PATH",
    group: "MySQL and MariaDB",
    help: "Server Unix socket.",
  },
  {
    name: "mysql-username",
    legacy: true,
    kind: "string",
    value: "USER",
    defaultText: "the login name",
    group: "MySQL and MariaDB",
    help: "User name.",
  },
  {
    name: "mysql-password",
    legacy: true,
    kind: "string",
    value: "PASSWORD",
    secret: true,
    group: "MySQL and MariaDB",
    help: "Password (prefer the defaults file: the command line is visible to other users).",
  },
  {
    name: "mysql-master-status-file",
    legacy: true,
    kind: "string",
    value: "FILE",
    group: "MySQL and MariaDB",
    help: "Write the binary log coordinates to FILE while locked; removed after the thaw.",
  },
  {
    name: "mysql-lock-mode",
    kind: "string",
    value: "MODE",
    default: "flush",
    group: "MySQL and MariaDB",
    help: "flush (FLUSH TABLES WITH READ LOCK), percona, instance (MySQL 8), stage (MariaDB), " +
      "or replica (stop a replica's SQL thread instead; see the README).",
  },
  {
    name: "mysql-stop",
    legacy: true,
    kind: "flag",
    group: "MySQL and MariaDB",
    help: "Stop the server instead of locking it, and start it again afterwards.",
  },
  {
    name: "mysql-stop-command",
    kind: "string",
    value: "CMD",
    defaultText: "systemctl stop of the server's unit, else its init script",
    group: "MySQL and MariaDB",
    help: "Command that stops the server (with --mysql-stop).",
  },
  {
    name: "mysql-start-command",
    kind: "string",
    value: "CMD",
    defaultText: "systemctl start of the server's unit, else its init script",
    group: "MySQL and MariaDB",
    help: "Command that starts the server (with --mysql-stop).",
  },
  {
    name: "percona",
    legacy: true,
    kind: "flag",
    group: "MySQL and MariaDB",
    help: "Use Percona backup locks (LOCK TABLES FOR BACKUP); implies --mysql.",
  },
  {
    name: "lock-timeout",
    legacy: true,
    kind: "seconds",
    value: "SECONDS",
    default: 0.5,
    group: "MySQL and MariaDB",
    help: "Give up one try to take the lock after this long.",
  },
  {
    name: "lock-tries",
    legacy: true,
    kind: "count",
    value: "N",
    default: 60,
    group: "MySQL and MariaDB",
    help: "How many tries to take the lock.",
  },
  {
    name: "lock-sleep",
    legacy: true,
    kind: "seconds",
    value: "SECONDS",
    default: 5,
    group: "MySQL and MariaDB",
    help: "Sleep between tries to take the lock.",
  },

  // Hold mode
  {
    name: "hold",
    kind: "optional-seconds",
    value: "SECONDS",
    defaultText: "without SECONDS: 60; at least 5, at most 600",
    bareValue: 60,
    min: 5,
    max: 600,
    valueAfterSpace: true,
    commandLineOnly: true,
    group: "Hold mode (Data Lifecycle Manager and other orchestrators)",
    help:
      "Lock the database and freeze, keep it held in a detached process and exit; no snapshot. " +
      "Released by --release, or at the deadline.",
  },
  {
    name: "hold-within",
    kind: "seconds",
    value: "SECONDS",
    defaultText: "none: the lock's tries and sleeps bound it",
    positive: true,
    commandLineOnly: true,
    group: "Hold mode (Data Lifecycle Manager and other orchestrators)",
    help: "With --hold: give up, with everything released (exit 5), unless everything is held " +
      "within SECONDS of the holder's start, lock tries and sleeps included. For DLM: less than " +
      "the policy's ExecutionTimeout.",
  },
  {
    name: "release",
    kind: "flag",
    commandLineOnly: true,
    group: "Hold mode (Data Lifecycle Manager and other orchestrators)",
    help: "Release what --hold holds (thaw, post-thaw command, unlock or start the database) and " +
      "print the freeze and lock windows.",
  },

  // Restore drill
  {
    name: "restore-drill",
    kind: "string",
    value: "RUN_ID|SNAPSHOT_ID|latest",
    commandLineOnly: true,
    group: "Restore drill",
    help: "Restore a run's snapshots to new volumes on this instance, start a throwaway database " +
      "on them in a private mount namespace, check it reached the recorded position, then " +
      "delete everything. A run id, a snapshot id (its run), or latest (the newest complete run " +
      "of the volume ids given).",
  },
  {
    name: "drill-check-command",
    kind: "string",
    value: "COMMAND",
    group: "Restore drill",
    help: "Your own check of the restored database, run with sh -c; $MYSQL_UNIX_PORT (MySQL) or " +
      "$PGHOST, $PGPORT and $PGUSER (PostgreSQL) name the throwaway server. Non-zero fails the drill.",
  },
  {
    name: "drill-timeout",
    kind: "seconds",
    value: "SECONDS",
    default: 1800,
    positive: true,
    group: "Restore drill",
    help: "Bound of each wait of the drill (snapshots completing, volumes available and " +
      "attached, crash recovery, your check); everything is removed after it.",
  },

  // PostgreSQL
  {
    name: "postgresql",
    kind: "flag",
    group: "PostgreSQL",
    help: "CHECKPOINT a running PostgreSQL before the freeze and report its WAL position.",
  },
  {
    name: "postgresql-host",
    kind: "string",
    value: "HOST",
    defaultText: "$PGHOST, else the socket in /var/run/postgresql",
    group: "PostgreSQL",
    help: "Server host, or the directory of its Unix socket (a path).",
  },
  {
    name: "postgresql-port",
    kind: "count",
    value: "PORT",
    defaultText: "$PGPORT, else 5432",
    group: "PostgreSQL",
    help: "Server port (also names the socket file).",
  },
  {
    name: "postgresql-username",
    kind: "string",
    value: "USER",
    defaultText: "$PGUSER, else the login name",
    group: "PostgreSQL",
    help: "User name; needs pg_checkpoint (15+) or superuser. Password: $PGPASSWORD or ~/.pgpass.",
  },
  {
    name: "postgresql-dbname",
    kind: "string",
    value: "DB",
    defaultText: "$PGDATABASE, else the user name",
    group: "PostgreSQL",
    help: "Database to connect to. $PGSERVICE names a service of pg_service.conf.",
  },

  // MongoDB
  {
    name: "mongo",
    legacy: true,
    kind: "flag",
    group: "MongoDB (not supported: freeze the file system of its data and journal instead)",
    help: "Not supported (refused): fsyncLock a running MongoDB.",
  },
  {
    name: "mongo-host",
    legacy: true,
    kind: "string",
    value: "HOST",
    defaultText: "localhost",
    group: "MongoDB (not supported: freeze the file system of its data and journal instead)",
    help: "Not supported (ignored): MongoDB host.",
  },
  {
    name: "mongo-port",
    legacy: true,
    kind: "count",
    value: "PORT",
    defaultText: "27017",
    group: "MongoDB (not supported: freeze the file system of its data and journal instead)",
    help: "Not supported (ignored): MongoDB port.",
  },
  {
    name: "mongo-username",
    legacy: true,
    kind: "string",
    value: "USER",
    group: "MongoDB (not supported: freeze the file system of its data and journal instead)",
    help: "Not supported (ignored): MongoDB user name.",
  },
  {
    name: "mongo-password",
    legacy: true,
    kind: "string",
    value: "PASSWORD",
    secret: true,
    group: "MongoDB (not supported: freeze the file system of its data and journal instead)",
    help: "Not supported (ignored): MongoDB password.",
  },
  {
    name: "mongo-stop",
    legacy: true,
    kind: "flag",
    group: "MongoDB (not supported: freeze the file system of its data and journal instead)",
    help: "Not supported (refused): stop MongoDB through its init script.",
  },
  {
    name: "mongo-init",
    legacy: true,
    kind: "string",
    value: "PATH",
    defaultText: "/etc/init.d/mongodb",
    group: "MongoDB (not supported: freeze the file system of its data and journal instead)",
    help: "Not supported (ignored): MongoDB init script (with --mongo-stop).",
  },
  {
    name: "mongo-timeout",
    legacy: true,
    kind: "seconds",
    value: "SECONDS",
    default: 10,
    group: "MongoDB (not supported: freeze the file system of its data and journal instead)",
    help: "Not supported (ignored): MongoDB lock timeout.",
  },
] as const satisfies readonly OptionSpec[];

/** One entry of {@linkcode OPTION_TABLE}, with its literal types. */
export type OptionTableEntry = (typeof OPTION_TABLE)[number];

/** A long option name as a property name: `snapshot-timeout` -> `snapshotTimeout`. */
export type CamelCase<S extends string> = S extends `${infer Head}-${infer Tail}`
  ? `${Head}${Capitalize<CamelCase<Tail>>}`
  : S;

/** The type of an option's value, from its kind and whether it has a default. */
export type OptionValue<S extends OptionTableEntry> = S["kind"] extends "flag" ? boolean
  : S["kind"] extends "list" ? string[]
  : S["kind"] extends "seconds" | "count" ? S extends { default: number } ? number
    : number | undefined
  : S["kind"] extends "optional-seconds" ? number | undefined
  : S extends { default: string } ? string
  : string | undefined;

/**
 * Every option, by its camel-cased long name, with defaults applied.
 *
 * @example
 * ```ts
 * import { parseCommandLine } from "../cli/parse.ts";
 * const options: Options = parseCommandLine(["--snapshot-timeout", "20", "vol-1"]).options;
 * options.snapshotTimeout; // 20 (a number; 10 when not given)
 * options.description; // [] (a list)
 * options.region; // undefined (no default)
 * ```
 */
export type Options = {
  [S in OptionTableEntry as CamelCase<S["name"]>]: OptionValue<S>;
};

/** What the command line (and configuration file) says. */
export interface ParsedArgs {
  /** Every option, defaults applied. */
  options: Options;
  /** Volume ids, in the order given. */
  volumeIds: string[];
  /** Long names of the options given explicitly (not defaults), in the order first seen. */
  given: Set<string>;
  /** Those of `given` whose values came from the --config file, not the command line. */
  fromConfigFile?: ReadonlySet<string>;
}

/**
 * The camel-cased key of a long option name.
 *
 * @example
 * ```ts
 * optionKey("snapshot-timeout"); // "snapshotTimeout"
 * ```
 */
export function optionKey(name: string): keyof Options {
  return name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase()) as keyof Options;
}

/**
 * The spec of a long name or alias, or undefined.
 *
 * @example
 * ```ts
 * findOption("xfs-filesystem")?.name; // "freeze-filesystem" (an alias)
 * ```
 */
export function findOption(name: string): OptionSpec | undefined {
  return (OPTION_TABLE as readonly OptionSpec[]).find((spec) =>
    spec.name === name || spec.aliases?.includes(name)
  );
}

/** Default for `--wait` given without SECONDS. */
export const DEFAULT_WAIT_SECONDS = 3600;

/** The options with every default applied and nothing given. */
export function defaultOptions(): Options {
  const out: Record<string, unknown> = {};
  for (const spec of OPTION_TABLE as readonly OptionSpec[]) {
    const key = optionKey(spec.name);
    if (spec.kind === "flag") out[key] = false;
    else if (spec.kind === "list") out[key] = [];
    else out[key] = spec.default;
  }
  return out as Options;
}
