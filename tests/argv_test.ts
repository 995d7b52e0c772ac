/** The command line's words before node's parser: negative values, and `--wait 600`. */
import { assert, assertEquals } from "./support/assert.ts";
import { prepareArgs } from "../src/cli/argv.ts";
import { OPTION_TABLE, type OptionSpec } from "../src/types/options.ts";
import { UsageError } from "../src/util/errors.ts";

const SPECS = OPTION_TABLE as readonly OptionSpec[];

Deno.test("a negative number after an option is its value; --wait alone is the default", () => {
  assertEquals(prepareArgs(["--keep", "-1", "vol-1"], SPECS), ["--keep=-1", "vol-1"]);
  assertEquals(prepareArgs(["--lock-timeout", "-.5"], SPECS), ["--lock-timeout=-.5"]);
  assertEquals(prepareArgs(["--wait", "vol-1"], SPECS), ["--wait=", "vol-1"]);
  assertEquals(prepareArgs(["--wait=600", "-d"], SPECS), ["--wait=600", "-d"]);
  // A flag followed by a negative-looking word is left to the parser; so is everything after --.
  assertEquals(prepareArgs(["--debug", "-1"], SPECS), ["--debug", "-1"]);
  assertEquals(prepareArgs(["--", "--keep", "-1"], SPECS), ["--", "--keep", "-1"]);
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
