/** The man page: made from the option table, complete, and rendered by groff without warnings. */
import { assert, assertEquals } from "./support/assert.ts";
import { ExitCode } from "../src/util/errors.ts";
import { EXIT_CODE_HELP, manPage } from "../src/cli/manpage.ts";
import { helpText } from "../src/cli/help.ts";
import { EXAMPLES } from "../src/cli/examples.ts";
import { parseCommandLine } from "../src/cli/parse.ts";
import { OPTION_TABLE, type OptionSpec } from "../src/types/options.ts";
import { ignoreUnless, requireAvailable } from "./support/real.ts";
import { commandRequirement, runCommand } from "./support/tools.ts";

const GROFF = await commandRequirement("groff", "groff-base");

const SPECS = OPTION_TABLE as readonly OptionSpec[];
const ROOT = new URL("..", import.meta.url).pathname;

/** Rendered text with ASCII hyphens (newer groff prints \\- as a minus sign). */
function plain(text: string): string {
  return text.replace(/[\u2010\u2011\u2212]/g, "-");
}

/** `-h, -?`: an option's one-character names as --help and the page list them. */
function shorts(spec: OptionSpec): string {
  return [spec.short, ...(spec.shortAliases ?? [])].map((c) => `-${c}`).join(", ");
}

async function render(page: string, width = 200): Promise<{ text: string; warnings: string }> {
  requireAvailable(GROFF);
  const file = await Deno.makeTempFile({ suffix: ".1" });
  try {
    await Deno.writeTextFile(file, page);
    const result = await runCommand(
      GROFF.path!,
      ["-man", "-Tutf8", "-ww", `-rLL=${width}n`, "-P-cbou", file],
      {
        env: { LC_ALL: "C.UTF-8" },
      },
    );
    assertEquals(result.code, 0, result.stderr);
    return { text: plain(result.stdout), warnings: result.stderr };
  } finally {
    await Deno.remove(file);
  }
}

Deno.test("every exit code has exactly one line of help", () => {
  assertEquals(
    Object.keys(EXIT_CODE_HELP).map(Number).sort((a, b) => a - b),
    Object.values(ExitCode).sort((a, b) => a - b),
  );
  for (const help of Object.values(EXIT_CODE_HELP)) {
    assert(help.length > 0 && !help.includes("\n"));
  }
});

Deno.test("every option's names appear in --help and in the man page source", () => {
  const help = helpText("1.2.3");
  const page = manPage({ version: "1.2.3" });
  for (const spec of SPECS) {
    for (const name of [spec.name, ...(spec.aliases ?? [])]) {
      assert(help.includes(`--${name}`), `--help lacks --${name}`);
      assert(page.includes(`\\-\\-${name.replaceAll("-", "\\-")}\\fR`), `man page lacks --${name}`);
    }
    if (spec.short) {
      assert(help.includes(`${shorts(spec)}, --${spec.name}`), `--help lacks -${spec.short}`);
      assert(page.includes(`\\fB\\-${spec.short}\\fR`), `man page lacks -${spec.short}`);
    }
    // Wrapped to 80 columns: compared with the line breaks as spaces.
    assert(
      help.replace(/\s+/g, " ").includes(spec.help.replace(/\s+/g, " ")),
      `--help lacks the help of --${spec.name}`,
    );
  }
  for (const line of help.split("\n")) assert(line.length <= 80, `--help line over 80: ${line}`);
  assert(help.includes("-V, --version"), "-V is --version");
  assert(/man ec2-consistent-snapshot/.test(help), "--help points to the man page");
});

