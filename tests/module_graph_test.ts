/**
 * The module graph as deno reports it (`deno info --json`, not regular expressions on source):
 * no import cycle among src/ modules; folders import only folders below them (FLOORS); only
 * src/cli/ and src/plan/ read the options; only src/aws/ imports the AWS SDK and only src/db/ a
 * database driver; and start-up stays light: the static graph of src/main.ts and src/cli/main.ts
 * (all that `--help`, `--version` and `--noaction` load) reaches neither. No timings asserted.
 */
import { fileURLToPath, pathToFileURL } from "node:url";
import { assert, assertEquals } from "./support/assert.ts";
import { ROOT } from "./support/program.ts";

/** How one module imports another, as `deno info --json` tells them apart. */
type EdgeKind = "static" | "dynamic" | "type";

/** One import: `from` and `to` are paths relative to the repository, or `npm:<package>`. */
interface Edge {
  from: string;
  to: string;
  kind: EdgeKind;
}

/** The parts of one dependency in `deno info --json` that we read. */
interface InfoDependency {
  specifier: string;
  code?: { specifier?: string; error?: string };
  type?: { specifier?: string; error?: string };
  isDynamic?: boolean;
}

interface InfoModule {
  specifier: string;
  dependencies?: InfoDependency[];
  error?: string;
}

interface Graph {
  /** Every local module of the graph, relative to the repository. */
  modules: Set<string>;
  edges: Edge[];
}

/** `path` relative to `root` for a file: URL under it, `npm:<package>` for npm, else as is. */
function nodeName(specifier: string, root: string): string {
  if (specifier.startsWith("npm:")) {
    // npm:@scope/name@^1.2/sub, npm:/name@1.2.3/sub -> @scope/name, name
    const bare = specifier.slice(4).replace(/^\//, "");
    const match = /^(@[^/@]+\/[^/@]+|[^/@]+)/.exec(bare);
    return `npm:${match?.[1] ?? bare}`;
  }
  if (specifier.startsWith("file:")) {
    const path = fileURLToPath(specifier);
    return path.startsWith(root) ? path.slice(root.length) : path;
  }
  return specifier;
}

/**
 * Runs `deno info --json entry` and returns the imports of the local modules. A dependency
 * with `code` is loaded at run time: statically, or only by `import()` when deno marks it
 * `isDynamic` (it does only when every import of it is dynamic). A dependency with only `type`
 * is `import type` or `export type`: nothing is loaded for it at run time. (`import { type A }`
 * is a value import to deno's graph; write `import type` for a type-only import.)
 */
async function moduleGraph(
  entry: string,
  // `root`: paths are shown relative to it; `config`: the deno.json that resolves bare imports
  // (its import map), or null for none.
  { root = ROOT, config = `${ROOT}deno.json` }: { root?: string; config?: string | null } = {},
): Promise<Graph> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", ...(config ? ["--config", config] : ["--no-config"]), entry],
    cwd: root,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  if (!out.success) throw new Error(`deno info ${entry} failed: ${decoder.decode(out.stderr)}`);
  const info = JSON.parse(decoder.decode(out.stdout)) as { modules: InfoModule[] };
  const modules = new Set<string>();
  const edges: Edge[] = [];
  const problems: string[] = [];
  for (const module of info.modules) {
    if (!module.specifier.startsWith("file:")) continue;
    const from = nodeName(module.specifier, root);
    if (module.error) problems.push(`${from}: ${module.error}`);
    modules.add(from);
    for (const dep of module.dependencies ?? []) {
      for (const part of [dep.code, dep.type]) {
        if (part?.error) problems.push(`${from} imports ${dep.specifier}: ${part.error}`);
      }
      if (dep.code?.specifier) {
        const kind = dep.isDynamic ? "dynamic" : "static";
        edges.push({ from, to: nodeName(dep.code.specifier, root), kind });
      }
      if (dep.type?.specifier) {
        edges.push({ from, to: nodeName(dep.type.specifier, root), kind: "type" });
      }
    }
  }
  assertEquals(problems, [], "deno info reports unresolved imports");
  return { modules, edges };
}

