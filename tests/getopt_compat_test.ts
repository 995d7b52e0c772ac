/**
 * The old tool's command lines read side by side by Perl's Getopt::Long (with the old tool's
 * settings and its options, taken from the option table's `legacy` marks) and by this parser:
 * the same options with the same values, the same volume ids, and a refusal where it refused.
 */
import { assert, assertEquals } from "./support/assert.ts";
import { prepareArgs } from "../src/cli/argv.ts";
import { parseCommandLine } from "../src/cli/parse.ts";
import { OPTION_TABLE, type OptionSpec } from "../src/types/options.ts";
import { which } from "./support/tools.ts";
import { ignoreUnless, requireAvailable, type Requirement } from "./support/real.ts";

const SPECS = OPTION_TABLE as readonly OptionSpec[];
const PERL: Requirement = {
  available: (await which("perl")) !== undefined,
  reason: "perl (Debian's perl-base, with Getopt::Long) not found",
};

/** The old tool's GetOptions specification, made from the table: `help|h|?`, `region=s`, ... */
function oldSpecification(): string[] {
  return SPECS.filter((spec) => spec.legacy).map((spec) => {
    const names = [
      spec.name,
      ...(spec.aliases ?? []),
      ...(spec.short ? [spec.short] : []),
      ...(spec.shortAliases ?? []),
    ].join("|");
    return spec.kind === "flag" ? names : `${names}=s`;
  });
}

/** Getopt::Long as the old tool called it; prints one `name=value` line per option, then `@ id`. */
const PERL_SCRIPT = `
use strict; use warnings; use Getopt::Long;
Getopt::Long::config('no_ignore_case');
my @seen;
my %handlers = map { my $spec = $_; ($spec => sub { push @seen, "$_[0]=" . ($_[1] // '') }) }
  split /\\n/, $ENV{SPECIFICATION};
GetOptions(%handlers) or exit 2;
print "$_\\n" for @seen;
print "\\@ $_\\n" for @ARGV;
`;

interface Reading {
  ok: boolean;
  options: string[];
  operands: string[];
}

async function perlReads(argv: readonly string[]): Promise<Reading> {
  const out = await new Deno.Command("perl", {
    args: ["-e", PERL_SCRIPT, "--", ...argv],
    env: { SPECIFICATION: oldSpecification().join("\n") },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const lines = new TextDecoder().decode(out.stdout).split("\n").filter(Boolean);
  return {
    ok: out.code === 0,
    options: out.code === 0 ? lines.filter((l) => !l.startsWith("@ ")) : [],
    operands: out.code === 0 ? lines.filter((l) => l.startsWith("@ ")).map((l) => l.slice(2)) : [],
  };
}

function weRead(argv: readonly string[]): Reading {
  try {
    parseCommandLine(argv); // refuses what node's parser refuses (a value given to a flag)
    const words = prepareArgs(argv, SPECS);
    const end = words.indexOf("--");
    const options = (end < 0 ? words : words.slice(0, end)).filter((w) => w.startsWith("--"))
      .map((w) => {
        const [name, ...value] = w.slice(2).split("=");
        // Getopt::Long hands a flag's handler 1.
        return `${name}=${value.length > 0 ? value.join("=") : "1"}`;
      });
    const operands = [
      ...(end < 0 ? words : words.slice(0, end)).filter((w) => !w.startsWith("--")),
      ...(end < 0 ? [] : words.slice(end + 1)),
    ];
    return { ok: true, options, operands };
  } catch {
    return { ok: false, options: [], operands: [] };
  }
}

/** Command lines of the old tool's users: its spellings, and its mistakes. */
const LINES: string[][] = [
  ["-region", "eu-west-1", "-description", "nightly", "-quiet", "vol-0123abcd"],
  ["-desc", "nightly", "vol-0123abcd"],
  ["--desc=nightly", "-desc=two", "vol-1", "vol-2"],
  ["-?"],
  ["--h"],
  ["-h"],
  ["-r", "us-west-2", "vol-1"],
  ["--reg", "us-west-2", "vol-1"],
  ["+region", "us-west-2", "vol-1"],
  ["--xfs", "/data", "--freeze-filesystem", "/logs", "vol-1"],
  ["-xfs-filesystem", "/data", "-fre", "/logs"],
  ["--no-freeze", "/var", "--noaction"],
  ["--noac", "vol-1"],
  ["-n", "-d", "vol-1", "-q"],
  ["--mysql", "--mysql-socket", "/run/mysqld/mysqld.sock", "--mysql-username", "root"],
  ["--mysql-u", "root", "--mysql-p", "pw", "--mysql-ho", "db"],
  ["--percona", "--mysql-master", "/data/master.txt", "vol-1"],
  ["--description", "-x", "vol-1"],
  ["--description", "--region", "vol-1"],
  ["--tag", "a=b;c=d", "--tag=e=f", "vol-1", "vol-2"],
  ["--snapshot-timeout", "20", "--lock-timeout", "1", "--lock-tries", "3", "--lock-sleep", "2"],
  ["--pre-freeze-command", "/bin/true", "--post", "/bin/true"],
  ["--aws-access-key-id-file", "/k", "--aws-secret-access-key-file", "/s"],
  ["--aws-cred", "/root/.awssecret", "--use-iam", "--ec2", "https://ec2.example"],
  ["--signature", "4", "vol-1"],
  ["--mongo", "--mongo-host", "h", "--mongo-port", "1", "--mongo-stop", "--mongo-init", "/x"],
  ["-region=eu", "--", "--desc", "-x"],
  ["vol-1", "--region", "eu", "vol-2"],
  ["--desc", "", "vol-1"],
  // Refused by both.
  ["-s", "5"],
  ["--no", "x"],
  ["--lock-t", "5"],
  ["--mysql-s", "x"],
  ["--description"],
  ["--quiet=1"],
  ["--Region", "x"],
  ["-dq"],
  ["--bogus"],
  ["--mongo-t", "5"],
  ["--description=", "vol-1"],
  ["--tag=", "vol-1"],
  ["-region=", "vol-1"],
];

Deno.test({
  name: "the old tool's command lines mean the same here as in Getopt::Long",
  ignore: ignoreUnless(PERL),
}, async () => {
  requireAvailable(PERL);
  for (const argv of LINES) {
    const theirs = await perlReads(argv);
    const ours = weRead(argv);
    if (argv[0] === "-dq") {
      // The one difference: Getopt::Long (without bundling) refuses -dq; node's parser
      // accepts the bundle of -d and -q, which refuses nothing the old tool accepted.
      assertEquals([theirs.ok, ours.ok], [false, true]);
      continue;
    }
    assertEquals(ours, theirs, argv.join(" "));
    if (theirs.ok && argv.some((a) => /^[-+][a-z?]/.test(a))) assert(theirs.options.length > 0);
  }
  assert(LINES.length > 30);
});
