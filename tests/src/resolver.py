"""A stand-in DNS resolver: answers every A query with ANSWER, and prints each name it was
asked (one per line, flushed) so a test knows exactly what reached it.

usage: resolver.py ADDR PORT ANSWER
"""

import socket
import struct
import sys


def qname(packet):
    labels, at = [], 12
    while packet[at]:
        size = packet[at]
        labels.append(packet[at + 1:at + 1 + size].decode("ascii", "replace"))
        at += 1 + size
    return ".".join(labels), at + 5


def main():
    addr, port, answer = sys.argv[1], int(sys.argv[2]), socket.inet_aton(sys.argv[3])
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((addr, port))
    print("ready", flush=True)
    while True:
        packet, peer = sock.recvfrom(4096)
        name, end = qname(packet)
        print(name, flush=True)
        qtype = struct.unpack("!H", packet[end - 4:end - 2])[0]
        header = packet[:2] + struct.pack("!HHHHH", 0x8180, 1, 1 if qtype == 1 else 0, 0, 0)
        reply = header + packet[12:end]
        if qtype == 1:
            reply += struct.pack("!HHHIH", 0xC00C, 1, 1, 60, 4) + answer
        sock.sendto(reply, peer)


main()
