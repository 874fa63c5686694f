"""AWS clients for veil's re-signing tests, run inside a sandbox with only placeholders in
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN. Names under .amazonaws.test
resolve to REMOTE (the stand-in upstream's address; the sandbox has no DNS for them).

usage: aws_client.py REMOTE aws ARGS...            the AWS CLI (Debian's awscli)
       aws_client.py REMOTE boto3 S3_URL STS_URL BUCKET
                                                    boto3: put, get, list, get_caller_identity
       aws_client.py REMOTE chunked S3_URL BUCKET KEY SIZE [break]
                                                    a PUT with a STREAMING-AWS4-HMAC-SHA256-PAYLOAD
                                                    body signed by hand with the placeholders
                                                    ("break": one chunk signature malformed)
Prints what the call returned; exits non-zero when it failed.
"""
import datetime
import hashlib
import hmac
import http.client
import os
import socket
import ssl
import sys
from urllib.parse import urlsplit

REMOTE = sys.argv[1]
MODE = sys.argv[2]
ARGS = sys.argv[3:]

_getaddrinfo = socket.getaddrinfo


def getaddrinfo(host, *args, **kwargs):
    if isinstance(host, str) and host.endswith(".amazonaws.test"):
        host = REMOTE
    return _getaddrinfo(host, *args, **kwargs)


socket.getaddrinfo = getaddrinfo


def run_aws():
    from awscli.clidriver import main

    sys.argv = ["aws"] + ARGS
    sys.exit(main())


def run_boto3():
    import boto3
    from botocore.config import Config

    s3_url, sts_url, bucket = ARGS
    config = Config(s3={"addressing_style": "path"}, region_name="us-east-1")
    s3 = boto3.client("s3", endpoint_url=s3_url, config=config)
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="boto3.txt", Body=b"from boto3\n")
    got = s3.get_object(Bucket=bucket, Key="boto3.txt")["Body"].read()
    assert got == b"from boto3\n", got
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    sts = boto3.client("sts", endpoint_url=sts_url, config=config)
    identity = sts.get_caller_identity()
    print(f"boto3 ok keys={','.join(keys)} account={identity['Account']}")


def sign(key, text):
    return hmac.new(key, text.encode(), hashlib.sha256)


def run_chunked():
    s3_url, bucket, key, size = ARGS[:4]
    broken = ARGS[4:] == ["break"]
    url = urlsplit(s3_url)
    key_id = os.environ["AWS_ACCESS_KEY_ID"]
    secret = os.environ["AWS_SECRET_ACCESS_KEY"]
    token = os.environ.get("AWS_SESSION_TOKEN")
    data = (b"veil chunked upload " * (int(size) // 20 + 1))[: int(size)]
    chunk_size = 64 * 1024
    chunks = [data[i : i + chunk_size] for i in range(0, len(data), chunk_size)] + [b""]
    now = datetime.datetime.now(datetime.timezone.utc)
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    scope = f"{day}/us-east-1/s3/aws4_request"
    host = url.netloc
    path = f"/{bucket}/{key}"
    # Each chunk: "<hex size>;chunk-signature=<64 hex>\r\n<data>\r\n".
    body_length = sum(len(f"{len(c):x};chunk-signature=") + 64 + 2 + len(c) + 2 for c in chunks)
    headers = {
        "host": host,
        "content-encoding": "aws-chunked",
        "content-length": str(body_length),
        "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        "x-amz-date": amz_date,
        "x-amz-decoded-content-length": str(len(data)),
    }
    if token:
        headers["x-amz-security-token"] = token
    names = sorted(headers)
    canonical = "\n".join(
        ["PUT", path, "", *(f"{n}:{headers[n]}" for n in names), "", ";".join(names),
         "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"]
    )
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    k = ("AWS4" + secret).encode()
    for part in (day, "us-east-1", "s3", "aws4_request"):
        k = sign(k, part).digest()
    previous = sign(k, to_sign).hexdigest()
    headers["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={key_id}/{scope}, SignedHeaders={';'.join(names)}, "
        f"Signature={previous}"
    )
    body = b""
    empty = hashlib.sha256(b"").hexdigest()
    for i, chunk in enumerate(chunks):
        string = "\n".join(
            ["AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, previous, empty,
             hashlib.sha256(chunk).hexdigest()]
        )
        previous = sign(k, string).hexdigest()
        signature = previous
        if broken and i == 2:
            signature = "z" * 64
        body += f"{len(chunk):x};chunk-signature={signature}\r\n".encode() + chunk + b"\r\n"
    assert len(body) == body_length
    context = ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
    conn = http.client.HTTPSConnection(url.hostname, url.port, context=context, timeout=60)
    conn.putrequest("PUT", path, skip_host=True, skip_accept_encoding=True)
    for name, value in headers.items():
        conn.putheader(name, value)
    conn.endheaders()
    try:
        for i in range(0, len(body), 10_000):
            conn.send(body[i : i + 10_000])
        response = conn.getresponse()
        print(response.status, response.read().decode(errors="replace"))
        sys.exit(0 if response.status == 200 else 1)
    except (OSError, http.client.HTTPException) as e:
        print("failed:", type(e).__name__, e)
        sys.exit(2)


{"aws": run_aws, "boto3": run_boto3, "chunked": run_chunked}[MODE]()
