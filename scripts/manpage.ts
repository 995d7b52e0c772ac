/** Writes the man page: `deno run --allow-write --allow-env scripts/manpage.ts [OUTPUT]`. */
import { manPage } from "../src/cli/manpage.ts";

/** Where the page goes when no OUTPUT is given. */
export const DEFAULT_OUTPUT = "dist/ec2-consistent-snapshot.1";

/** The page date from SOURCE_DATE_EPOCH (reproducible builds), else none. */
function pageDate(): string | undefined {
  const epoch = Deno.env.get("SOURCE_DATE_EPOCH");
  if (!epoch || !/^\d+$/.test(epoch)) return undefined;
  return new Date(Number(epoch) * 1000).toISOString().slice(0, 10);
}

if (import.meta.main) {
  const output = Deno.args[0] ?? DEFAULT_OUTPUT;
  const version = Deno.env.get("ECS_VERSION") ?? "dev";
  const slash = output.lastIndexOf("/");
  if (slash > 0) await Deno.mkdir(output.slice(0, slash), { recursive: true });
  await Deno.writeTextFile(output, manPage({ version, date: pageDate() }));
}
