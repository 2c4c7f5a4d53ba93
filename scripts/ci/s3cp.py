"""Copies one file to or from S3 with boto3 (the deploy tools' virtualenv has it; no
AWS CLI needed). Credentials, region and endpoint come from the environment, as for
every AWS SDK (AWS_ENDPOINT_URL_S3 points it at a stand-in).

    python scripts/ci/s3cp.py SRC DST      # one of them s3://bucket/key
"""
import sys

import boto3


def split(url: str) -> tuple[str, str]:
    bucket, _, key = url.removeprefix("s3://").partition("/")
    if not bucket or not key:
        sys.exit(f"{url}: expected s3://bucket/key")
    return bucket, key


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    src, dst = sys.argv[1:]
    s3 = boto3.client("s3")
    if dst.startswith("s3://") and not src.startswith("s3://"):
        s3.upload_file(src, *split(dst))
    elif src.startswith("s3://") and not dst.startswith("s3://"):
        s3.download_file(*split(src), dst)
    else:
        sys.exit("exactly one of SRC and DST must be an s3:// URL")


if __name__ == "__main__":
    main()