Deno.test("the man page renders without warnings and shows every option and exit code", {
  ignore: ignoreUnless(GROFF),
}, async () => {
  const rendered = await render(manPage({ version: "1.2.3", date: "2024-01-02" }));
  assertEquals(rendered.warnings, "", "groff -ww warned");
  const text = rendered.text;
  const squashed = text.replace(/\s+/g, " ");
  for (const spec of SPECS) {
    for (const name of [spec.name, ...(spec.aliases ?? [])]) {
      assert(new RegExp(`--${name}\\b`).test(text), `rendered page lacks --${name}`);
    }
    if (spec.short) assert(text.includes(`${shorts(spec)}, --${spec.name}`));
    // The help text itself, modulo line breaks and hyphenation.
    const words = spec.help.split(/\s+/).slice(0, 3).join(" ");
    assert(squashed.includes(words), `rendered page lacks the help of --${spec.name}`);
  }
  for (const section of ["NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "EXIT STATUS", "FILES"]) {
    assert(new RegExp(`^${section}$`, "m").test(text), `no ${section} section`);
  }
  const exitStatus = text.slice(text.indexOf("EXIT STATUS"), text.indexOf("ENVIRONMENT"));
  for (const code of Object.values(ExitCode)) {
    assert(new RegExp(`^\\s+${code}\\s`, "m").test(exitStatus), `EXIT STATUS lacks ${code}`);
  }
  assert(text.includes("ec2-consistent-snapshot 1.2.3"));
  assert(text.includes("2024-01-02"));
});

Deno.test("every control line of the page is a known man macro", () => {
  const page = manPage({ version: "1" });
  for (const line of page.split("\n")) {
    if (line.startsWith(".")) {
      assert(/^\.(\\"|TH|SH|SS|TP|PP|B|I|BR)( |$)/.test(line), `stray request: ${line}`);
    }
  }
});

Deno.test("scripts/manpage.ts writes the page with the version and SOURCE_DATE_EPOCH date", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const output = `${dir}/sub/ec2-consistent-snapshot.1`;
    const result = await runCommand(Deno.execPath(), [
      "run",
      "--allow-write",
      "--allow-env",
      `${ROOT}scripts/manpage.ts`,
      output,
    ], { env: { ECS_VERSION: "9.8.7", SOURCE_DATE_EPOCH: "1700000000" } });
    assertEquals(result.code, 0, result.stderr);
    const page = await Deno.readTextFile(output);
    assert(page.includes('"2023-11-14" "ec2\\-consistent\\-snapshot 9.8.7"'), page.slice(0, 300));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** The words of an example's command, as a shell splits them (single quotes only). */
function exampleArgv(command: string): string[] {
  const words = [...command.matchAll(/'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2]);
  return words.slice(words.indexOf("ec2-consistent-snapshot") + 1);
}

Deno.test("the examples parse, and --help and the man page show every one", async () => {
  assert(EXAMPLES.length >= 5);
  const help = helpText("1.2.3");
  const flat = (text: string) => text.replace(/ \\\n\s*/g, " ").replace(/\s+/g, " ");
  for (const { command } of EXAMPLES) {
    parseCommandLine(exampleArgv(command)); // throws on an option that does not exist
    assert(flat(help).includes(command), `--help lacks: ${command}`);
  }
  const wanted = [
    "--postgresql",
    "--hold",
    "--keep-daily",
    "--multi-volume",
    "root ",
    "--restore-drill",
  ];
  for (const want of wanted) {
    assert(EXAMPLES.some((e) => e.command.includes(want)), `no example with ${want}`);
  }
  for (const line of help.split("\n")) assert(line.length <= 80, `--help line over 80: ${line}`);
  if (GROFF.available) {
    const text = (await render(manPage({ version: "1.2.3" }))).text;
    const examples = text.slice(text.indexOf("EXAMPLES"), text.indexOf("CONFIGURATION FILE"));
    for (const { command } of EXAMPLES) {
      assert(flat(examples).includes(command), `the man page lacks: ${command}`);
    }
  }
});

Deno.test("the man page's description names PostgreSQL, and MongoDB no more", () => {
  const page = manPage({ version: "1" });
  const description = page.slice(page.indexOf(".SH DESCRIPTION"), page.indexOf(".SH OPTIONS"));
  assert(description.includes("PostgreSQL"));
  assert(!description.includes("MongoDB"), "MongoDB is not supported");
});

Deno.test("the footer keeps the version and the date apart, even for a long version", {
  ignore: ignoreUnless(GROFF),
}, async () => {
  for (const version of ["1.2.3", "0.9.0-12-g1234abc-dirty"]) {
    const { text } = await render(manPage({ version, date: "2024-01-02" }), 80);
    const footer = text.trimEnd().split("\n").at(-1)!;
    assert(
      new RegExp(`${version.replaceAll(".", "\\.")}\\s{2,}2024-01-02\\s{2,}EC2-`).test(footer),
      footer,
    );
  }
});
