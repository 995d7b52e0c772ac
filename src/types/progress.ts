/** What the waiting code reports progress to (ProgressSink); cli/progress.ts draws it on stderr. */

/** What the waiting code reports; implemented for terminals and for logs. */
export interface ProgressSink {
  /** A snapshot's progress (0-100) as EC2 last reported it. */
  update(snapshotId: string, percent: number): void;
  /** A snapshot's wait ended: completed, error, timeout or stopped. */
  done(snapshotId: string, state: string, detail?: string): void;
  /** No more updates; leave the terminal tidy. */
  close(): void;
}

/** One line of the display: what is waited for. */
export interface ProgressItem {
  /** The snapshot (or copy) waited for. */
  snapshotId: string;
  /** E.g. "vol-0123abcd in us-east-1", or "copy of snap-... in eu-west-1". */
  label: string;
}
