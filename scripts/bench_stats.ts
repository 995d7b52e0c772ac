/** Pure helpers of the benchmark: medians, worst values, and parsing of memory figures. */

/**
 * The median of the numbers (the mean of the two middle ones for an even count); null when
 * there are none.
 *
 * @example
 * ```ts
 * median([3, 1, 2]); // 2
 * ```
 */
export function median(values: readonly (number | null)[]): number | null {
  const sorted = values.filter((v): v is number => v !== null).sort((a, b) => a - b);
  if (sorted.length === 0) return null;
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/**
 * The largest of the numbers; null when there are none.
 *
 * @example
 * ```ts
 * worst([3, null, 7]); // 7
 * ```
 */
export function worst(values: readonly (number | null)[]): number | null {
  const present = values.filter((v): v is number => v !== null);
  return present.length === 0 ? null : Math.max(...present);
}

/**
 * The peak resident set size in kilobytes from the output of GNU time: either `-v`
 * ("Maximum resident set size (kbytes): N") or a `-f %M` line holding only the number.
 *
 * @example
 * ```ts
 * parseMaxRssKb("\tMaximum resident set size (kbytes): 51234\n"); // 51234
 * ```
 */
export function parseMaxRssKb(text: string): number | null {
  const verbose = /Maximum resident set size \(kbytes\):\s*(\d+)/.exec(text);
  if (verbose) return Number(verbose[1]);
  const bare = /^\s*(\d+)\s*$/m.exec(text);
  return bare ? Number(bare[1]) : null;
}

/**
 * A size field in kilobytes (`VmRSS`, `VmHWM`, ...) from the text of /proc/PID/status.
 *
 * @example
 * ```ts
 * parseStatusKb("VmPeak:\t 100 kB\nVmHWM:\t   4242 kB\n", "VmHWM"); // 4242
 * ```
 */
export function parseStatusKb(text: string, field: string): number | null {
  const match = new RegExp(`^${field}:\\s*(\\d+)\\s*kB`, "m").exec(text);
  return match ? Number(match[1]) : null;
}

/** The peak resident set size in kilobytes from the text of /proc/PID/status (`VmHWM`). */
export function parseVmHwmKb(text: string): number | null {
  return parseStatusKb(text, "VmHWM");
}

/** How a figure is shown in the table: whole milliseconds or megabytes, or "-" when absent. */
export function formatFigure(value: number | null, unit: "ms" | "MB" | "s"): string {
  if (value === null) return "-";
  if (unit === "s") return `${value.toFixed(2)} s`;
  return `${Math.round(value)} ${unit}`;
}

/**
 * A Markdown table, columns padded to their widest cell.
 *
 * @example
 * ```ts
 * table(["a", "b"], [["1", "22"]]); // "| a | b  |\n|---|----|\n| 1 | 22 |"
 * ```
 */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(" | ")} |`;
  return [line(header), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.map(line)]
    .join("\n");
}

/**
 * "median / worst" of the values (kilobytes shown as MB), or "-" when there are none.
 *
 * @example
 * ```ts
 * pair([1024, 3072, 2048], "MB"); // "2 MB / 3 MB"
 * ```
 */
export function pair(values: readonly (number | null)[], unit: "ms" | "MB"): string {
  const scale = (v: number | null) => v === null ? null : unit === "MB" ? v / 1024 : v;
  const m = scale(median(values));
  const w = scale(worst(values));
  return m === null ? "-" : `${formatFigure(m, unit)} / ${formatFigure(w, unit)}`;
}
