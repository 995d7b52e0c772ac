"""EC2 through boto3, from outside the program under test (moto's endpoint, dummy keys).

  python ec2_boto3.py create ENDPOINT CLOCK_FILE VOLUME_ID KEY=VALUE[;K=V] TIME...
      one snapshot of VOLUME_ID per TIME (ISO, UTC), tagged as given, started at TIME
      (the clock file is read by moto_clock.py); prints their ids as a JSON list
  python ec2_boto3.py list ENDPOINT VOLUME_ID...
      prints the snapshots of these volumes as JSON: id, volume, start time, state, tags
"""
import json
import sys

import boto3


def client(endpoint):
    return boto3.client(
        "ec2",
        region_name="us-east-1",
        endpoint_url=endpoint,
        aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
        aws_secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    )


def create(endpoint, clock, volume, tags, times):
    ec2 = client(endpoint)
    pairs = [t.split("=", 1) for t in tags.split(";") if t]
    spec = [{"ResourceType": "snapshot", "Tags": [{"Key": k, "Value": v} for k, v in pairs]}]
    ids = []
    try:
        for time in times:
            with open(clock, "w", encoding="utf-8") as f:
                f.write(time)
            out = ec2.create_snapshot(VolumeId=volume, TagSpecifications=spec)
            ids.append(out["SnapshotId"])
    finally:
        with open(clock, "w", encoding="utf-8") as f:
            f.write("")
    print(json.dumps(ids))


def list_snapshots(endpoint, volumes):
    ec2 = client(endpoint)
    pages = ec2.get_paginator("describe_snapshots").paginate(
        Filters=[{"Name": "volume-id", "Values": volumes}]
    )
    out = []
    for page in pages:
        for s in page["Snapshots"]:
            out.append({
                "id": s["SnapshotId"],
                "volume": s["VolumeId"],
                "start": s["StartTime"].isoformat(),
                "state": s["State"],
                "tags": {t["Key"]: t["Value"] for t in s.get("Tags", [])},
            })
    print(json.dumps(out))


if __name__ == "__main__":
    if sys.argv[1] == "create":
        create(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6:])
    elif sys.argv[1] == "list":
        list_snapshots(sys.argv[2], sys.argv[3:])
    else:
        sys.exit(f"unknown command {sys.argv[1]}")
