/** The planner's check of `--multi-volume` requests: one CreateSnapshots call, one description, one tag set. */
import { UsageError } from "../util/errors.ts";
import type { SnapshotRequest } from "./tags.ts";
import { withoutMarker } from "./tags.ts";

function sameTags(a: Record<string, string>, b: Record<string, string>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => a[k] === b[k]);
}

/**
 * Checks that the requests can be one CreateSnapshots call: it takes one description and one
 * tag set for all volumes, so per-volume --description, --tag and --name are refused.
 *
 * @example
 * ```ts
 * const request = (description: string) => ({ volumeId: "vol-1", description, tags: {} });
 * checkMultiVolumeRequests([request("a"), request("b")]); // throws UsageError: two descriptions
 * ```
 */
export function checkMultiVolumeRequests(requests: readonly SnapshotRequest[]): void {
  const [first, ...rest] = requests;
  if (!first) return;
  for (const request of rest) {
    if (request.description !== first.description) {
      throw new UsageError(
        "--multi-volume: one CreateSnapshots call takes one description; give --description once",
      );
    }
    if (!sameTags(withoutMarker(request.tags), withoutMarker(first.tags))) {
      throw new UsageError(
        "--multi-volume: one CreateSnapshots call takes one tag set; give --tag and --name once",
      );
    }
  }
}
