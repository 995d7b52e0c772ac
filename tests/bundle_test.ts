/**
 * The bundle that ships (scripts/bundle.ts): only the EC2 operations the program calls, chunks
 * that deno run does not read before they are needed, and the two source mistakes that would undo
 * that refused with a message that says why.
 */
import { assert, assertEquals } from "./support/assert.ts";
import { MAIN, ROOT } from "./support/program.ts";
import { runCommand } from "./support/tools.ts";
import { packageName, unprefetched } from "../scripts/bundle.ts";

const bundleDir = MAIN.slice(0, MAIN.lastIndexOf("/"));

function bundleFiles(): { name: string; text: string }[] {
  return [...Deno.readDirSync(bundleDir)]
    .filter((e) => e.isFile && e.name.endsWith(".js"))
    .map((e) => ({ name: e.name, text: Deno.readTextFileSync(`${bundleDir}/${e.name}`) }));
}

Deno.test("the bundle holds the EC2 operations the program calls, not the SDK's others", () => {
  const all = bundleFiles().map((f) => f.text).join("\n");
  for (const used of ["CreateSnapshotCommand", "DescribeSnapshotsCommand", "CopySnapshotCommand"]) {
    assert(all.includes(used), `${used} is missing from the bundle`);
  }
  // Operations (and their schemas) that nothing here calls.
  for (const unused of ["RunInstancesCommand", "AcceptAddressTransfer", "ModifyVpcEndpoint"]) {
    assertEquals(all.includes(unused), false, `${unused} is in the bundle`);
  }
});

Deno.test("no chunk is a literal import(): deno run would read and parse them all at start", () => {
  for (const file of bundleFiles()) {
    assertEquals(/\bimport\("\.\/chunk-/.test(file.text), false, file.name);
  }
  assertEquals(
    unprefetched('await import("./chunk-AB12.js")'),
    'await import(String("./chunk-AB12.js"))',
  );
  assertEquals(unprefetched('import("node:http")'), 'import("node:http")');
});

Deno.test("packageName: scoped and plain, with and without a subpath", () => {
  assertEquals(packageName("@aws-sdk/core/client"), "@aws-sdk/core");
  assertEquals(packageName("mysql2/promise"), "mysql2");
  assertEquals(packageName("pg"), "pg");
});

/** Bundles a one-file tree whose src/main.ts is `source`; returns the bundler's result. */
async function bundleOf(source: string) {
  const dir = await Deno.makeTempDir({ prefix: "ecs-bundle-test-" });
  try {
    await Deno.mkdir(`${dir}/src`);
    await Deno.writeTextFile(`${dir}/src/main.ts`, source);
    await Deno.copyFile(`${ROOT}deno.json`, `${dir}/deno.json`);
    await Deno.copyFile(`${ROOT}deno.lock`, `${dir}/deno.lock`);
    return await runCommand(Deno.execPath(), [
      "run",
      "--allow-all",
      `${ROOT}scripts/bundle.ts`,
      "--root",
      dir,
      "--out",
      `${dir}/out`,
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("import() of an SDK client from src/ is refused: it would keep every operation", async () => {
  const result = await bundleOf(
    'const { EC2Client } = await import("@aws-sdk/client-ec2");\nconsole.log(EC2Client);\n',
  );
  assert(result.code !== 0, result.stderr);
  assert(result.stderr.includes('import("@aws-sdk/client-ec2")'), result.stderr);
  assert(result.stderr.includes("import the names statically"), result.stderr);
});

Deno.test("a bare import that deno.json does not map is refused, as deno would", async () => {
  const result = await bundleOf('import leftPad from "left-pad";\nconsole.log(leftPad);\n');
  assert(result.code !== 0, result.stderr);
  assert(result.stderr.includes(`"left-pad" is not in deno.json's imports`), result.stderr);
});
