/**
 * The drill as its own process, for signal tests: `drill_entry.ts SYSROOT DEVROOT ARGS...` runs
 * the command layer's drill with the test's sysfs fixture and device directory, exactly as
 * main.ts runs it otherwise, and exits with its code.
 */
import { drillCommand } from "../../src/cli/drill_command.ts";
import { parseCommandLine } from "../../src/cli/parse.ts";
import { createLogger } from "../../src/util/log.ts";

const [sysRoot, devRoot, ...argv] = Deno.args;
const code = await drillCommand({
  args: parseCommandLine(argv),
  env: Deno.env.toObject(),
  home: Deno.env.get("HOME"),
  log: createLogger(),
  write: (text) => Deno.stdout.writeSync(new TextEncoder().encode(text)),
  say: (line) => Deno.stderr.writeSync(new TextEncoder().encode(`${line}\n`)),
  sysRoot,
  devRoot,
});
Deno.exit(code);
