/** What a restore drill restores; the plan decides it, EC2 lookups read it. */

/** What the drill restores: a run by id, the run of a snapshot, or the newest run of volumes. */
export type DrillTarget =
  | { kind: "run"; runId: string }
  | { kind: "snapshot"; snapshotId: string }
  | { kind: "latest"; volumeIds: string[] };
