/** Where the AWS credentials come from, as the plan chose (plan/credentials.ts) and aws/credentials.ts uses. */

/** Static AWS credentials (the shape of the SDK's StaticCredentials, without the SDK). */
export interface StaticCredentials {
  /** The access key id, e.g. "AKIAIOSFODNN7EXAMPLE". */
  accessKeyId: string;
  /** The secret access key; registered as a secret, never printed. */
  secretAccessKey: string;
  /** The session token of temporary credentials. */
  sessionToken?: string;
}

/** Where the credentials come from; `describe` is what --debug prints (never the secret). */
export type CredentialSource =
  | { kind: "static"; describe: string; identity: StaticCredentials }
  | { kind: "profile"; describe: string; profile: string }
  | { kind: "instance-role"; describe: string }
  | {
    kind: "sdk-default-chain";
    describe: string;
    /** The one line that says where the tool looked, and how to give credentials. */
    whenMissing: string;
  };
