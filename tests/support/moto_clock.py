"""moto_server whose EBS snapshots start at a time the test chooses.

moto stamps StartTime with the current time and offers no way to set it. This launcher runs
moto's own server with that one clock replaced: when the file named by $ECS_MOTO_CLOCK holds an
ISO time (UTC, e.g. 2021-01-01T10:00:00), new snapshots start then; when it is empty or
missing, they start now. Usage: python moto_clock.py -H 127.0.0.1 -p PORT
"""
import datetime
import os
import sys

import moto.core.utils
import moto.ec2.models.elastic_block_store as ebs
from moto.server import main

_real_utcnow = moto.core.utils.utcnow
_clock = os.environ.get("ECS_MOTO_CLOCK", "")


def chosen_utcnow() -> datetime.datetime:
    try:
        with open(_clock, encoding="utf-8") as f:
            text = f.read().strip()
    except OSError:
        text = ""
    if not text:
        return _real_utcnow()
    return datetime.datetime.fromisoformat(text.removesuffix("Z")).replace(tzinfo=None)


ebs.utcnow = chosen_utcnow

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
