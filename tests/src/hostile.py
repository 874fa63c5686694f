"""A hostile workload: tries every way out of a veil sandbox it knows and reports, as one JSON
object, what each attempt got: "blocked: <why>" or "ESCAPED: <what it got>".

usage: hostile.py JSON, where JSON names what to aim at:
    cgroup_root  the cgroup2 mount (its cgroup.procs is the root cgroup's)
    state_dir    veil's state directory (master.key, the database)
    socket       veil's control socket
    bpf_dir      veil's bpffs directory (its pins)
    link_ids     ids of veil's BPF links
    host_pid     a process of the host, running as the sandbox's own host uid
"""

import ctypes
import errno
import json
import os
import socket
import struct
import sys

LIBC = ctypes.CDLL(None, use_errno=True)
SYS_BPF = 321  # x86_64
BPF_LINK_GET_FD_BY_ID = 30
BPF_LINK_DETACH = 34
PTRACE_ATTACH = 16
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
TIOCSTI = 0x5412
MS_REMOUNT = 32
MS_BIND = 4096


def syscall_error(rc):
    if rc >= 0:
        return None
    return errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno()))


def attempt(report, name, action):
    try:
        got = action()
    except OSError as e:
        report[name] = f"blocked: {errno.errorcode.get(e.errno, e.errno)}"
        return
    report[name] = got


def cgroup_escape(root):
    with open(os.path.join(root, "cgroup.procs"), "w") as f:
        f.write(str(os.getpid()))
    return "ESCAPED: moved into the root cgroup"


def read_file(path):
    with open(path, "rb") as f:
        return f"ESCAPED: read {len(f.read())} bytes"


def list_dir(path):
    names = os.listdir(path)
    return f"ESCAPED: {names}" if names else "blocked: empty"


def control_socket(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    s.sendall(b"GET /v1/secrets HTTP/1.1\r\nHost: veil\r\n\r\n")
    return f"ESCAPED: {s.recv(200)!r}"


def bpf_links(ids):
    got = []
    for link_id in ids:
        attr = ctypes.create_string_buffer(struct.pack("=II", link_id, 0) + bytes(120))
        fd = LIBC.syscall(SYS_BPF, BPF_LINK_GET_FD_BY_ID, attr, 128)
        err = syscall_error(fd)
        if err:
            got.append(err)
            continue
        detach = ctypes.create_string_buffer(struct.pack("=I", fd) + bytes(124))
        rc = LIBC.syscall(SYS_BPF, BPF_LINK_DETACH, detach, 128)
        return f"ESCAPED: link {link_id} fd {fd}, detach {syscall_error(rc) or 'ok'}"
    return f"blocked: {sorted(set(got))}" if got else "blocked: no links to try"


def ptrace(pid):
    rc = LIBC.ptrace(PTRACE_ATTACH, pid, None, None)
    err = syscall_error(rc)
    if err:
        return f"blocked: {err}"
    return f"ESCAPED: attached to {pid}"


def signal_host(pid):
    os.kill(pid, 0)
    return f"ESCAPED: can signal {pid}"


def unshare(flags, what):
    rc = LIBC.unshare(flags)
    err = syscall_error(rc)
    return f"blocked: {err}" if err else f"ESCAPED: new {what} namespace"


def remount_root():
    rc = LIBC.mount(None, b"/", None, MS_REMOUNT | MS_BIND, None)
    err = syscall_error(rc)
    return f"blocked: {err}" if err else "ESCAPED: / remounted read-write"


def write_host(path):
    with open(path, "w") as f:
        f.write("x")
    os.unlink(path)
    return f"ESCAPED: wrote {path}"


def packet_socket():
    socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    return "ESCAPED: packet socket"


def tiocsti():
    fd = os.open("/dev/tty", os.O_RDWR)
    import fcntl
    fcntl.ioctl(fd, TIOCSTI, b"x")
    return "ESCAPED: pushed a key into the terminal"


def main():
    aim = json.loads(sys.argv[1])
    report = {}
    attempt(report, "cgroup_escape", lambda: cgroup_escape(aim["cgroup_root"]))
    attempt(report, "master_key",
            lambda: read_file(os.path.join(aim["state_dir"], "master.key")))
    attempt(report, "state_dir", lambda: list_dir(aim["state_dir"]))
    attempt(report, "control_socket", lambda: control_socket(aim["socket"]))
    attempt(report, "pins", lambda: list_dir(aim["bpf_dir"]))
    attempt(report, "bpf_links", lambda: bpf_links(aim["link_ids"]))
    attempt(report, "ptrace_host", lambda: ptrace(aim["host_pid"]))
    attempt(report, "signal_host", lambda: signal_host(aim["host_pid"]))
    attempt(report, "new_user_ns", lambda: unshare(CLONE_NEWUSER, "user"))
    attempt(report, "new_net_ns", lambda: unshare(CLONE_NEWNET, "network"))
    attempt(report, "remount_root", remount_root)
    attempt(report, "write_etc", lambda: write_host("/etc/veil-escaped"))
    attempt(report, "packet_socket", packet_socket)
    attempt(report, "tiocsti", tiocsti)
    leaked = [v for v in ("AWS_SECRET_ACCESS_KEY", "SSH_AUTH_SOCK") if v in os.environ]
    report["caller_env"] = f"ESCAPED: {leaked}" if leaked else "blocked: not passed"
    groups = os.getgroups()
    report["groups"] = (f"ESCAPED: {groups}" if set(groups) - {os.getgid()}
                        else "blocked: no supplementary groups")
    with open("/proc/self/status") as f:
        nnp = [l.split()[1] for l in f if l.startswith("NoNewPrivs:")]
    report["no_new_privs"] = "blocked: set" if nnp == ["1"] else f"ESCAPED: {nnp}"
    print(json.dumps(report), flush=True)


main()
