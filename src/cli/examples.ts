/** The EXAMPLES of `--help` and the man page: one list, so the two never disagree. */

/** One example: what it does, and the command line (shell syntax, one line). */
export interface Example {
  /** One sentence: what the command does. */
  readonly what: string;
  /** The command, as typed in a shell or a cron line (after the time fields and the user). */
  readonly command: string;
}

/**
 * The examples, in the order shown. Every command parses (a test runs each through the parser).
 *
 * @example
 * ```ts
 * for (const { what, command } of EXAMPLES) console.log(`${what}\n  ${command}`);
 * ```
 */
export const EXAMPLES: readonly Example[] = [
  {
    what: "Daily from /etc/cron.d: MySQL flushed and locked, its file system frozen, the " +
      "volumes found from the mount point, quiet unless it fails (packaging/cron.example).",
    command: "17 3 * * * root ec2-consistent-snapshot --freeze-filesystem /var/lib/mysql " +
      "--mysql --mysql-defaults-file /root/.my.cnf --quiet",
  },
  {
    what: "PostgreSQL: a CHECKPOINT before the freeze; the WAL position at the freeze is " +
      "printed.",
    command: "ec2-consistent-snapshot --postgresql --freeze-filesystem /var/lib/postgresql",
  },
  {
    what: "Several volumes (a RAID or LVM set) at one instant, a description and tags for each " +
      "run.",
    command: "ec2-consistent-snapshot --freeze-filesystem /data --multi-volume " +
      "--description nightly --tag 'Backup=daily;Team=db'",
  },
  {
    what: "Named volume ids, and retention: keep 7 daily and 4 weekly snapshots of each " +
      "(only the tool's own).",
    command: "ec2-consistent-snapshot --region eu-west-1 --keep-daily 7 --keep-weekly 4 " +
      "vol-0123456789abcdef0 vol-0fedcba9876543210",
  },
  {
    what: "Hold for Data Lifecycle Manager (its pre script; the post script runs " +
      "--release); packaging/ssm-document-dlm.json does this.",
    command: "ec2-consistent-snapshot --config /etc/ec2-consistent-snapshot.conf " +
      "--hold 60 --hold-within 8",
  },
  {
    what: "The restore drill: restore the newest run of these volumes on this instance, check " +
      "that the database starts at the recorded position, then delete everything.",
    command: "ec2-consistent-snapshot --restore-drill latest vol-0123456789abcdef0",
  },
  {
    what: "The plan, with nothing locked, frozen or created.",
    command: "ec2-consistent-snapshot --noaction --freeze-filesystem /var/lib/mysql --mysql",
  },
];
