"""A probe the kernel-steering tests run inside sandboxes: it tries one way of reaching the
network and prints what happened as one JSON object on stdout, so a test can assert both the
outcome and the audit record (by pid).

    probe.py [--nest NAME] tcp HOST PORT TOKEN [--nonblock | --fastopen] [--v4-mapped]
            [--source-port N]
        connect (or sendto with MSG_FASTOPEN), send TOKEN, read the echo servers' reply line;
        prints the reply and the peer address the socket reports (null once reset).
        --source-port binds the client to 127.0.0.1:N (SO_REUSEADDR) first.
    probe.py [--nest NAME] udp HOST PORT [--connect] [--count N]
        send a datagram (sendto, or connect then send) and wait for a reply.
    probe.py [--nest NAME] socket FAMILY TYPE PROTO
        create a socket, e.g. `socket inet raw icmp`, `socket packet raw 0`.
    probe.py [--nest NAME] abstract NAME
        connect to the abstract Unix socket NAME.

--nest NAME first moves the probe into a new cgroup NAME below its own (as a workload that
makes its own cgroups would). The output always has "pid" and "ok"; on failure "errno" (a
name such as ECONNREFUSED) and "stage".
"""

import errno
import json
import os
import select
import socket
import sys

TIMEOUT = 5.0

FAMILIES = {"inet": socket.AF_INET, "inet6": socket.AF_INET6, "packet": socket.AF_PACKET}
TYPES = {"stream": socket.SOCK_STREAM, "dgram": socket.SOCK_DGRAM, "raw": socket.SOCK_RAW}
PROTOS = {
    "icmp": socket.IPPROTO_ICMP,
    "icmpv6": socket.IPPROTO_ICMPV6,
    "tcp": socket.IPPROTO_TCP,
    "udp": socket.IPPROTO_UDP,
    "udplite": 136,
    "sctp": 132,
    "mptcp": 262,
}


def main(argv):
    result = {"pid": os.getpid()}
    if argv[:1] == ["--nest"]:
        result["cgroup"] = nest(argv[1])
        argv = argv[2:]
    command, args = argv[0], argv[1:]
    try:
        if command == "tcp":
            result.update(tcp(args))
        elif command == "udp":
            result.update(udp(args))
        elif command == "socket":
            result.update(make_socket(args))
        elif command == "abstract":
            result.update(abstract(args))
        else:
            raise SystemExit(f"unknown command {command}")
    except Failure as failure:
        result.update(ok=False, stage=failure.stage, errno=failure.name)
    print(json.dumps(result), flush=True)


class Failure(Exception):
    def __init__(self, stage, error):
        super().__init__(stage)
        self.stage = stage
        code = getattr(error, "errno", None)
        self.name = errno.errorcode.get(code, str(error)) if code else str(error)


def step(stage, action):
    try:
        return action()
    except OSError as error:
        raise Failure(stage, error) from error


def tcp(args):
    host, port, token = args[0], int(args[1]), args[2]
    flags = set(args[3:])
    source = args[args.index("--source-port") + 1] if "--source-port" in args else None
    family = socket.AF_INET6 if ":" in host or "--v4-mapped" in flags else socket.AF_INET
    if "--v4-mapped" in flags:
        host = "::ffff:" + host
    sock = step("socket", lambda: socket.socket(family, socket.SOCK_STREAM))
    sock.settimeout(TIMEOUT)
    if source is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        step("bind", lambda: sock.bind(("127.0.0.1", int(source))))
    line = (token + "\n").encode()
    if "--fastopen" in flags:
        # Blocking, so the implicit connect completes inside sendto.
        sock.settimeout(None)
        step("sendto", lambda: sock.sendto(line, socket.MSG_FASTOPEN, (host, port)))
        sock.settimeout(TIMEOUT)
    elif "--nonblock" in flags:
        sock.setblocking(False)
        code = sock.connect_ex((host, port))
        if code not in (0, errno.EINPROGRESS):
            raise Failure("connect", OSError(code, os.strerror(code)))
        _, writable, _ = select.select([], [sock], [], TIMEOUT)
        if not writable:
            raise Failure("connect", OSError(errno.ETIMEDOUT, "timed out"))
        code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            raise Failure("connect", OSError(code, os.strerror(code)))
        sock.settimeout(TIMEOUT)
        step("send", lambda: sock.sendall(line))
    else:
        step("connect", lambda: sock.connect((host, port)))
        step("send", lambda: sock.sendall(line))
    try:
        peer = list(sock.getpeername()[:2])
    except OSError:
        # Already reset by the other end (veil closes what it refuses).
        peer = None
    reply = step("recv", lambda: read_line(sock))
    sock.close()
    return {"ok": bool(reply), "reply": reply, "peer": peer}


def read_line(sock):
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.decode().strip()


def udp(args):
    host, port = args[0], int(args[1])
    flags = args[2:]
    count = int(flags[flags.index("--count") + 1]) if "--count" in flags else 1
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = step("socket", lambda: socket.socket(family, socket.SOCK_DGRAM))
    sock.settimeout(TIMEOUT)
    if "--connect" in flags:
        step("connect", lambda: sock.connect((host, port)))
        send = lambda: sock.send(b"query")
    else:
        send = lambda: sock.sendto(b"query", (host, port))
    refused = 0
    for _ in range(count):
        try:
            send()
        except OSError as error:
            if count == 1:
                raise Failure("send", error) from error
            refused += 1
    if count > 1:
        return {"ok": refused == 0, "refused": refused}
    reply, _ = step("recv", lambda: sock.recvfrom(4096))
    return {"ok": True, "reply": reply.decode()}


def make_socket(args):
    family, kind = FAMILIES[args[0]], TYPES[args[1]]
    proto = PROTOS.get(args[2]) if args[2] in PROTOS else int(args[2])
    sock = step("socket", lambda: socket.socket(family, kind, proto))
    sock.close()
    return {"ok": True}


def abstract(args):
    sock = step("socket", lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
    step("connect", lambda: sock.connect("\0" + args[0]))
    sock.close()
    return {"ok": True}


def nest(name):
    own = open("/proc/self/cgroup").read().strip().split("::", 1)[1]
    mount = next(
        line.split()[1] for line in open("/proc/mounts") if line.split()[2] == "cgroup2"
    )
    child = os.path.join(mount + own, name)
    os.mkdir(child)
    with open(os.path.join(child, "cgroup.procs"), "w") as procs:
        procs.write(str(os.getpid()))
    return child


if __name__ == "__main__":
    main(sys.argv[1:])
