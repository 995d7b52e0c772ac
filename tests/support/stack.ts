/**
 * The stack of a real run for tests: moto, a fault-injecting proxy in front of it, a volume and
 * an XFS loop mount; and a proxy decision that holds requests until the test lets them go.
 */
import { assertEquals } from "./assert.ts";
import { MOTO, type MotoEndpoint, startMoto } from "./moto.ts";
import type { Requirement } from "./real.ts";
import { baseEnv } from "./program.ts";
import { type Proxy, type SeenRequest, startProxy } from "./proxy.ts";
import { type TestMount, withXfsMount, xfsRequirement } from "./xfs.ts";

/**
 * What {@linkcode withStack} needs (XFS with root, and moto), for a test's
 * `ignore: ignoreUnless(...STACK)`.
 */
export const STACK: Requirement[] = [await xfsRequirement(), MOTO];

/** What {@linkcode withStack} hands to a test. */
export interface Stack {
  moto: MotoEndpoint;
  proxy: Proxy;
  /** The first volume (of {@linkcode Stack.volumes}). */
  volume: string;
  /** The volumes made in moto: one unless asked for more. */
  volumes: string[];
  mount: TestMount;
  /** The program's environment: moto's credentials, the proxy as the EC2 endpoint. */
  env: Record<string, string>;
  /** With `runDir: true`: the run's own $ECS_RUN_DIR (the freeze locks), off every frozen mount. */
  runDir?: string;
}

/** What {@linkcode withStack} sets up besides moto, the proxy and the mount. */
export interface StackOptions {
  /** How many volumes to make in moto; 1. */
  volumes?: number;
  /**
   * A run directory of the test's own as $ECS_RUN_DIR, checked empty of freeze locks after
   * `fn` (every lock released) and removed; default: none set.
   */
  runDir?: boolean;
}

/**
 * Runs `fn` with moto, a proxy in front of it, volumes, and an XFS mount; stops and removes
 * everything afterwards. Fails without root, mkfs.xfs or moto: ignore the test with
 * `ignoreUnless(...STACK)`.
 *
 * @example
 * ```ts
 * await withStack(async ({ proxy, volume, mount, env }) => { ... });
 * await withStack(async ({ volumes: [a, b], runDir }) => { ... }, { volumes: 2, runDir: true });
 * ```
 */
export async function withStack(
  fn: (s: Stack) => Promise<void>,
  options: StackOptions = {},
): Promise<void> {
  await withXfsMount(async (mount) => {
    const moto = await startMoto();
    const proxy = startProxy(moto.url);
    const runDir = options.runDir ? Deno.makeTempDirSync({ prefix: "ecs-run-" }) : undefined;
    try {
      const volumes = await moto.createVolumes(options.volumes ?? 1);
      const env = baseEnv({
        ...moto.env,
        AWS_ENDPOINT_URL_EC2: proxy.url,
        ...(runDir ? { ECS_RUN_DIR: runDir } : {}),
      });
      await fn({ moto, proxy, volume: volumes[0], volumes, mount, env, runDir });
      if (runDir) {
        const left = [...Deno.readDirSync(runDir)].map((e) => e.name).filter((n) => n !== ".mutex");
        assertEquals(left, [], "every freeze lock was released");
      }
    } finally {
      await proxy.stop();
      await moto.stop();
      if (runDir) Deno.removeSync(runDir, { recursive: true });
    }
  });
}

/** A CreateSnapshot that creates (not a DryRun). */
export const isCreate = (r: SeenRequest) => r.action === "CreateSnapshot" && !r.dryRun;
/** The preflight's DryRun CreateSnapshot. */
export const isDryRun = (r: SeenRequest) => r.action === "CreateSnapshot" && r.dryRun;

/**
 * A decision that holds matching requests until `release()`, and tells when one arrived.
 *
 * @example
 * ```ts
 * const hold = holder(isCreate);
 * proxy.decide = hold.decide;
 * await hold.seen; // frozen now
 * hold.release();
 * ```
 */
export function holder(match: (r: SeenRequest) => boolean) {
  let arrived!: () => void;
  const seen = new Promise<void>((resolve) => arrived = resolve);
  let settle!: (forward: boolean) => void;
  const released = new Promise<boolean>((resolve) => settle = resolve);
  return {
    decide: (r: SeenRequest) => (match(r) ? (arrived(), released) : "forward" as const),
    seen,
    /** Lets held requests go on to the endpoint. */
    release: () => settle(true),
    /** Drops held requests: their client is gone (killed), so they must not reach EC2. */
    drop: () => settle(false),
  };
}
