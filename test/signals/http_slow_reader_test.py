#!/usr/bin/env python3
"""The drain of examples/http_server with a client that pipelines requests
and reads slowly, with a real SIGTERM.

    http_slow_reader_test.py EXE [REPETITIONS]

The client sends `GET /healthz` requests back to back and reads nothing, so
that the server's responses pile up in its socket's send queue and its
write stalls; then SIGTERM (with --grace-ms 0, and with a grace that ends
while the write is stalled), and only then does the client read: slowly
for its first 1.5 s (longer than the server's 500 ms wait for a client's
end), still sending all along. Every run must show: the client gets every
response the server says it served, each one whole (a close with unread
data sends a reset, which would throw away what the server's kernel still
held); the server closes soon after the last byte is delivered (within 5 s,
far inside its 20 s drain budget: nothing is abandoned) and dies by
SIGTERM. Exit status 0 when every run holds; the reason otherwise."""

import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time

REQUEST = b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n"
STALL_S = 0.5  # no byte sent for this long: the server has stopped reading
SLOW_S = 1.5  # the client's slow start after the SIGTERM: 4 KiB per 10 ms
CLOSE_WITHIN_S = 5.0  # from the client's end of stream to the server's exit


def fail(message):
    print("FAIL:", message)
    sys.exit(1)


def responses_in(data):
    """(whole responses, bytes after the last whole one)."""
    pos = whole = 0
    while True:
        head_end = data.find(b"\r\n\r\n", pos)
        if head_end < 0:
            break
        m = re.search(rb"Content-Length: (\d+)", data[pos:head_end], re.IGNORECASE)
        if not m:
            fail(f"a response without Content-Length: {bytes(data[pos:head_end])[:200]!r}")
        body_end = head_end + 4 + int(m.group(1))
        if body_end > len(data):
            break
        whole += 1
        pos = body_end
    return whole, len(data) - pos


def one_run(exe, grace_ms):
    srv = subprocess.Popen([exe, "--port", "0", "--grace-ms", str(grace_ms), "--drain-timeout-ms", "20000"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        if not select.select([srv.stdout], [], [], 10)[0]:
            fail("the server did not start within 10 s")
        line = srv.stdout.readline()
        if not line.startswith("LISTENING port="):
            fail(f"the server did not start: {line!r}")
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", int(line.split("=")[1])))
        last_send = [time.monotonic()]

        def send_forever():
            batch = REQUEST * 256
            try:
                while True:
                    sock.sendall(batch)
                    last_send[0] = time.monotonic()
            except OSError:
                pass  # the server closed

        threading.Thread(target=send_forever, daemon=True).start()
        limit = time.monotonic() + 20
        while time.monotonic() - last_send[0] < STALL_S:
            if time.monotonic() > limit:
                fail("the server never stopped reading")
            time.sleep(0.05)
        srv.send_signal(signal.SIGTERM)
        time.sleep(0.3 + grace_ms / 1000)  # the grace, if any, ends while the write is stalled
        data = bytearray()
        sock.settimeout(30)
        slow_until = time.monotonic() + SLOW_S
        try:
            while True:
                slow = time.monotonic() < slow_until
                got = sock.recv(4096 if slow else 1 << 20)
                if not got:
                    break
                data += got
                if slow:
                    time.sleep(0.01)
        except ConnectionResetError:
            pass  # after the last byte the server had: checked below
        except socket.timeout:
            fail(f"no end of stream within 30 s ({len(data)} bytes read)")
        t_end = time.monotonic()
        try:
            out, err = srv.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            fail("the server did not exit within 30 s of the client's end of stream")
        exited = time.monotonic() - t_end
    finally:
        if srv.poll() is None:
            srv.kill()
    whole, leftover = responses_in(data)
    served = re.search(r"served (\d+) of (\d+) requests read", out)
    print(f"grace {grace_ms} ms: {whole} whole responses, {leftover} bytes of a cut one, server gone "
          f"{exited:.2f} s after the end of stream; server: {served.group(0) if served else out.strip()!r}")
    if not served:
        fail(f"the server did not report: {out!r} {err[-300:]!r}")
    if leftover:
        fail(f"a response was cut after {whole} whole ones")
    if whole != int(served.group(1)):
        fail(f"the client got {whole} responses, the server served {served.group(1)}")
    if exited > CLOSE_WITHIN_S:
        fail(f"the server exited {exited:.1f} s after the client's end of stream: {err[-300:]!r}")
    if srv.returncode not in (-signal.SIGTERM, 128 + signal.SIGTERM):
        fail(f"the server did not die by SIGTERM: {srv.returncode}")


def main():
    if len(sys.argv) not in (2, 3):
        print(__doc__)
        sys.exit(2)
    repetitions = int(sys.argv[2]) if len(sys.argv) == 3 else 2
    for _ in range(repetitions):
        for grace_ms in (0, 300):
            one_run(sys.argv[1], grace_ms)
    print("PASS")


if __name__ == "__main__":
    main()
