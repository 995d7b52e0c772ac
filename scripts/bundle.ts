/**
 * The release's code as it ships: src/main.ts and the npm packages it uses bundled by esbuild into
 * plain JavaScript (one entry file and the chunks that `import()` loads lazily), the AWS SDK taken
 * from its ES module build and tree-shaken down to the operations the program calls. scripts/build.sh
 * compiles this bundle; the tests run it (tests/support/program.ts).
 *
 * Usage: deno run --allow-all scripts/bundle.ts [--root DIR] --out DIR [--packages DIR]
 *   [--metafile FILE]
 *   --root      the tree holding src/main.ts, deno.json and deno.lock (default: this repository)
 *   --out       the folder to write main.js and its chunks to (emptied first)
 *   --packages  a folder to keep the installed npm packages in between runs (default: a temporary
 *               one); one bundle at a time may use it
 */
import { parseArgs } from "node:util";
import { builtinModules } from "node:module";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

/**
 * The packages, in `work`/node_modules, at the exact versions of the tree's deno.lock, installed by
 * `deno install` from deno's cache (quick when `work` already has them).
 */
async function installPackages(root: string, work: string): Promise<string> {
  await Deno.copyFile(`${root}/deno.json`, `${work}/deno.json`);
  await Deno.copyFile(`${root}/deno.lock`, `${work}/deno.lock`);
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["install", "--quiet", "--node-modules-dir=auto", "--lock=deno.lock"],
    cwd: work,
    env: { DENO_NO_UPDATE_CHECK: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(
      `deno install of the npm packages failed:\n${new TextDecoder().decode(out.stderr)}`,
    );
  }
  return `${work}/node_modules`;
}

/** The tree's import map: a bare import must be one of its names (or below one), as for deno. */
function importMap(root: string): Map<string, string> {
  const config = JSON.parse(Deno.readTextFileSync(`${root}/deno.json`)) as {
    imports?: Record<string, string>;
  };
  return new Map(Object.entries(config.imports ?? {}));
}

/** The package name of a bare specifier: `@scope/name/sub` -> `@scope/name`, `name/sub` -> `name`. */
export function packageName(specifier: string): string {
  const parts = specifier.split("/");
  return specifier.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0];
}

/**
 * Package entry points whose index brings far more than src/ takes from it, to the names src/
 * uses and the files (in the package) that define them: src/'s import of one gets a module
 * re-exporting only these. `@aws-sdk/core/client` for the region table: its endpoint module has
 * side effects and keeps the SDK's client core (300 kB, 4-5 MB of a dry run's peak). A name not
 * listed fails the build ("No matching export"): add it here.
 */
const NARROW: Record<string, Record<string, string>> = {
  "@aws-sdk/core/client": {
    partition: "dist-es/submodules/client/util-endpoints/lib/aws/partition.js",
  },
};

/** Marks a resolution this plugin asked esbuild for, so that it does not intercept it again. */
const RESOLVED = Symbol("resolved");

/** SDK clients: import()ing one would keep all of its operations (see denoResolution). */
const EAGER = /^@aws-sdk\/client-/;

const BUILTINS = new Set(builtinModules.filter((name) => !name.startsWith("_")));

/**
 * Resolution as deno does it, for esbuild: Node's built-ins become `node:` imports left to the
 * runtime (deno refuses a bare `fs`); `npm:name@range/sub` becomes `name/sub`; a bare import from
 * src/ must be in deno.json's import map, and is found in the node_modules that deno installed.
 */
function denoResolution(
  root: string,
  map: Map<string, string>,
  nodeModules: string,
): esbuild.Plugin {
  const src = `${root}/src/`;
  return {
    name: "deno-resolution",
    setup(build) {
      build.onResolve({ filter: /^node:/ }, (args) => ({ path: args.path, external: true }));
      build.onLoad({ filter: /.*/, namespace: "narrow" }, (args) => ({
        contents: Object.entries(NARROW[args.path])
          .map(([name, file]) => `export { ${name} } from "${args.pluginData}/${file}";`)
          .join("\n"),
        resolveDir: args.pluginData,
        loader: "js",
      }));
      build.onResolve({ filter: /^[^./]/ }, async (args) => {
        if (args.pluginData === RESOLVED) return undefined;
        const bare = args.path.startsWith("npm:")
          ? args.path.slice(4).replace(/^(@[^/]+\/)?([^@/]+)@[^/]*/, "$1$2")
          : args.path;
        if (BUILTINS.has(bare) || BUILTINS.has(bare.split("/")[0])) {
          return { path: `node:${bare}`, external: true };
        }
        if (args.importer.startsWith(src) && args.kind === "dynamic-import" && EAGER.test(bare)) {
          return {
            errors: [{
              text: `import("${bare}"): esbuild keeps every export of an import()ed package, ` +
                "here every EC2 operation; import the names statically in a module that is " +
                "itself import()ed",
            }],
          };
        }
        if (args.importer.startsWith(src) && !args.path.startsWith("npm:")) {
          const name = packageName(bare);
          if (!map.has(name) && !map.has(bare)) {
            return { errors: [{ text: `"${bare}" is not in deno.json's imports` }] };
          }
        }
        if (bare === args.path && !args.importer.startsWith(src)) return undefined;
        if (args.importer.startsWith(src) && NARROW[bare]) {
          const pkg = packageName(bare);
          const manifest = await build.resolve(`${pkg}/package.json`, {
            kind: args.kind,
            resolveDir: nodeModules.replace(/\/node_modules$/, ""),
            pluginData: RESOLVED,
          });
          if (manifest.errors.length > 0) return { errors: manifest.errors };
          const dir = manifest.path.slice(0, manifest.path.lastIndexOf("/"));
          return { path: bare, namespace: "narrow", pluginData: dir };
        }
        const found = await build.resolve(bare, {
          kind: args.kind,
          resolveDir: nodeModules.replace(/\/node_modules$/, ""),
          importer: args.importer,
          pluginData: RESOLVED,
        });
        return found.errors.length > 0 ? { errors: found.errors } : found;
      });
    },
  };
}

