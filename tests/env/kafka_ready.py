#!/usr/bin/env python3
"""Is the Kafka broker at HOST:PORT ready for clients, consumer groups included?

Usage: kafka_ready.py HOST:PORT [GROUP]

Exit 0 when a Metadata request lists at least one (unfenced) broker and
FindCoordinator requests for the consumer group GROUP (default
"tickflow-env-probe") and for a transactional id of the same name both name
a coordinator. Those also make the broker create __consumer_offsets and
__transaction_state, so a test's first consumer group or idempotent producer
does not wait for them. Last, an InitProducerId request (what an idempotent
producer sends first) must succeed: after each start the broker fetches a
block of producer ids from the controller and answers "coordinator load in
progress" until it has one. Exit 1 otherwise,
with the reason on stderr. One attempt; tests/env/kafka.sh loops.

Speaks the wire protocol with the standard library only, using Metadata v4
and FindCoordinator v1, which Kafka 3.x and 4.x both accept.
"""
import socket
import struct
import sys


def _request(sock, api_key, api_version, corr, body):
    client_id = b"tickflow-env"
    header = struct.pack(">hhih", api_key, api_version, corr, len(client_id)) + client_id
    msg = header + body
    sock.sendall(struct.pack(">i", len(msg)) + msg)
    size = struct.unpack(">i", _read(sock, 4))[0]
    data = _read(sock, size)
    (got,) = struct.unpack_from(">i", data, 0)
    if got != corr:
        raise RuntimeError("correlation id mismatch")
    return data, 4


def _read(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise RuntimeError("connection closed by broker")
        buf += chunk
    return buf


def _string(data, off):
    (n,) = struct.unpack_from(">h", data, off)
    off += 2
    if n < 0:
        return None, off
    return data[off:off + n].decode(), off + n


def check(host, port, group):
    with socket.create_connection((host, port), timeout=3) as sock:
        sock.settimeout(3)
        # Metadata v4: topics = [] (none), allow_auto_topic_creation = false
        data, off = _request(sock, 3, 4, 1, struct.pack(">ib", 0, 0))
        off += 4  # throttle_time_ms
        (nbrokers,) = struct.unpack_from(">i", data, off)
        if nbrokers < 1:
            return "metadata lists no broker yet"
        # FindCoordinator v1: key, key_type (0 group, 1 transaction)
        g = group.encode()
        for corr, (key_type, what) in enumerate(((0, "group"), (1, "transaction")), start=2):
            body = struct.pack(">h", len(g)) + g + struct.pack(">b", key_type)
            data, off = _request(sock, 10, 1, corr, body)
            off += 4  # throttle_time_ms
            (err,) = struct.unpack_from(">h", data, off)
            off += 2
            if err != 0:
                msg, off = _string(data, off)
                return "%s coordinator not available yet (error %d%s)" % (
                    what, err, ": " + msg if msg else "")
    return _producer_id(host, port)


RETRIABLE = {14: "coordinator load in progress", 15: "coordinator not available",
             16: "not coordinator"}


def _producer_id(host, port):
    # InitProducerId v1: transactional_id null, transaction_timeout_ms.
    # A warm-up only: a broker that does not speak this version (closes the
    # connection or answers UNSUPPORTED_VERSION) counts as ready.
    try:
        with socket.create_connection((host, port), timeout=3) as sock:
            sock.settimeout(3)
            data, off = _request(sock, 22, 1, 4, struct.pack(">hi", -1, 60000))
    except (OSError, RuntimeError, struct.error):
        return None
    (err,) = struct.unpack_from(">h", data, off + 4)
    if err in RETRIABLE:
        return "producer ids not available yet (error %d: %s)" % (err, RETRIABLE[err])
    return None


def main():
    if len(sys.argv) not in (2, 3):
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    host, _, port = sys.argv[1].rpartition(":")
    group = sys.argv[2] if len(sys.argv) == 3 else "tickflow-env-probe"
    try:
        why = check(host or "127.0.0.1", int(port), group)
    except (OSError, RuntimeError, struct.error) as e:
        why = "%s: %s" % (type(e).__name__, e)
    if why:
        print("kafka_ready: " + why, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
