"""Misbehaving clients against the real binary's HTTP/1.1 front: one that pipelines requests and never
reads the answers must cost bounded memory and no CPU once its socket is full, and leave nothing behind."""
import os
import socket
import threading
import time

import requests

PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")


def rss_bytes(pid):
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def flood(port, request, until, sent):
    """Pipelines `request` thousands at a time until `until`, never reading, with a small receive buffer."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    s.settimeout(0.2)
    batch = request * 1000
    try:
        while time.monotonic() < until:
            try:
                sent[0] += s.send(batch)
            except socket.timeout:
                pass  # Warden stopped reading: what a server under backpressure should do
            except OSError:
                break
    finally:
        s.close()


def test_a_pipelining_client_that_never_reads_costs_bounded_memory_and_no_cpu(start, master_key):
    server = start({"WARDEN_MASTER_KEY": master_key})
    pid = server.proc.pid
    session = requests.Session()
    for _ in range(200):  # warm up the routes, caches and allocator before the baseline
        assert session.get(server.url + "/healthz").status_code == 200
        assert session.get(server.url + "/api/v1/openapi.json").status_code == 200
    time.sleep(0.5)
    baseline, cpu_before = rss_bytes(pid), cpu_seconds(pid)

    window = 12
    until = time.monotonic() + window
    sent = [0]
    # Small answers and large ones (the OpenAPI document, 40 KiB): the large ones fill the sockets within
    # the window, after which a server that still reads and answers shows in its CPU time and memory.
    pair = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGET /api/v1/openapi.json HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    threads = [threading.Thread(target=flood, args=(server.port, pair, until, sent)) for _ in range(2)]
    started = time.monotonic()
    for t in threads:
        t.start()
    peak = baseline
    while time.monotonic() < until:
        peak = max(peak, rss_bytes(pid))
        time.sleep(0.25)
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    cpu = cpu_seconds(pid) - cpu_before
    time.sleep(1)
    after = rss_bytes(pid)
    mib = 1024 * 1024
    print(f"sent {sent[0] / mib:.1f} MiB of requests; RSS baseline {baseline / mib:.0f} MiB, peak {peak / mib:.0f} MiB, "
          f"after close {after / mib:.0f} MiB; server CPU {cpu:.2f} s over {elapsed:.1f} s")
    assert peak - baseline < 100 * mib, f"RSS grew {(peak - baseline) / mib:.0f} MiB under a client that never reads"
    assert after - baseline < 100 * mib
    # Once the sockets are full there is nothing to do: a server still answering burns its cores.
    assert cpu < 0.25 * elapsed, f"the server used {cpu:.1f} s of CPU in {elapsed:.1f} s"
    # It still serves, on a new connection and on a kept one.
    assert requests.get(server.url + "/healthz", timeout=5).status_code == 200
    assert session.get(server.url + "/api/v1/openapi.json", timeout=5).status_code == 200


def test_pipelined_requests_are_answered_in_order_when_read_slowly(start, master_key):
    """Backpressure must not drop, reorder or stall pipelined requests whose client does read, slowly."""
    server = start({"WARDEN_MASTER_KEY": master_key})
    paths = [b"/healthz", b"/api/v1/openapi.json", b"/nosuch"] * 200
    s = socket.create_connection(("127.0.0.1", server.port))
    s.sendall(b"".join(b"GET " + p + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" for p in paths))
    s.settimeout(10)
    data = b""
    statuses = []
    time.sleep(1)  # let Warden hit the full socket first
    while len(statuses) < len(paths):
        chunk = s.recv(16384)
        assert chunk, f"connection closed after {len(statuses)} answers"
        data += chunk
        while True:
            head_end = data.find(b"\r\n\r\n")
            if head_end < 0:
                break
            head = data[:head_end].decode()
            length = int(next(line.split(":")[1] for line in head.split("\r\n") if line.lower().startswith("content-length")))
            if len(data) < head_end + 4 + length:
                break
            statuses.append(int(head.split(" ")[1]))
            data = data[head_end + 4 + length:]
    s.close()
    assert statuses == [200, 200, 404] * 200
