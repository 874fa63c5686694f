"""An S3-style PUT with a STREAMING-AWS4-HMAC-SHA256-PAYLOAD body (aws-chunked, every chunk
signed), as the Java, Go and JS SDKs upload, for `cargo xtask bench` scenario 11.

usage: sigv4_put.py CONNECT_IP PORT HOST SIZE_BYTES CHUNK_BYTES
The key comes from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (the real key when run
directly, veil's placeholders in a sandbox, where veil signs every chunk again). The body is
built and signed before the clock starts; the time covers connecting, sending it and reading
the answer. Prints one JSON line: {"status": ..., "seconds": ..., "bytes": ...}.
"""
import datetime
import hashlib
import hmac
import json
import os
import socket
import ssl
import sys
import time

CONNECT_IP, PORT, HOST = sys.argv[1], int(sys.argv[2]), sys.argv[3]
SIZE, CHUNK = int(sys.argv[4]), int(sys.argv[5])
KEY_ID = os.environ["AWS_ACCESS_KEY_ID"]
SECRET = os.environ["AWS_SECRET_ACCESS_KEY"]
PATH = "/upload"
ALGORITHM = "AWS4-HMAC-SHA256"
STREAMING = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"


def hmac_sha256(key, text):
    return hmac.new(key, text.encode(), hashlib.sha256)


def main():
    data = bytes(range(256)) * (SIZE // 256 + 1)
    data = data[:SIZE]
    chunks = [data[i : i + CHUNK] for i in range(0, SIZE, CHUNK)] + [b""]
    now = datetime.datetime.now(datetime.timezone.utc)
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    scope = f"{day}/us-east-1/s3/aws4_request"
    length = sum(len(f"{len(c):x};chunk-signature=") + 64 + 4 + len(c) for c in chunks)
    headers = {
        "host": f"{HOST}:{PORT}",
        "content-encoding": "aws-chunked",
        "content-length": str(length),
        "x-amz-content-sha256": STREAMING,
        "x-amz-date": amz_date,
        "x-amz-decoded-content-length": str(SIZE),
    }
    names = sorted(headers)
    canonical = "\n".join(
        ["PUT", PATH, "", *(f"{n}:{headers[n]}" for n in names), "", ";".join(names), STREAMING]
    )
    to_sign = "\n".join(
        [ALGORITHM, amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = ("AWS4" + SECRET).encode()
    for part in (day, "us-east-1", "s3", "aws4_request"):
        key = hmac_sha256(key, part).digest()
    previous = hmac_sha256(key, to_sign).hexdigest()
    headers["authorization"] = (
        f"{ALGORITHM} Credential={KEY_ID}/{scope}, SignedHeaders={';'.join(names)}, "
        f"Signature={previous}"
    )
    empty = hashlib.sha256(b"").hexdigest()
    parts = []
    for chunk in chunks:
        string = "\n".join(
            [f"{ALGORITHM}-PAYLOAD", amz_date, scope, previous, empty,
             hashlib.sha256(chunk).hexdigest()]
        )
        previous = hmac_sha256(key, string).hexdigest()
        parts.append(f"{len(chunk):x};chunk-signature={previous}\r\n".encode() + chunk + b"\r\n")
    body = b"".join(parts)
    head = f"PUT {PATH} HTTP/1.1\r\n" + "".join(f"{n}: {v}\r\n" for n, v in headers.items())
    request = head.encode() + b"connection: close\r\n\r\n"
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    started = time.monotonic()
    with socket.create_connection((CONNECT_IP, PORT)) as raw:
        with context.wrap_socket(raw, server_hostname=HOST) as tls:
            tls.sendall(request)
            view = memoryview(body)
            for i in range(0, len(body), 1 << 20):
                tls.sendall(view[i : i + (1 << 20)])
            answer = b""
            while b"\r\n" not in answer:
                got = tls.recv(4096)
                if not got:
                    break
                answer += got
    seconds = time.monotonic() - started
    status = answer.split(b" ")[1].decode() if answer.count(b" ") else "none"
    print(json.dumps({"status": status, "seconds": seconds, "bytes": SIZE}))


main()