/**
 * The SDK's schema files name every key of their shapes through a module constant
 * (`{ [_xN]: _aTSc }`); esbuild keeps any object with such a computed key, and with it every
 * shape of the whole service. Written as the string itself, unused shapes are dropped.
 */
const schemaKeys: esbuild.Plugin = {
  name: "sdk-schema-keys",
  setup(build) {
    build.onLoad({ filter: /[\\/]dist-es[\\/]schemas[\\/]schemas_\d+\.js$/ }, async (args) => {
      const text = await Deno.readTextFile(args.path);
      const strings = new Map<string, string>();
      for (const m of text.matchAll(/^const (_\w+) = ("[^"\\\n]*");$/gm)) strings.set(m[1], m[2]);
      const contents = text.replace(
        /\[(_\w+)\]:/g,
        (whole, name: string) => strings.has(name) ? `${strings.get(name)}:` : whole,
      );
      return { contents, loader: "js" };
    });
  },
};

/**
 * CommonJS packages (mysql2, pg) call `require` for Node's built-ins: each chunk gets one, made on
 * first call. Not `import { createRequire } from "node:module"`: that import alone costs every run
 * about 9 MB, and so does touching `process` before it is needed.
 */
const REQUIRE_SHIM = "let __ecsRequire;\n" +
  "function require(id) {\n" +
  '  __ecsRequire ??= globalThis.process.getBuiltinModule("node:module")' +
  ".createRequire(import.meta.url);\n" +
  "  return __ecsRequire(id);\n" +
  "}";

/**
 * `import("./chunk-X.js")` written so that `deno run` does not load it before it is needed:
 * deno reads and parses every literal import() target at start-up (all of the bundle, the MySQL
 * driver's megabytes too: about 5 MB more at the peak). scripts/build.sh --include's the bundle's
 * folder, so the compiled binary has every chunk all the same.
 */
export function unprefetched(code: string): string {
  return code.replace(/\bimport\("(\.\/chunk-[\w-]+\.js)"\)/g, 'import(String("$1"))');
}

/** Bundles `root`'s src/main.ts into `out` (main.js and chunks); returns esbuild's metafile. */
export async function bundle(
  root: string,
  out: string,
  packages?: string,
): Promise<esbuild.Metafile> {
  root = await Deno.realPath(root);
  if (packages) await Deno.mkdir(packages, { recursive: true });
  const work = packages ?? await Deno.makeTempDir({ prefix: "ecs-bundle-" });
  try {
    const nodeModules = await installPackages(root, work);
    await Deno.remove(out, { recursive: true }).catch(() => {});
    const result = await esbuild.build({
      entryPoints: { main: `${root}/src/main.ts` },
      absWorkingDir: root,
      bundle: true,
      splitting: true,
      format: "esm",
      platform: "node",
      target: "esnext",
      // The SDK's ES module build (dist-es) rather than its one-file CommonJS build.
      mainFields: ["module", "main"],
      conditions: ["module"],
      outdir: out,
      chunkNames: "chunk-[hash]",
      minifySyntax: true,
      keepNames: true,
      treeShaking: true,
      legalComments: "none",
      banner: { js: REQUIRE_SHIM },
      metafile: true,
      write: false,
      logLevel: "warning",
      plugins: [denoResolution(root, importMap(root), nodeModules), schemaKeys],
    });
    await Deno.mkdir(out, { recursive: true });
    for (const file of result.outputFiles) {
      await Deno.writeTextFile(file.path, unprefetched(file.text));
    }
    return result.metafile;
  } finally {
    await esbuild.stop();
    if (!packages) await Deno.remove(work, { recursive: true }).catch(() => {});
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      root: { type: "string", default: fileURLToPath(new URL("..", import.meta.url)) },
      out: { type: "string" },
      metafile: { type: "string" },
      packages: { type: "string" },
    },
  });
  if (!values.out) {
    console.error("bundle.ts: --out DIR is required");
    Deno.exit(2);
  }
  const metafile = await bundle(values.root, values.out, values.packages);
  if (values.metafile) await Deno.writeTextFile(values.metafile, JSON.stringify(metafile));
}

if (import.meta.main) await main();
