/** The checks of single inputs (volume ids, tags, output, endpoint, metrics file, AWS files) that buildPlan runs first. */
import { UsageError } from "../util/errors.ts";
import { checkUserFile } from "../util/files.ts";
import type { ParsedArgs } from "../types/options.ts";
import {
  characters,
  MAX_TAG_KEY,
  MAX_TAG_VALUE,
  MAX_TAGS,
  OWN_TAG_KEYS,
  OWN_TAGS,
} from "../types/tags.ts";

const VOLUME_ID = /^vol-(?:[0-9a-f]{8}|[0-9a-f]{17})$/;

/** Options recognised and checked, whose behaviour is not part of this version yet. */
const NOT_YET: Record<string, string> = {
  "mongo": "MongoDB locking",
  "mongo-stop": "MongoDB locking",
};

/** What to do instead of an option that is not supported. */
const INSTEAD: Record<string, string> = {
  "MongoDB locking": "freeze the file system that holds MongoDB's data and journal instead " +
    "(--freeze-filesystem MOUNT), MongoDB's documented way to snapshot; see the README",
};

/** Parses one --tag value, "K=V;K2=V2", checking what EC2 would reject. */
export function parseTags(text: string): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const item of text.split(";")) {
    if (item.trim() === "") continue;
    const eq = item.indexOf("=");
    if (eq < 0 && /^vol-[0-9a-f]{8}([0-9a-f]{9})?$/.test(item.trim())) {
      throw new UsageError(
        `--tag took ${item.trim()} as its value: give --tag KEY=VALUE before the volume id ` +
          `(--tag KEY=VALUE ${item.trim()})`,
      );
    }
    if (eq < 0) throw new UsageError(`--tag '${item}': expected KEY=VALUE`);
    const key = item.slice(0, eq).trim();
    const value = item.slice(eq + 1).trim();
    if (key === "") throw new UsageError(`--tag '${item}': empty key`);
    // EC2 counts characters (code points), not UTF-16 units: an emoji is one, not two.
    if (characters(key) > MAX_TAG_KEY) {
      const start = [...key].slice(0, 20).join("");
      throw new UsageError(`--tag '${start}...': key longer than ${MAX_TAG_KEY} characters`);
    }
    if (characters(value) > MAX_TAG_VALUE) {
      throw new UsageError(`--tag '${key}': value longer than ${MAX_TAG_VALUE} characters`);
    }
    if (key.toLowerCase().startsWith("aws:")) {
      throw new UsageError(`--tag '${key}': keys starting with 'aws:' are reserved by AWS`);
    }
    if (OWN_TAG_KEYS.includes(key)) {
      throw new UsageError(`--tag '${key}': this key is set by the tool itself`);
    }
    if (key in tags) throw new UsageError(`--tag '${key}': key given twice`);
    tags[key] = value;
  }
  if (Object.keys(tags).length > MAX_TAGS - OWN_TAGS) {
    throw new UsageError(
      `--tag: ${
        Object.keys(tags).length
      } tags; EC2 allows ${MAX_TAGS} and the tool adds ${OWN_TAGS}`,
    );
  }
  return tags;
}

/** Spreads values given once (for all) or once per volume (in order) over the volumes. */
export function perVolume<T>(option: string, values: T[], count: number, fallback: T): T[] {
  if (values.length === 0) return Array(count).fill(fallback);
  if (values.length === 1) return Array(count).fill(values[0]);
  if (values.length === count) return values;
  throw new UsageError(
    count === 1
      ? `--${option} given ${values.length} times for 1 volume: give it once`
      : `--${option} given ${values.length} times for ${count} volumes: give it once, or once ` +
        "per volume",
  );
}

/** Refuses a malformed volume id, or one given twice. */
export function checkVolumeIds(ids: string[]): void {
  const seen = new Set<string>();
  for (const id of ids) {
    if (!VOLUME_ID.test(id)) {
      throw new UsageError(`malformed volume id '${id}': expected vol- and 8 or 17 hex digits`);
    }
    if (seen.has(id)) throw new UsageError(`volume ${id} given twice`);
    seen.add(id);
  }
}

/** Refuses the options this version recognises but does not support, saying what to do instead. */
export function checkSupported(args: ParsedArgs): void {
  for (const name of args.given) {
    const feature = NOT_YET[name];
    if (feature) {
      throw new UsageError(`--${name}: not supported (${feature}): ${INSTEAD[feature]}`);
    }
  }
}

/** The --output format: text or json. */
export function checkOutput(value: string): "text" | "json" {
  if (value === "text" || value === "json") return value;
  throw new UsageError(`--output: expected text or json, got '${value}'`);
}

/** An endpoint URL (--ec2-endpoint, $AWS_ENDPOINT_URL_EC2), checked to be http(s). */
export function checkEndpoint(value: string | undefined, option: string): string | undefined {
  if (value === undefined) return undefined;
  try {
    const url = new URL(value);
    if (url.protocol === "http:" || url.protocol === "https:") return value;
  } catch { /* reported below */ }
  throw new UsageError(`${option}: expected an http(s) URL, got '${value}'`);
}

/**
 * Checks --metrics-file before anything is locked: its directory must exist, and it must not
 * be a directory itself. The file is written (atomically) after the run.
 */
export function checkMetricsFile(path: string): string {
  if (path === "") throw new UsageError("--metrics-file: the path is empty");
  const slash = path.lastIndexOf("/");
  const dir = slash < 0 ? "." : slash === 0 ? "/" : path.slice(0, slash);
  let dirInfo: Deno.FileInfo;
  try {
    dirInfo = Deno.statSync(dir);
  } catch {
    throw new UsageError(`--metrics-file ${path}: the directory ${dir} does not exist`);
  }
  if (!dirInfo.isDirectory) {
    throw new UsageError(`--metrics-file ${path}: ${dir} is not a directory`);
  }
  if (path.endsWith("/")) throw new UsageError(`--metrics-file ${path}: names a directory`);
  let existing: Deno.FileInfo | undefined;
  try {
    existing = Deno.lstatSync(path);
  } catch { /* not there yet: written after the run */ }
  if (existing?.isSymlink) {
    throw new UsageError(
      `--metrics-file ${path}: is a symbolic link; it is never written through: give the real path`,
    );
  }
  if (existing && !existing.isFile) {
    throw new UsageError(
      `--metrics-file ${path}: is ${existing.isDirectory ? "a directory" : "not a regular file"}`,
    );
  }
  return path;
}

/**
 * Refuses an AWS shared config or credentials file ($AWS_CONFIG_FILE, ~/.aws/config,
 * $AWS_SHARED_CREDENTIALS_FILE, ~/.aws/credentials) that the SDK would hang on or read without
 * end: a FIFO, a device, a directory, a huge file. Missing files pass.
 */
export function checkAwsSharedFiles(env: Record<string, string | undefined>, home?: string): void {
  const files: [string | undefined, string][] = [
    [env.AWS_CONFIG_FILE, "$AWS_CONFIG_FILE"],
    [home && `${home}/.aws/config`, "AWS config file"],
    [env.AWS_SHARED_CREDENTIALS_FILE, "$AWS_SHARED_CREDENTIALS_FILE"],
    [home && `${home}/.aws/credentials`, "AWS credentials file"],
  ];
  for (const [path, what] of files) if (path) checkUserFile(path, what);
}
