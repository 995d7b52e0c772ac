/** Unit tests of the benchmark's pure helpers (no timings are asserted anywhere). */
import { assertEquals } from "./support/assert.ts";
import {
  formatFigure,
  median,
  pair,
  parseMaxRssKb,
  parseStatusKb,
  parseVmHwmKb,
  table,
  worst,
} from "../scripts/bench_stats.ts";

Deno.test("median: odd and even counts, nulls skipped, none", () => {
  assertEquals(median([3, 1, 2]), 2);
  assertEquals(median([4, 1, 3, 2]), 2.5);
  assertEquals(median([null, 5, null]), 5);
  assertEquals(median([]), null);
  assertEquals(median([null]), null);
});

Deno.test("worst: the largest, nulls skipped, none", () => {
  assertEquals(worst([3, null, 7, 1]), 7);
  assertEquals(worst([null]), null);
});

Deno.test("parseMaxRssKb: GNU time -v and -f %M", () => {
  const verbose = '\tCommand being timed: "deno"\n\tMaximum resident set size (kbytes): 51234\n';
  assertEquals(parseMaxRssKb(verbose), 51234);
  assertEquals(parseMaxRssKb("109876\n"), 109876);
  assertEquals(parseMaxRssKb("Command exited with non-zero status 1\n4242\n"), 4242);
  assertEquals(parseMaxRssKb("nothing here"), null);
});

Deno.test("parseVmHwmKb: /proc/PID/status", () => {
  assertEquals(parseVmHwmKb("Name:\tdeno\nVmPeak:\t  900 kB\nVmHWM:\t   4242 kB\n"), 4242);
  assertEquals(parseVmHwmKb("Name:\tdeno\n"), null);
  assertEquals(parseStatusKb("VmHWM:\t 9 kB\nVmRSS:\t  77 kB\n", "VmRSS"), 77);
});

Deno.test("formatFigure", () => {
  assertEquals(formatFigure(12.6, "ms"), "13 ms");
  assertEquals(formatFigure(null, "MB"), "-");
  assertEquals(formatFigure(0.25, "s"), "0.25 s");
});

Deno.test("table and pair: padded Markdown, median / worst in MB or ms", () => {
  assertEquals(table(["a", "b"], [["1", "22"]]), "| a | b  |\n|---|----|\n| 1 | 22 |");
  assertEquals(pair([1024, 3072, 2048], "MB"), "2 MB / 3 MB");
  assertEquals(pair([10, null, 30], "ms"), "20 ms / 30 ms");
  assertEquals(pair([null], "ms"), "-");
});
