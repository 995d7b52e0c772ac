/**
 * A benchmark write probe, run as a Worker (a thread of its own, so a write blocked by a
 * frozen file system blocks only it): writes a block with fdatasync on each loop and records
 * the longest single write, as seen from outside the program under test.
 */

/** What the probe is told: the file to write and a shared flag that stops it. */
export interface ProbeStart {
  path: string;
  /** Int32Array over a SharedArrayBuffer: index 0 set to 1 stops the loop. */
  stop: Int32Array;
  /** Pause between writes, in milliseconds (spares the two cores). */
  pauseMs: number;
}

/** What the probe reports when stopped. All times are epoch milliseconds. */
export interface ProbeReport {
  path: string;
  writes: number;
  longestMs: number;
  longestStartedAt: number;
  longestEndedAt: number;
}

const self_ = self as unknown as {
  onmessage: (event: MessageEvent<ProbeStart>) => void;
  postMessage(report: ProbeReport): void;
  close(): void;
};

self_.onmessage = (event) => {
  const { path, stop, pauseMs } = event.data;
  const block = new Uint8Array(4096).fill(42);
  const file = Deno.openSync(path, { write: true, create: true, truncate: true });
  const report: ProbeReport = {
    path,
    writes: 0,
    longestMs: 0,
    longestStartedAt: 0,
    longestEndedAt: 0,
  };
  const epoch = () => performance.timeOrigin + performance.now();
  const pause = new Int32Array(new SharedArrayBuffer(4));
  try {
    while (Atomics.load(stop, 0) === 0) {
      const started = epoch();
      file.seekSync(0, Deno.SeekMode.Start);
      file.writeSync(block);
      file.syncDataSync();
      const ended = epoch();
      report.writes++;
      if (ended - started > report.longestMs) {
        report.longestMs = ended - started;
        report.longestStartedAt = started;
        report.longestEndedAt = ended;
      }
      Atomics.wait(pause, 0, 0, pauseMs);
    }
  } finally {
    file.close();
  }
  self_.postMessage(report);
  self_.close();
};
