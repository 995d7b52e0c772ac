/** EC2's clock as its answers tell it (their `Date` header), against this machine's clocks. */

/**
 * Local wall clock and EC2's may disagree by this much before retention refuses to delete:
 * NTP keeps a healthy machine within a second; minutes mean a clock that is wrong.
 */
export const CLOCK_SKEW_LIMIT_MS = 5 * 60_000;

/** What the answers so far say about EC2's clock. */
export interface Ec2Clock {
  /**
   * A lower bound of EC2's time (epoch milliseconds) at a monotonic instant (a
   * `performance.now()` of this process); undefined before the first answer with a `Date`.
   * Never later than EC2's real time at that instant, whatever the local wall clock says.
   */
  lowerBoundAt(monotonicMs: number): number | undefined;
  /** EC2's time now, to about a second; undefined before the first answer with a `Date`. */
  now(): Date | undefined;
  /**
   * How far the local wall clock is from EC2's (local minus EC2, milliseconds), as the
   * interval the answers allow; undefined before the first answer with a `Date`.
   */
  skew(): { minMs: number; maxMs: number } | undefined;
  /**
   * One line when two answers' `Date`s contradict each other by more than CLOCK_SKEW_LIMIT_MS
   * (one EC2 host with a wrong clock, a proxy): EC2's time is then not known well enough to
   * measure ages by; undefined while they agree.
   */
  conflict(): string | undefined;
}

interface Bounds {
  /** EC2 time minus the monotonic clock: lower and upper bound. */
  mono: [number, number];
  /** EC2 time minus the local wall clock: lower and upper bound. */
  wall: [number, number];
  /** The lowest lower bound of EC2 time minus the monotonic clock any answer gave. */
  monoLowest: number;
  /** How far apart the answers that contradict each other most are (milliseconds). */
  gapMs: number;
}

interface RawAnswer {
  response?: { headers?: Record<string, string | undefined> };
}

type Step = (next: (args: unknown) => Promise<unknown>) => (args: unknown) => Promise<unknown>;

/** The part of the client's middleware stack this module needs. */
interface Stack {
  addRelativeTo(
    middleware: Step,
    options: { relation: "after"; toMiddleware: string; name: string },
  ): void;
}

/** An SDK client, as far as this module needs it (an EC2Client). */
export interface ClockedClient {
  /** The client's middleware stack, to which a step reading every answer's `Date` is added. */
  readonly middlewareStack: unknown;
}

const clocks = new WeakMap<ClockedClient, Ec2Clock>();

/**
 * The clock of a client's answers: the first call adds a step to the client that reads the
 * `Date` of every HTTP answer (errors too, DryRun's included); later calls return the same clock.
 *
 * An answer stamped D (whole seconds) was made at an EC2 instant in [D, D+1s), between the
 * moment the request left (t0) and the moment the answer arrived (t1); so EC2's time minus the
 * local clock lies in [D - t1, D + 1s - t0]. Every answer narrows the interval.
 *
 * @example
 * ```ts
 * import { DescribeSnapshotsCommand } from "@aws-sdk/client-ec2";
 * import type { EC2Client } from "./ec2.ts";
 * const client = {} as EC2Client;
 * const clock = ec2Clock(client);
 * await client.send(new DescribeSnapshotsCommand({ OwnerIds: ["self"] }));
 * clock.now(); // EC2's time, from that answer's Date header
 * ```
 */
export function ec2Clock(client: ClockedClient): Ec2Clock {
  const known = clocks.get(client);
  if (known) return known;
  let bounds: Bounds | undefined;
  const record = (t0: [number, number], t1: [number, number], dateMs: number) => {
    const mono: [number, number] = [dateMs - t1[0], dateMs + 1000 - t0[0]];
    const wall: [number, number] = [dateMs - t1[1], dateMs + 1000 - t0[1]];
    if (!bounds) {
      bounds = { mono, wall, monoLowest: mono[0], gapMs: 0 };
      return;
    }
    bounds.monoLowest = Math.min(bounds.monoLowest, mono[0]);
    bounds.mono = [Math.max(bounds.mono[0], mono[0]), Math.min(bounds.mono[1], mono[1])];
    // Honest answers all contain EC2's true time: an empty interval is a Date that lies.
    bounds.gapMs = Math.max(bounds.gapMs, bounds.mono[0] - bounds.mono[1]);
    bounds.wall = [Math.max(bounds.wall[0], wall[0]), Math.min(bounds.wall[1], wall[1])];
    // A wall clock stepped between two answers can make the interval empty: keep the newest.
    if (bounds.wall[0] > bounds.wall[1]) bounds.wall = wall;
  };
  const stamp = (): [number, number] => [performance.now(), Date.now()];
  // A stand-in client without a middleware stack (a test's fake) tells no time.
  (client.middlewareStack as unknown as Stack | undefined)?.addRelativeTo(
    (next) => async (args) => {
      const t0 = stamp();
      const out = await next(args) as RawAnswer;
      const t1 = stamp();
      const date = dateHeader(out?.response?.headers);
      if (date !== undefined) record(t0, t1, date);
      return out;
    },
    // Inside the deserializer: every HTTP answer passes here, an EC2 error's too.
    { relation: "after", toMiddleware: "deserializerMiddleware", name: "ecsEc2Clock" },
  );
  const clock: Ec2Clock = {
    // When answers contradict each other, the earliest any of them allows: a held-until too
    // early makes a held snapshot look late, never a late one look held.
    lowerBoundAt: (monotonicMs) =>
      bounds ? monotonicMs + (bounds.gapMs > 0 ? bounds.monoLowest : bounds.mono[0]) : undefined,
    now() {
      if (!bounds) return undefined;
      // Contradicting answers: the earliest time any allows (snapshots look younger, not older).
      if (bounds.gapMs > 0) return new Date(performance.now() + bounds.monoLowest);
      return new Date(performance.now() + (bounds.mono[0] + bounds.mono[1]) / 2);
    },
    skew: () => bounds ? { minMs: -bounds.wall[1], maxMs: -bounds.wall[0] } : undefined,
    conflict: () =>
      bounds && bounds.gapMs > CLOCK_SKEW_LIMIT_MS
        ? `EC2's answers disagree about the time by ${
          describeMs(bounds.gapMs)
        } (the Date of its answers)`
        : undefined,
  };
  clocks.set(client, clock);
  return clock;
}

