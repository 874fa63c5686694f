"""A stand-in AWS endpoint over TLS for veil's SigV4 re-signing tests: every request must carry a
SigV4 signature made with the REAL credentials given on the command line, or it is answered 403
with an S3-style XML error (the reason goes to stderr).

Signatures are checked with botocore's own signer as the reference (Debian's python3-botocore, or
the copy inside Debian's awscli): the canonical request is rebuilt from the method, raw path,
query and the signed headers as received, signed with the real key, and compared. Presigned URLs
(X-Amz-Signature in the query) are checked the same way with botocore's query signer.
aws-chunked bodies are decoded: STREAMING-AWS4-HMAC-SHA256-PAYLOAD chunk signatures are checked
along the chain from the request signature; STREAMING-UNSIGNED-PAYLOAD-TRAILER bodies are decoded
and their trailers recorded; a hex x-amz-content-sha256 must match the body.

Enough S3 for the AWS CLI and boto3: PutObject (single and multipart: CreateMultipartUpload,
UploadPart, CompleteMultipartUpload), GetObject, HeadObject, DeleteObject, CreateBucket,
ListObjectsV2 (path-style: /bucket/key), and STS GetCallerIdentity (POST form, service `sts`).
Objects live in memory.

Every request is logged as one JSON line (to stderr, and appended to --log FILE if given) with
what the client sent: method, path, auth kind, x-amz-content-sha256, Content-Encoding,
Transfer-Encoding, Content-Length, x-amz-decoded-content-length, trailer names, verdict.

usage: sigv4_upstream.py ADDRESS CERT_FILE KEY_FILE ACCESS_KEY_ID SECRET_ACCESS_KEY
                         [--session-token TOKEN] [--port PORT] [--log FILE]
Prints the port it listens on, then serves until killed.
"""
import argparse
import datetime
import hashlib
import hmac
import http.server
import json
import re
import ssl
import sys
import threading
import uuid
from xml.sax.saxutils import escape
from urllib.parse import parse_qsl, unquote

try:
    from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth, SigV4Auth, SigV4QueryAuth
    from botocore.awsrequest import AWSRequest, HTTPHeaders
    from botocore.credentials import Credentials
except ImportError:  # Debian's awscli carries its own botocore
    from awscli.botocore.auth import S3SigV4Auth, S3SigV4QueryAuth, SigV4Auth, SigV4QueryAuth
    from awscli.botocore.awsrequest import AWSRequest, HTTPHeaders
    from awscli.botocore.credentials import Credentials

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
AUTH_RE = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=([^,]+),\s*SignedHeaders=([^,]+),\s*Signature=([0-9a-f]{64})$"
)
MAX_BODY = 256 << 20
ACCOUNT = "123456789012"

parser = argparse.ArgumentParser()
parser.add_argument("address")
parser.add_argument("certfile")
parser.add_argument("keyfile")
parser.add_argument("access_key_id")
parser.add_argument("secret_access_key")
parser.add_argument("--session-token")
parser.add_argument("--port", type=int, default=0)
parser.add_argument("--log")
ARGS = parser.parse_args()

LOCK = threading.Lock()
OBJECTS = {}  # (bucket, key) -> (bytes, content_type)
BUCKETS = set()
UPLOADS = {}  # upload id -> {part number: bytes}


class Refused(Exception):
    """A request that fails verification: HTTP status, S3 error code, reason."""

    def __init__(self, status, code, why):
        super().__init__(why)
        self.status, self.code, self.why = status, code, why


def log(record):
    line = json.dumps(record, sort_keys=True)
    print("sigv4_upstream: " + line, file=sys.stderr, flush=True)
    if ARGS.log:
        with LOCK, open(ARGS.log, "a") as f:
            f.write(line + "\n")


def signing_key(date, region, service):
    key = ("AWS4" + ARGS.secret_access_key).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def parse_credential(handler, text):
    parts = text.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request":
        raise Refused(403, "AuthorizationHeaderMalformed", f"bad credential scope {text!r}")
    key_id, date, region, service, _ = parts
    handler.service = service
    if key_id != ARGS.access_key_id:
        raise Refused(403, "InvalidAccessKeyId", f"access key id {key_id!r} is not the real one")
    return date, region, service


