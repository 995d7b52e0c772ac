/**
 * The benchmark's application: inserts rows into MariaDB as fast as it can, one autocommitted
 * INSERT after another, and records the longest time between two inserts. Stops when its
 * standard input closes and prints one JSON line ({@linkcode AppReport}) on stdout.
 *
 * Usage: deno run --allow-all scripts/bench_app.ts SOCKET
 */
import mysql from "mysql2/promise";

/** What the application reports. Times are epoch milliseconds. */
export interface AppReport {
  inserts: number;
  longestStallMs: number;
  stallStartedAt: number;
  stallEndedAt: number;
  error: string | null;
}

if (import.meta.main) {
  const socket = Deno.args[0];
  const connection = await mysql.createConnection({ socketPath: socket, user: "root" });
  await connection.query("CREATE DATABASE IF NOT EXISTS bench");
  await connection.query(
    "CREATE TABLE IF NOT EXISTS bench.rows_ (id BIGINT AUTO_INCREMENT PRIMARY KEY, " +
      "at DOUBLE NOT NULL, pad VARCHAR(100)) ENGINE=InnoDB",
  );
  let stopped = false;
  const stdinDone = (async () => {
    for await (const _ of Deno.stdin.readable) { /* until closed */ }
    stopped = true;
  })();
  const report: AppReport = {
    inserts: 0,
    longestStallMs: 0,
    stallStartedAt: 0,
    stallEndedAt: 0,
    error: null,
  };
  const epoch = () => performance.timeOrigin + performance.now();
  let last = epoch();
  // Ready: the bench starts the program under test only after this line.
  console.log("ready");
  try {
    while (!stopped) {
      await connection.query("INSERT INTO bench.rows_ (at, pad) VALUES (?, REPEAT('x', 100))", [
        last,
      ]);
      const now = epoch();
      report.inserts++;
      if (now - last > report.longestStallMs) {
        report.longestStallMs = now - last;
        report.stallStartedAt = last;
        report.stallEndedAt = now;
      }
      last = now;
    }
  } catch (error) {
    report.error = (error as Error).message;
  }
  await connection.end().catch(() => {});
  await stdinDone;
  console.log(JSON.stringify(report));
}
