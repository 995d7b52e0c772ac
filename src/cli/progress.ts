/** Progress of waiting snapshots on stderr: a bar per snapshot on a terminal, plain lines otherwise. */
import { writeStderr } from "../util/log.ts";
import type { ProgressItem, ProgressSink } from "../types/progress.ts";

const PROGRAM = "ec2-consistent-snapshot";
const BAR_WIDTH = 30;

function writer(write?: (text: string) => void): (text: string) => void {
  // stderr through the logger's writer: a closed stderr never throws into the wait.
  return write ?? writeStderr;
}

/** A bar per snapshot, redrawn in place with ANSI cursor movement; for a terminal. */
export function terminalProgress(
  items: readonly ProgressItem[],
  write?: (text: string) => void,
): ProgressSink {
  const out = writer(write);
  const state = new Map(items.map((item) => [item.snapshotId, { percent: 0, status: "" }]));
  let drawn = false;
  const line = (item: ProgressItem) => {
    const { percent, status } = state.get(item.snapshotId)!;
    const filled = Math.round((percent / 100) * BAR_WIDTH);
    const bar = "#".repeat(filled) + "-".repeat(BAR_WIDTH - filled);
    return `${item.snapshotId} [${bar}] ${String(percent).padStart(3)}% ${item.label}${
      status ? ` ${status}` : ""
    }`;
  };
  const draw = () => {
    const up = drawn ? `\x1b[${items.length}A` : "";
    out(up + items.map((item) => `\r\x1b[2K${line(item)}\n`).join(""));
    drawn = true;
  };
  return {
    update(snapshotId, percent) {
      const entry = state.get(snapshotId);
      if (!entry || entry.status) return;
      entry.percent = percent;
      draw();
    },
    done(snapshotId, status, detail) {
      const entry = state.get(snapshotId);
      if (!entry) return;
      if (status === "completed") entry.percent = 100;
      entry.status = detail ? `${status}: ${detail}` : status;
      draw();
    },
    close() {
      if (!drawn && items.length > 0) draw();
    },
  };
}

/** One line per change of a snapshot's progress, and one when it ends; for logs and cron mail. */
export function lineProgress(
  items: readonly ProgressItem[],
  write?: (text: string) => void,
): ProgressSink {
  const out = writer(write);
  const labels = new Map(items.map((item) => [item.snapshotId, item.label]));
  const last = new Map<string, number>();
  return {
    update(snapshotId, percent) {
      if (last.get(snapshotId) === percent) return;
      last.set(snapshotId, percent);
      out(`${PROGRAM}: waiting: ${snapshotId} (${labels.get(snapshotId)}) ${percent}%\n`);
    },
    done(snapshotId, status, detail) {
      out(
        `${PROGRAM}: waiting: ${snapshotId} (${labels.get(snapshotId)}) ${status}${
          detail ? `: ${detail}` : ""
        }\n`,
      );
    },
    close() {},
  };
}

/**
 * The sink for stderr: bars on a terminal, lines otherwise.
 *
 * @example
 * ```ts
 * const progress = stderrProgress([{ snapshotId: "snap-0a1b", label: "vol-0123abcd in us-east-1" }]);
 * progress.update("snap-0a1b", 40);
 * progress.done("snap-0a1b", "completed");
 * progress.close();
 * ```
 */
export function stderrProgress(items: readonly ProgressItem[]): ProgressSink {
  return Deno.stderr.isTerminal() ? terminalProgress(items) : lineProgress(items);
}
