/**
 * Start-up stays light: the modules loaded for `--help`, `--version` and `--noaction` (the
 * static import graph of src/cli/main.ts) reach neither the AWS SDK nor a database driver; those
 * are imported dynamically on the paths that use them. No timings are asserted.
 */
import { assertEquals } from "./support/assert.ts";

const SRC = new URL("../src/", import.meta.url);

/** The specifiers a module imports statically at run time (`import type` does not count). */
export function staticImports(source: string): string[] {
  const found: string[] = [];
  const pattern = /^(?:import|export)\s+(?!type\b)([^;]*?)\s+from\s+"([^"]+)"/gms;
  for (const match of source.matchAll(pattern)) {
    // `import { type A, type B } from` loads nothing at run time either.
    const names = match[1].replace(/[{}\s]/g, "").split(",").filter((n) => n !== "");
    if (names.length > 0 && names.every((n) => n.startsWith("type"))) continue;
    found.push(match[2]);
  }
  for (const match of source.matchAll(/^import\s+"([^"]+)"/gm)) found.push(match[1]);
  return found;
}

/** Every bare (package) specifier reachable by static imports from `entry`. */
function packagesReached(entry: string): Set<string> {
  const packages = new Set<string>();
  const seen = new Set<string>();
  const visit = (file: URL) => {
    if (seen.has(file.href)) return;
    seen.add(file.href);
    const source = Deno.readTextFileSync(file);
    for (const specifier of staticImports(source)) {
      if (specifier.startsWith(".")) visit(new URL(specifier, file));
      else packages.add(specifier);
    }
  };
  visit(new URL(entry, SRC));
  return packages;
}

Deno.test("staticImports: value imports count, type-only imports do not", () => {
  const source = [
    'import type { A } from "a";',
    'import { type B, type C } from "b";',
    'import { type D, e } from "d";',
    'import {\n  f,\n  g,\n} from "f";',
    'export { h } from "h";',
  ].join("\n");
  assertEquals(staticImports(source), ["d", "f", "h"]);
});

Deno.test("--help, --version and --noaction load neither the AWS SDK nor a database driver", () => {
  const heavy = [...packagesReached("cli/main.ts")].filter((p) =>
    p.startsWith("@aws-sdk/") || p === "mysql2" || p.startsWith("mysql2/") || p === "mongodb" ||
    p === "pg" || p.startsWith("pg/") || p.startsWith("pgpass")
  );
  assertEquals(heavy, []);
});