/** Every .ts file under src/, relative to the repository, sorted. */
function sourceFiles(dir = "src/"): string[] {
  const found: string[] = [];
  for (const entry of Deno.readDirSync(`${ROOT}${dir}`)) {
    if (entry.isDirectory) found.push(...sourceFiles(`${dir}${entry.name}/`));
    else if (entry.isFile && entry.name.endsWith(".ts")) found.push(`${dir}${entry.name}`);
  }
  return found.sort();
}

/**
 * The graph of every file under src/: `deno info` takes one entry, so a temporary entry imports
 * them all (the entry itself is left out of the result).
 */
async function wholeSourceGraph(): Promise<Graph> {
  const dir = await Deno.makeTempDir({ prefix: "ecs-graph-" });
  try {
    const entry = `${dir}/all.ts`;
    const lines = sourceFiles().map((file) => `import "${pathToFileURL(`${ROOT}${file}`).href}";`);
    await Deno.writeTextFile(entry, lines.join("\n") + "\n");
    const graph = await moduleGraph(entry);
    const synthetic = nodeName(pathToFileURL(entry).href, ROOT);
    graph.modules.delete(synthetic);
    graph.edges = graph.edges.filter((edge) => edge.from !== synthetic);
    return graph;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** The import cycles among `nodes` (found by Tarjan's strongly connected components). */
function cycles(nodes: Iterable<string>, edges: readonly Edge[]): string[][] {
  const next = new Map<string, string[]>();
  for (const node of nodes) next.set(node, []);
  for (const { from, to } of edges) {
    if (next.has(from) && next.has(to) && !next.get(from)!.includes(to)) next.get(from)!.push(to);
  }
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  const visit = (node: string) => {
    index.set(node, index.size);
    low.set(node, index.get(node)!);
    stack.push(node);
    onStack.add(node);
    for (const to of next.get(node)!) {
      if (!index.has(to)) {
        visit(to);
        low.set(node, Math.min(low.get(node)!, low.get(to)!));
      } else if (onStack.has(to)) {
        low.set(node, Math.min(low.get(node)!, index.get(to)!));
      }
    }
    if (low.get(node) === index.get(node)) {
      const component: string[] = [];
      let member: string;
      do {
        member = stack.pop()!;
        onStack.delete(member);
        component.push(member);
      } while (member !== node);
      if (component.length > 1 || next.get(node)!.includes(node)) components.push(component);
    }
  };
  for (const node of [...next.keys()].sort()) if (!index.has(node)) visit(node);
  // Show each component as closed paths: the shortest one through each of its files, so that
  // every file of the cycle is named (a path seen from another start is shown once).
  const paths = new Map<string, string[]>();
  for (const component of components) {
    const members = new Set(component);
    const inside = (node: string) => next.get(node)!.filter((n) => members.has(n));
    for (const start of [...component].sort()) {
      const path = pathBetween(start, start, inside)!;
      const ring = path.slice(1);
      const first = ring.indexOf([...ring].sort()[0]);
      const key = [...ring.slice(first), ...ring.slice(0, first)].join(" ");
      if (!paths.has(key)) paths.set(key, path);
    }
  }
  return [...paths.values()].sort();
}

/** The shortest path `from` -> ... -> `to` (at least one step) along `next`, or undefined. */
function pathBetween(
  from: string,
  to: string,
  next: (node: string) => readonly string[],
): string[] | undefined {
  const previous = new Map<string, string>();
  const queue = [from];
  while (queue.length > 0) {
    const node = queue.shift()!;
    for (const step of next(node)) {
      if (previous.has(step)) continue;
      previous.set(step, node);
      if (step === to) {
        const path = [to];
        for (let at = previous.get(to)!; at !== from; at = previous.get(at)!) path.unshift(at);
        return [from, ...path];
      }
      queue.push(step);
    }
  }
  return undefined;
}

/**
 * The floors of src/, bottom first: a module imports only from its own folder or a folder on a
 * lower floor, so no two folders import each other, directly or around a loop. The shared types
 * (the options, the plans' values, the side-effect interfaces) sit just above util/; the adapters
 * (host/, aws/, db/) above them; then the plan; then the sequences; the command layer on top.
 * A new folder gets its floor here.
 */
const FLOORS: readonly string[] = [
  "src/util/",
  "src/types/",
  "src/retention/",
  "src/host/",
  "src/aws/",
  "src/db/",
  "src/plan/",
  "src/watchdog/",
  "src/run/",
  "src/hold/",
  "src/drill/",
  "src/cli/",
  "src/main.ts",
];

/** The floor of a module of src/ (its index in FLOORS), or -1 when its folder has none. */
function floorOf(module: string): number {
  return FLOORS.findIndex((floor) => module === floor || module.startsWith(floor));
}

/** The folder of a module of src/: `src/db/mysql/lock.ts` -> `src/db/`. */
function folderOf(module: string): string {
  return FLOORS[floorOf(module)] ?? module.replace(/^(src\/[^/]+\/).*$/, "$1");
}

/** Imports that go up the floors (or from or to a folder without a floor), one line each. */
function upwardImports(edges: readonly Edge[]): string[] {
  return edges.flatMap(({ from, to, kind }) => {
    if (!from.startsWith("src/") || !to.startsWith("src/")) return [];
    const [up, down] = [floorOf(from), floorOf(to)];
    if (up === -1) return [`${from}: its folder has no floor in FLOORS`];
    if (down === -1) return [`${to}: its folder has no floor in FLOORS`];
    if (down <= up) return [];
    return [`${from} imports ${to} (${kind}): ${folderOf(to)} is above ${folderOf(from)}`];
  });
}

/** Who may import the options (the option table and the `Options` type): the command and the plan. */
const OPTIONS_MODULE = "src/types/options.ts";
const OPTIONS_READERS = ["src/cli/", "src/plan/"];

/** Who may import which packages: the AWS SDK only from src/aws/, each driver from its folder. */
const OWNERS: readonly { what: string; matches: (pkg: string) => boolean; folder: string }[] = [
  {
    what: "the AWS SDK",
    matches: (pkg) => pkg.startsWith("@aws-sdk/") || pkg.startsWith("@smithy/"),
    folder: "src/aws/",
  },
  { what: "mysql2", matches: (pkg) => pkg === "mysql2", folder: "src/db/mysql/" },
  {
    what: "a PostgreSQL driver",
    matches: (pkg) => pkg === "pg" || pkg === "postgres",
    folder: "src/db/postgresql/",
  },
  { what: "a MongoDB driver", matches: (pkg) => pkg === "mongodb", folder: "src/db/" },
];

/** The owner rule of an edge's target, when it is an SDK or a driver. */
function ownerOf(to: string) {
  return to.startsWith("npm:") ? OWNERS.find((owner) => owner.matches(to.slice(4))) : undefined;
}

/** Imports of the SDK or a driver from outside their folder (`import type` included). */
function misplacedImports(edges: readonly Edge[]): string[] {
  return edges.flatMap(({ from, to, kind }) => {
    const owner = ownerOf(to);
    if (!owner || !from.startsWith("src/") || from.startsWith(owner.folder)) return [];
    return [`${from} imports ${to} (${kind}); only ${owner.folder} may import ${owner.what}`];
  });
}

/** Each static path from `entry` to the SDK or a driver, as `a -> b -> npm:pkg`. */
function staticPathsToHeavy(entry: string, edges: readonly Edge[]): string[] {
  const staticEdges = edges.filter((edge) => edge.kind === "static");
  const next = (node: string) => staticEdges.filter((e) => e.from === node).map((e) => e.to);
  const heavy = [...new Set(staticEdges.map((e) => e.to).filter((to) => ownerOf(to)))].sort();
  return heavy.flatMap((pkg) => {
    const path = pathBetween(entry, pkg, next);
    return path ? [path.join(" -> ")] : [];
  });
}

Deno.test("deno info --json tells static, dynamic and type-only imports apart", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ecs-graph-" });
  try {
    const files: Record<string, string> = {
      "entry.ts": [
        'import type { A } from "./type_only.ts";',
        'export type { B } from "./type_export.ts";',
        'import { c } from "./static.ts";',
        'export { d } from "./reexport.ts";',
        'import "./side_effect.ts";',
        'const e = await import("./dynamic.ts");',
        'const f = await import("./both.ts");',
        'import { g } from "./both.ts";',
        "export const all: A | undefined = [c, e, f, g] as never;",
      ].join("\n"),
    };
    for (const name of ["type_only", "type_export", "static", "reexport", "side_effect"]) {
      files[`${name}.ts`] = "export type A = 1; export type B = 1; export const c = 1, d = 1;";
    }
    files["dynamic.ts"] = files["both.ts"] = "export const g = 1;";
    for (const [name, text] of Object.entries(files)) {
      await Deno.writeTextFile(`${dir}/${name}`, text);
    }
    const graph = await moduleGraph(`${dir}/entry.ts`, { root: `${dir}/`, config: null });
    const kinds = graph.edges.filter((e) => e.from === "entry.ts").map((e) => `${e.to} ${e.kind}`);
    assertEquals(kinds.sort(), [
      "both.ts static",
      "dynamic.ts dynamic",
      "reexport.ts static",
      "side_effect.ts static",
      "static.ts static",
      "type_export.ts type",
      "type_only.ts type",
    ]);
    assertEquals(cycles(graph.modules, graph.edges), []);
    const cyclic = [...graph.edges, { from: "static.ts", to: "entry.ts", kind: "type" as const }];
    assertEquals(cycles(graph.modules, cyclic), [["entry.ts", "static.ts", "entry.ts"]]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the module graph of src/", async (t) => {
  const graph = await wholeSourceGraph();
  const local = [...graph.modules].filter((m) => m.startsWith("src/"));

  await t.step("holds every file under src/", () => {
    assertEquals(local.sort(), sourceFiles());
  });

  await t.step("has no import cycle (static, dynamic or type-only)", () => {
    const found = cycles(local, graph.edges).map((cycle) => cycle.join(" -> "));
    assertEquals(found, [], `import cycles:\n  ${found.join("\n  ")}`);
  });

  await t.step("folders import only folders on a lower floor (no two import each other)", () => {
    const up = [...new Set(upwardImports(graph.edges))];
    assertEquals(up, [], up.join("\n"));
    // The folder graph, drawn from the same edges, has no cycle either.
    const folderEdges = graph.edges.filter((e) =>
      e.from.startsWith("src/") && e.to.startsWith("src/")
    )
      .map((e) => ({ ...e, from: folderOf(e.from), to: folderOf(e.to) }))
      .filter((e) => e.from !== e.to);
    const loops = cycles(new Set(folderEdges.flatMap((e) => [e.from, e.to])), folderEdges);
    assertEquals(loops, [], loops.map((loop) => loop.join(" -> ")).join("\n"));
  });

  await t.step("only src/cli/ and src/plan/ read the options", () => {
    const readers = graph.edges.filter((e) =>
      e.to === OPTIONS_MODULE && e.from !== OPTIONS_MODULE &&
      !OPTIONS_READERS.some((folder) => e.from.startsWith(folder))
    ).map((e) => `${e.from} imports ${OPTIONS_MODULE} (${e.kind})`);
    assertEquals(readers, [], readers.join("\n"));
  });

  await t.step("the plan never imports the sequence (src/plan/ -> src/run/)", () => {
    const back = graph.edges.filter((e) =>
      e.from.startsWith("src/plan/") && e.to.startsWith("src/run/")
    )
      .map((e) => `${e.from} imports ${e.to} (${e.kind})`);
    assertEquals(back, [], back.join("\n"));
  });

  await t.step("imports the AWS SDK only from src/aws/, drivers only from src/db/", () => {
    const misplaced = misplacedImports(graph.edges);
    assertEquals(misplaced, [], misplaced.join("\n"));
    // The rule has something to hold: the SDK and mysql2 are imported, from their folders.
    assert(
      graph.edges.some((e) => e.from.startsWith("src/aws/") && e.to === "npm:@aws-sdk/client-ec2"),
    );
    assert(graph.edges.some((e) => e.from.startsWith("src/db/mysql/") && e.to === "npm:mysql2"));
  });
});

Deno.test("--help, --version and --noaction load neither the AWS SDK nor a database driver", async () => {
  // The graph of src/main.ts, as deno reports it; src/cli/main.ts is the command in it.
  const graph = await moduleGraph("src/main.ts");
  assert(graph.modules.has("src/cli/main.ts"), "src/main.ts no longer reaches src/cli/main.ts");
  // Both are imported, but only by import() or import type.
  assert(graph.edges.some((e) => e.to === "npm:@aws-sdk/client-ec2"));
  assert(graph.edges.some((e) => e.to === "npm:mysql2"));
  const paths = ["src/main.ts", "src/cli/main.ts"].flatMap((entry) =>
    staticPathsToHeavy(entry, graph.edges)
  );
  assertEquals(paths, [], `static imports of the SDK or a driver:\n  ${paths.join("\n  ")}`);
});