/** The `Date` header of an HTTP answer in epoch milliseconds; undefined without a valid one. */
function dateHeader(headers: Record<string, string | undefined> | undefined): number | undefined {
  if (!headers) return undefined;
  const name = Object.keys(headers).find((key) => key.toLowerCase() === "date");
  const value = name === undefined ? undefined : Date.parse(headers[name] ?? "");
  return value === undefined || Number.isNaN(value) ? undefined : value;
}

/**
 * One line on a local clock that disagrees with EC2's by more than CLOCK_SKEW_LIMIT_MS, or
 * undefined when it agrees (or no answer has told EC2's time yet).
 *
 * @example
 * ```ts
 * import type { EC2Client } from "./ec2.ts";
 * import type { Logger } from "../util/log.ts";
 * const client = {} as EC2Client, log = {} as Logger;
 * const wrong = clockDisagreement(ec2Clock(client).skew());
 * if (wrong) log.warn(`retention: ${wrong}; nothing deleted`);
 * ```
 */
export function clockDisagreement(
  skew: { minMs: number; maxMs: number } | undefined,
): string | undefined {
  if (!skew) return undefined;
  const off = skew.minMs > CLOCK_SKEW_LIMIT_MS
    ? skew.minMs
    : skew.maxMs < -CLOCK_SKEW_LIMIT_MS
    ? skew.maxMs
    : undefined;
  if (off === undefined) return undefined;
  return `the local clock is ${describeMs(Math.abs(off))} ${
    off > 0 ? "ahead of" : "behind"
  } EC2's (the Date of its answers)`;
}

function describeMs(ms: number): string {
  const minutes = ms / 60_000;
  if (minutes < 120) return `${Math.round(minutes)} minutes`;
  const hours = minutes / 60;
  if (hours < 48) return `${Math.round(hours)} hours`;
  return `${Math.round(hours / 24)} days`;
}

/**
 * Taken off the held-until instant: EC2's hosts stamp StartTime with clocks of their own, a
 * little apart from the one that stamps Date. Earlier is the safe side (a snapshot made while
 * held may look late; one made after the release never looks held).
 */
export const HELD_UNTIL_MARGIN_MS = 250;

/**
 * The held-until tag's value for a hold that ends at a monotonic instant: a lower bound of EC2's
 * time then, less HELD_UNTIL_MARGIN_MS, in ISO 8601 with milliseconds; the local clock's time
 * instead when that is earlier by more than CLOCK_SKEW_LIMIT_MS. Before any answer told EC2's
 * time, the local clock stands in (the preflight's DryRun answers first, so it rarely does).
 *
 * @example
 * ```ts
 * import type { EC2Client } from "./ec2.ts";
 * const client = {} as EC2Client;
 * heldUntilValue(ec2Clock(client), performance.now() + 3_000); // "2026-12-07T01:02:03.456Z"
 * ```
 */
export function heldUntilValue(clock: Ec2Clock, monotonicMs: number): string {
  const local = Date.now() - performance.now() + monotonicMs;
  const ec2 = clock.lowerBoundAt(monotonicMs);
  // EC2's Date and the local clock far apart: one of them is wrong and nothing says which (an
  // EC2 host's clock, a proxy); the earlier, so that a snapshot made after the release never
  // reads as held (a held one may read as late, and the run warns of it).
  const time = ec2 === undefined
    ? local
    : Math.abs(ec2 - local) > CLOCK_SKEW_LIMIT_MS
    ? Math.min(ec2, local)
    : ec2;
  return new Date(Math.floor(time - HELD_UNTIL_MARGIN_MS)).toISOString();
}
