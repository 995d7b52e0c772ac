/**
 * Peak memory of the program as it ships, from outside (the kernel's high-water mark of the
 * process, through getrusage of its waiting parent): a dry run below 50 MB, and a full run of one
 * volume (frozen, snapshot created) below 70 MB, the old Perl tool's peak for the same run
 * (issue 21; scripts/BENCH.md has the side-by-side figures). Medians of three runs after one that
 * fills deno's code cache. No timings are asserted.
 */
import { assert, assertEquals } from "./support/assert.ts";
import { MOTO, startMoto } from "./support/moto.ts";
import { baseEnv, programCommand, ROOT } from "./support/program.ts";
import { ignoreUnless } from "./support/real.ts";
import { withXfsMount, xfsRequirement } from "./support/xfs.ts";

const XFS = await xfsRequirement();

/** Runs the command line and prints, on stderr's last line, the largest child's peak RSS in KB. */
const PEAK_RSS = "import resource, subprocess, sys\n" +
  "code = subprocess.run(sys.argv[1:], stdin=subprocess.DEVNULL).returncode\n" +
  "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n" +
  "sys.exit(code)\n";

/** The median peak RSS in MB of three runs (one more first, unmeasured). */
async function medianPeakMb(args: string[], env: Record<string, string>): Promise<number> {
  const { cmd, args: all } = programCommand(args);
  const peaks: number[] = [];
  for (let run = 0; run < 4; run++) {
    const out = await new Deno.Command("python3", {
      args: ["-c", PEAK_RSS, cmd, ...all],
      env,
      clearEnv: true,
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr).trim();
    assertEquals(out.code, 0, stderr);
    if (run > 0) peaks.push(Number(stderr.split("\n").at(-1)) / 1024);
  }
  return peaks.sort((a, b) => a - b)[1];
}

Deno.test("a dry run peaks below 50 MB", async () => {
  const peak = await medianPeakMb(
    ["--noaction", "--region", "us-east-1", "vol-0123456789abcdef0"],
    baseEnv({ AWS_ACCESS_KEY_ID: "AKIDEXAMPLE", AWS_SECRET_ACCESS_KEY: "example" }),
  );
  assert(peak < 50, `--noaction peaked at ${peak.toFixed(1)} MB`);
});

Deno.test("a full run of one volume, frozen and snapshotted, peaks below 70 MB", {
  ignore: ignoreUnless(MOTO, XFS),
}, async () => {
  const moto = await startMoto();
  try {
    const [volume] = await moto.createVolumes(1);
    await withXfsMount(async (mount) => {
      const peak = await medianPeakMb(
        ["--region", "us-east-1", "--freeze-filesystem", mount.mountPoint, volume],
        baseEnv(moto.env),
      );
      assert(peak < 70, `a full run peaked at ${peak.toFixed(1)} MB`);
    });
  } finally {
    await moto.stop();
  }
});