def check_clock(amz_date, valid_for):
    try:
        when = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(
            tzinfo=datetime.timezone.utc
        )
    except ValueError:
        raise Refused(403, "AccessDenied", f"bad X-Amz-Date {amz_date!r}")
    now = datetime.datetime.now(datetime.timezone.utc)
    if when - now > datetime.timedelta(minutes=15) or now - when > datetime.timedelta(
        seconds=max(valid_for, 900)
    ):
        raise Refused(403, "RequestTimeTooSkewed", f"X-Amz-Date {amz_date} is too far from now")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    # ---- reading ------------------------------------------------------------------------

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            body = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(body)
                body += self.rfile.read(size)
                self.rfile.readline()
                if len(body) > MAX_BODY:
                    raise Refused(413, "EntityTooLarge", "body too large")
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise Refused(413, "EntityTooLarge", "body too large")
        return self.rfile.read(length) if length else b""

    # ---- verification -------------------------------------------------------------------

    def signed_request(self, url, signed_names, body, amz_date):
        headers = HTTPHeaders()
        for name in signed_names:
            values = self.headers.get_all(name)
            if not values:
                raise Refused(403, "AccessDenied", f"signed header {name!r} is missing")
            for value in values:
                headers[name] = value
        request = AWSRequest(method=self.command, url=url, headers=headers, data=body)
        request.context["timestamp"] = amz_date
        return request

    def check_token(self, token):
        if ARGS.session_token is None:
            if token is not None:
                raise Refused(403, "InvalidToken", "a session token was sent but none is expected")
        elif token != ARGS.session_token:
            raise Refused(403, "InvalidToken", "the session token is not the real one")

    def verify(self, body, record):
        """Checks the signature; returns (service, decoded body)."""
        host = self.headers.get("Host", "")
        path, _, query = self.path.partition("?")
        authorization = self.headers.get("Authorization")
        params = parse_qsl(query, keep_blank_values=True)
        names = [k for k, _ in params]
        if authorization is not None:
            record["auth"] = "header"
            match = AUTH_RE.match(authorization.strip())
            if not match:
                raise Refused(403, "AuthorizationHeaderMalformed", f"bad Authorization {authorization!r}")
            credential, signed, signature = match.groups()
            date, region, service = parse_credential(self, credential)
            amz_date = self.headers.get("X-Amz-Date", "")
            check_clock(amz_date, 0)
            self.check_token(self.headers.get("X-Amz-Security-Token"))
            request = self.signed_request(f"https://{host}{self.path}", signed.split(";"), body, amz_date)
            signer_class = S3SigV4Auth if service == "s3" else SigV4Auth
            signer = signer_class(
                Credentials(ARGS.access_key_id, ARGS.secret_access_key, ARGS.session_token),
                service,
                region,
            )
        elif "X-Amz-Signature" in names:
            record["auth"] = "query"
            q = dict(params)
            if q.get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256":
                raise Refused(403, "AuthorizationQueryParametersError", "bad X-Amz-Algorithm")
            date, region, service = parse_credential(self, q.get("X-Amz-Credential", ""))
            amz_date = q.get("X-Amz-Date", "")
            check_clock(amz_date, int(q.get("X-Amz-Expires", "0")))
            self.check_token(q.get("X-Amz-Security-Token"))
            signature = q["X-Amz-Signature"]
            kept = "&".join(p for p in query.split("&") if not p.startswith("X-Amz-Signature="))
            request = self.signed_request(
                f"https://{host}{path}?{kept}", q.get("X-Amz-SignedHeaders", "").split(";"), body, amz_date
            )
            signer_class = S3SigV4QueryAuth if service == "s3" else SigV4QueryAuth
            signer = signer_class(
                Credentials(ARGS.access_key_id, ARGS.secret_access_key, ARGS.session_token),
                service,
                region,
                int(q.get("X-Amz-Expires", "3600")),
            )
        else:
            raise Refused(403, "AccessDenied", "the request is not signed")
        if amz_date[:8] != date:
            raise Refused(403, "AuthorizationHeaderMalformed", "scope date is not X-Amz-Date's day")
        canonical = signer.canonical_request(request)
        string_to_sign = signer.string_to_sign(request, canonical)
        expected = signer.signature(string_to_sign, request)
        if not hmac.compare_digest(expected, signature):
            print(
                f"sigv4_upstream: signature mismatch; canonical request:\n{canonical}\n---",
                file=sys.stderr,
                flush=True,
            )
            raise Refused(403, "SignatureDoesNotMatch", "the signature does not match the real key")
        return service, self.decode_payload(body, signature, amz_date, f"{date}/{region}/{service}/aws4_request", record)

    def decode_payload(self, body, seed, amz_date, scope, record):
        mode = self.headers.get("X-Amz-Content-SHA256")
        if mode is None or mode == "UNSIGNED-PAYLOAD":
            return body
        if mode == "STREAMING-AWS4-HMAC-SHA256-PAYLOAD":
            return self.decode_signed_chunks(body, seed, amz_date, scope, record)
        if mode == "STREAMING-UNSIGNED-PAYLOAD-TRAILER":
            return self.decode_unsigned_chunks(body, record)
        if mode.startswith("STREAMING-"):
            raise Refused(400, "InvalidRequest", f"payload mode {mode} is not supported here")
        if hashlib.sha256(body).hexdigest() != mode:
            raise Refused(400, "XAmzContentSHA256Mismatch", "the body does not match x-amz-content-sha256")
        return body

    def decode_signed_chunks(self, body, seed, amz_date, scope, record):
        date, region, service, _ = scope.split("/")
        key = signing_key(date, region, service)
        previous, at, out, sizes = seed, 0, bytearray(), []
        while True:
            end = body.find(b"\r\n", at)
            header = body[at:end].decode("ascii", "replace")
            m = re.fullmatch(r"([0-9a-fA-F]+);chunk-signature=([0-9a-f]{64})", header)
            if end < 0 or not m:
                raise Refused(400, "IncompleteBody", f"bad aws-chunked chunk header {header[:100]!r}")
            size = int(m.group(1), 16)
            data = body[end + 2 : end + 2 + size]
            if len(data) != size or body[end + 2 + size : end + 4 + size] != b"\r\n":
                raise Refused(400, "IncompleteBody", "aws-chunked chunk data truncated")
            to_sign = "\n".join(
                ["AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, previous, EMPTY_SHA256,
                 hashlib.sha256(data).hexdigest()]
            )
            expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
            if not hmac.compare_digest(expected, m.group(2)):
                raise Refused(403, "SignatureDoesNotMatch", f"chunk {len(sizes)} signature does not match")
            previous = expected
            sizes.append(size)
            out += data
            at = end + 4 + size
            if size == 0:
                break
        if at != len(body):
            raise Refused(400, "IncompleteBody", "bytes after the final aws-chunked chunk")
        record["chunk_sizes"] = sizes
        return bytes(out)

    def decode_unsigned_chunks(self, body, record):
        at, out, sizes = 0, bytearray(), []
        while True:
            end = body.find(b"\r\n", at)
            if end < 0:
                raise Refused(400, "IncompleteBody", "aws-chunked body truncated")
            size = int(body[at:end].split(b";")[0], 16)
            sizes.append(size)
            if size == 0:
                break
            out += body[end + 2 : end + 2 + size]
            at = end + 4 + size
        trailers = [t.split(b":")[0].decode() for t in body[end + 2 :].split(b"\r\n") if t]
        record["chunk_sizes"], record["trailers"] = sizes, trailers
        return bytes(out)

    # ---- replies ------------------------------------------------------------------------

    def reply(self, status, payload=b"", headers=(), content_type="application/xml"):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if payload or status not in (204, 304):
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def error(self, status, code, why):
        if getattr(self, "service", None) == "sts":
            payload = (
                '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
                f"<Code>{code}</Code><Message>{escape(why)}</Message></Error>"
                f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
            ).encode()
            self.reply(status, payload, content_type="text/xml")
            return
        payload = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
            f"<Message>{escape(why)}</Message><RequestId>{uuid.uuid4().hex}</RequestId></Error>"
        ).encode()
        self.reply(status, payload)

    # ---- operations ---------------------------------------------------------------------

    def handle_any(self):
        record = {
            "method": self.command,
            "path": self.path.partition("?")[0],
            "query_names": [k for k, _ in parse_qsl(self.path.partition("?")[2], keep_blank_values=True)],
            "x_amz_content_sha256": self.headers.get("X-Amz-Content-SHA256"),
            "content_encoding": self.headers.get("Content-Encoding"),
            "transfer_encoding": self.headers.get("Transfer-Encoding"),
            "content_length": self.headers.get("Content-Length"),
            "decoded_content_length": self.headers.get("X-Amz-Decoded-Content-Length"),
            "trailer": self.headers.get("X-Amz-Trailer"),
            "user_agent": self.headers.get("User-Agent"),
        }
        self.service = None
        try:
            body = self.read_body()
            service, data = self.verify(body, record)
            record["verdict"] = "ok"
            log(record)
            if service == "sts":
                self.sts(data)
            else:
                self.s3(data)
        except Refused as refused:
            record["verdict"] = f"{refused.code}: {refused.why}"
            log(record)
            self.close_connection = True
            self.error(refused.status, refused.code, refused.why)

    def sts(self, data):
        form = dict(parse_qsl(data.decode(), keep_blank_values=True))
        if form.get("Action") != "GetCallerIdentity":
            self.error(400, "InvalidAction", "only GetCallerIdentity is implemented")
            return
        payload = (
            '<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
            f"<GetCallerIdentityResult><Arn>arn:aws:iam::{ACCOUNT}:user/veil-test</Arn>"
            f"<UserId>AIDAVEILTEST</UserId><Account>{ACCOUNT}</Account></GetCallerIdentityResult>"
            f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata>"
            "</GetCallerIdentityResponse>"
        ).encode()
        self.reply(200, payload, content_type="text/xml")

    def s3(self, data):
        path, _, query = self.path.partition("?")
        q = dict(parse_qsl(query, keep_blank_values=True))
        bucket, _, key = unquote(path).lstrip("/").partition("/")
        method = self.command
        if not bucket:
            self.error(400, "InvalidRequest", "path-style /bucket/key expected")
        elif not key:
            self.s3_bucket(method, bucket, q)
        elif method == "PUT" and "uploadId" in q:
            with LOCK:
                parts = UPLOADS.get(q["uploadId"])
                if parts is None:
                    self.error(404, "NoSuchUpload", "no such upload")
                    return
                parts[int(q.get("partNumber", "0"))] = data
            self.reply(200, headers=[("ETag", f'"{hashlib.md5(data).hexdigest()}"')])
        elif method == "PUT":
            with LOCK:
                OBJECTS[(bucket, key)] = (data, self.headers.get("Content-Type", "binary/octet-stream"))
            self.reply(200, headers=[("ETag", f'"{hashlib.md5(data).hexdigest()}"')])
        elif method == "POST" and "uploads" in q:
            upload = uuid.uuid4().hex
            with LOCK:
                UPLOADS[upload] = {}
            self.reply(
                200,
                (
                    '<?xml version="1.0" encoding="UTF-8"?><InitiateMultipartUploadResult>'
                    f"<Bucket>{bucket}</Bucket><Key>{key}</Key><UploadId>{upload}</UploadId>"
                    "</InitiateMultipartUploadResult>"
                ).encode(),
            )
        elif method == "POST" and "uploadId" in q:
            with LOCK:
                parts = UPLOADS.pop(q["uploadId"], None)
                if parts is not None:
                    whole = b"".join(parts[n] for n in sorted(parts))
                    OBJECTS[(bucket, key)] = (whole, "binary/octet-stream")
            if parts is None:
                self.error(404, "NoSuchUpload", "no such upload")
                return
            self.reply(
                200,
                (
                    '<?xml version="1.0" encoding="UTF-8"?><CompleteMultipartUploadResult>'
                    f"<Bucket>{bucket}</Bucket><Key>{key}</Key>"
                    f'<ETag>"{hashlib.md5(whole).hexdigest()}-{len(parts)}"</ETag>'
                    "</CompleteMultipartUploadResult>"
                ).encode(),
            )
        elif method in ("GET", "HEAD"):
            with LOCK:
                found = OBJECTS.get((bucket, key))
            if found is None:
                self.error(404, "NoSuchKey", "no such key")
                return
            payload, content_type = found
            headers = [("ETag", f'"{hashlib.md5(payload).hexdigest()}"'),
                       ("Last-Modified", "Thu, 01 Jan 2026 00:00:00 GMT"), ("Accept-Ranges", "bytes")]
            status = 200
            wanted = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
            if wanted and int(wanted.group(1)) < len(payload):
                first = int(wanted.group(1))
                last = min(int(wanted.group(2) or len(payload) - 1), len(payload) - 1)
                headers.append(("Content-Range", f"bytes {first}-{last}/{len(payload)}"))
                payload, status = payload[first : last + 1], 206
            self.reply(status, payload, headers=headers, content_type=content_type)
        elif method == "DELETE":
            with LOCK:
                OBJECTS.pop((bucket, key), None)
            self.reply(204)
        else:
            self.error(405, "MethodNotAllowed", f"{method} is not implemented")

    def s3_bucket(self, method, bucket, q):
        if method == "PUT":
            with LOCK:
                BUCKETS.add(bucket)
            self.reply(200, headers=[("Location", f"/{bucket}")])
        elif method in ("GET", "HEAD"):
            prefix = q.get("prefix", "")
            with LOCK:
                keys = sorted((k, len(v[0])) for (b, k), v in OBJECTS.items() if b == bucket and k.startswith(prefix))
            contents = "".join(
                f"<Contents><Key>{k}</Key><Size>{n}</Size><LastModified>2026-01-01T00:00:00.000Z</LastModified>"
                "<StorageClass>STANDARD</StorageClass></Contents>"
                for k, n in keys
            )
            self.reply(
                200,
                (
                    '<?xml version="1.0" encoding="UTF-8"?>'
                    '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
                    f"<Name>{bucket}</Name><Prefix>{prefix}</Prefix><KeyCount>{len(keys)}</KeyCount>"
                    f"<MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>{contents}</ListBucketResult>"
                ).encode(),
            )
        else:
            self.error(405, "MethodNotAllowed", f"{method} on a bucket is not implemented")

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = handle_any


server = http.server.ThreadingHTTPServer((ARGS.address, ARGS.port), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(ARGS.certfile, ARGS.keyfile)
server.socket = context.wrap_socket(server.socket, server_side=True)
print(server.server_address[1], flush=True)
server.serve_forever()
