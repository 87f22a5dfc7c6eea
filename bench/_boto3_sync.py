"""The boto3 candidate of ``bench/hydration.py``: a small sync loop as an image would bake it.

Lists ``s3://BUCKET/PREFIX``, fetches every object that is missing locally, has another size,
or whose ETag differs from the one recorded in ``--state`` by the previous run (so a same-size
rewrite is fetched whatever the file times say), with ``download_file`` (boto3's transfer
manager) in a thread pool. Keys come from ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``.
Prints one JSON line: ``{"listed": N, "fetched": N, "failed": N}``; exit 1 when any failed.
Not a script of its own for ``make bench`` (the leading underscore keeps it out).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

MIB = 1 << 20


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--prefix", required=True, help="ends with /")
    parser.add_argument("--dest", required=True, type=Path)
    parser.add_argument("--state", required=True, type=Path, help="key -> [size, etag] JSON")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--workers", type=int, default=32, help="files in flight")
    parser.add_argument("--part-concurrency", type=int, default=8, help="ranges per large file")
    args = parser.parse_args(argv)

    config = Config(region_name=args.region, s3={"addressing_style": "path"},
                    max_pool_connections=max(args.workers, 64), connect_timeout=10,
                    read_timeout=120, retries={"max_attempts": 10, "mode": "standard"},
                    request_checksum_calculation="when_required",
                    response_checksum_validation="when_required")
    client = boto3.session.Session().client("s3", endpoint_url=args.endpoint, config=config)
    # Large objects: ranged GETs on the transfer manager's own threads. Small ones: one GET in
    # the pool's thread (use_threads=True would start a thread pool per file).
    threshold = 32 * MIB
    large = TransferConfig(multipart_threshold=threshold, multipart_chunksize=16 * MIB,
                           max_concurrency=args.part_concurrency, use_threads=True)
    small = TransferConfig(multipart_threshold=threshold, use_threads=False)

    listing: dict[str, tuple[int, str]] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=args.bucket,
                                                                 Prefix=args.prefix):
        for item in page.get("Contents", []):
            rel = item["Key"][len(args.prefix):]
            if rel and not rel.endswith("/") and safe(rel):
                listing[rel] = (int(item["Size"]), str(item["ETag"]))

    try:
        previous = json.loads(args.state.read_text())
    except (OSError, ValueError):
        previous = {}

    def stale(rel: str) -> bool:
        size, etag = listing[rel]
        local = args.dest / rel
        return (previous.get(rel) != [size, etag] or not local.is_file()
                or local.stat().st_size != size)

    def fetch(rel: str) -> str:
        target = args.dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        config = large if listing[rel][0] >= threshold else small
        client.download_file(args.bucket, args.prefix + rel, str(target), Config=config)
        return rel

    todo = [rel for rel in sorted(listing) if stale(rel)]
    done: set[str] = set()
    failed = 0
    with ThreadPoolExecutor(max_workers=args.workers) as pool:
        for future in [pool.submit(fetch, rel) for rel in todo]:
            try:
                done.add(future.result())
            except Exception as exc:  # reported and counted; the loop goes on
                failed += 1
                print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)

    kept = {rel: list(listing[rel]) for rel in listing if rel in done or rel not in todo}
    temp = args.state.with_name(args.state.name + ".tmp")
    temp.write_text(json.dumps(kept))
    os.replace(temp, args.state)
    print(json.dumps({"listed": len(listing), "fetched": len(done), "failed": failed}))
    return 1 if failed else 0


def safe(rel: str) -> bool:
    return "\0" not in rel and all(part not in ("", ".", "..") for part in rel.split("/"))


if __name__ == "__main__":
    sys.exit(main())
