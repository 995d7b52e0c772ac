/**
 * The command line's words before node's parser: the old tool's Getopt::Long spellings (single
 * dash, abbreviations, `-?`, `+`, values that look like options, `--`), and `--wait 600`.
 */
import { assert, assertEquals, assertThrows } from "./support/assert.ts";
import { prepareArgs } from "../src/cli/argv.ts";
import { OPTION_TABLE, type OptionSpec } from "../src/types/options.ts";
import { UsageError } from "../src/util/errors.ts";

const SPECS = OPTION_TABLE as readonly OptionSpec[];

Deno.test("a negative number after an option is its value; --wait alone is the default", () => {
  assertEquals(prepareArgs(["--keep", "-1", "vol-1"], SPECS), ["--keep=-1", "vol-1"]);
  assertEquals(prepareArgs(["--lock-timeout", "-.5"], SPECS), ["--lock-timeout=-.5"]);
  assertEquals(prepareArgs(["--wait", "vol-1"], SPECS), ["--wait=", "vol-1"]);
  assertEquals(prepareArgs(["--wait=600", "-d"], SPECS), ["--wait=600", "--debug"]);
  // After a flag, a negative-looking word is an option (unknown); after --, a volume id.
  assertThrows(() => prepareArgs(["--debug", "-1"], SPECS), UsageError, "unknown option -1");
  assertEquals(prepareArgs(["--", "--keep", "-1"], SPECS), ["--", "--keep", "-1"]);
});

Deno.test("Getopt::Long's spellings: one dash, abbreviations, -?, +, = and --", () => {
  assertEquals(prepareArgs(["-region", "eu-west-1", "-quiet", "vol-1"], SPECS), [
    "--region=eu-west-1",
    "--quiet",
    "vol-1",
  ]);
  assertEquals(prepareArgs(["-desc", "nightly", "--desc=x", "-desc=y"], SPECS), [
    "--description=nightly",
    "--description=x",
    "--description=y",
  ]);
  assertEquals(prepareArgs(["-?"], SPECS), ["--help"]);
  assertEquals(prepareArgs(["--h", "-h"], SPECS), ["--help", "--help"]);
  assertEquals(prepareArgs(["+region", "x"], SPECS), ["--region=x"]);
  assertEquals(prepareArgs(["--xfs", "/a", "-fre", "/b"], SPECS), [
    "--freeze-filesystem=/a",
    "--freeze-filesystem=/b",
  ]);
  // A value is the next word, whatever it looks like, as in Getopt::Long.
  assertEquals(prepareArgs(["--description", "-x", "--tag", "--region"], SPECS), [
    "--description=-x",
    "--tag=--region",
  ]);
  assertEquals(prepareArgs(["-region=eu", "--", "--desc", "-x"], SPECS), [
    "--region=eu",
    "--",
    "--desc",
    "-x",
  ]);
  // The short options that existed keep their meaning; bundles are node's to split.
  assertEquals(prepareArgs(["-d", "-q", "-n", "-V", "-dq"], SPECS), [
    "--debug",
    "--quiet",
    "--noaction",
    "--version",
    "-dq",
  ]);
});

Deno.test("an abbreviation means what it meant in the old tool; an ambiguous one is refused", () => {
  // Unique among the old tool's options, though --release and --retention-tz came later.
  assertEquals(prepareArgs(["-r", "eu-west-1"], SPECS), ["--region=eu-west-1"]);
  assertEquals(prepareArgs(["--noac"], SPECS), ["--noaction"]);
  // Ambiguous there too: refused, naming the candidates.
  assertThrows(() => prepareArgs(["-s", "5"], SPECS), UsageError, "--signature-version");
  assertThrows(
    () => prepareArgs(["--lock-t", "5"], SPECS),
    UsageError,
    "option --lock-t is ambiguous: --lock-timeout, --lock-tries",
  );
  assertThrows(() => prepareArgs(["--mysql-s", "x"], SPECS), UsageError, "--mysql-socket");
  assertThrows(() => prepareArgs(["-Region", "x"], SPECS), UsageError, "unknown option -Region");
  assertThrows(() => prepareArgs(["--description"], SPECS), UsageError, "needs a value");
});

Deno.test("--wait 600 is refused with the spelling that works", () => {
  for (const value of ["600", "1.5", ".5"]) {
    try {
      prepareArgs(["--wait", value, "vol-1"], SPECS);
      throw new Error("accepted");
    } catch (error) {
      assert(error instanceof UsageError, String(error));
      assert(error.message.includes(`write --wait=${value}`), error.message);
    }
  }
});
