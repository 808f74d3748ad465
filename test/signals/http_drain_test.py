#!/usr/bin/env python3
"""The drain of examples/http_server under load, with a real SIGTERM.

    http_drain_test.py EXE GRACE_MS [REPETITIONS]

Each repetition starts the server on a free loopback port, runs 64
keep-alive clients that send `GET /work?ms=N` (N random, 0-300) in a loop,
and 8 that open a new connection per request (so that connects keep coming
as the stop does), sends SIGTERM at a random moment, and checks, every time:
  - every request the server read got a complete 200 (with a grace long
    enough for the longest request: "served N of N requests read"), and the
    clients saw exactly the responses the server wrote, each one whole;
  - no connection was reset, none was closed in the middle of a response,
    none was closed before the SIGTERM, and the server closed every
    connection it accepted cleanly ("closed N of N connections cleanly");
    the one exception, the kernel's: a new connection whose handshake
    completed as the listening socket closed (never accepted) is reset
    (counted as "raced the close");
  - connects are refused once the server stops accepting, and never
    accepted again after a refusal;
  - the server died by SIGTERM within grace + 1 s.
With GRACE_MS 0 the requests in flight are cancelled: their connections close
cleanly, with no response at all, never half of one.

Exit status 0 when every repetition holds; the reason otherwise. 20
repetitions by default (the ctest run); 200 is the long mode."""

import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time

CLIENTS = 64
CHURNING = 8  # more clients, a new connection per request: some connect as the stop comes
MAX_WORK_MS = 300

for _s in (signal.SIGINT, signal.SIGTERM):
    signal.signal(_s, signal.SIG_DFL)
for _k in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
    os.environ.pop(_k, None)


class Failure(Exception):
    pass


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.ok = 0                  # complete 200 responses
        self.closed_unanswered = 0   # clean close, no byte of a response
        self.refused = 0             # connects refused (after the SIGTERM)
        self.raced = 0               # new connections reset after the SIGTERM
        self.failures = []

    def add(self, **counts):
        with self.lock:
            for k, v in counts.items():
                setattr(self, k, getattr(self, k) + v)

    def fail(self, message):
        with self.lock:
            self.failures.append(message)


def read_response(sock):
    """Returns (status, headers, body) for a whole response; None if the
    server closed cleanly before sending a byte; raises Failure for half a
    response."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            if data:
                raise Failure(f"closed in the middle of a response's headers: {data!r}")
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise Failure(f"closed in the middle of a response's body: {body!r} of {length} bytes")
        body += chunk
    return status, headers, body


def connect(port, tally, sigterm_sent):
    """A new connection, or None once connects are refused (or fail)."""
    try:
        return socket.create_connection(("127.0.0.1", port), timeout=10)
    except ConnectionRefusedError:
        if not sigterm_sent.is_set():
            tally.fail("a connect was refused before the SIGTERM")
        tally.add(refused=1)
    except ConnectionResetError:
        # The connect raced the close of the listening socket: reset by the
        # kernel, never accepted.
        if not sigterm_sent.is_set():
            tally.fail("a connect was reset before the SIGTERM")
        tally.add(raced=1)
    except OSError as e:
        tally.fail(f"connect: {e!r}")
    return None


def converse(sock, tally, on_reset, talk):
    """Runs talk() on `sock` and closes it. True to go on with a new
    connection; False once a failure (recorded) or a reset (on_reset) ended
    the client."""
    try:
        talk()
        return True
    except (ConnectionResetError, BrokenPipeError) as e:
        on_reset(e)
    except Failure as e:
        tally.fail(str(e))
    except OSError as e:
        tally.fail(f"{e!r}")
    finally:
        sock.close()
    return False


def client(port, tally, sigterm_sent, rng):
    """Keep-alive: requests one after another on a connection until the
    server closes it (after the stop), then a new connection."""
    def talk(sock):
        while True:
            ms = rng.randrange(MAX_WORK_MS + 1)
            sock.sendall(f"GET /work?ms={ms} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
            got = read_response(sock)
            if got is None:
                if not sigterm_sent.is_set():
                    tally.fail("a connection was closed before the SIGTERM")
                tally.add(closed_unanswered=1)
                return
            status, headers, body = got
            if status != 200 or body != b"done\n":
                tally.fail(f"response {status} {body!r}")
            tally.add(ok=1)
            if headers.get("connection", "").lower() == "close":
                if not sigterm_sent.is_set():
                    tally.fail("Connection: close before the SIGTERM")
                return

    def reset(e):
        # A send that meets the server's clean close after the stop is a
        # broken pipe only if the server reset the connection.
        tally.fail(f"connection reset with a request in flight: {e!r}")

    while (sock := connect(port, tally, sigterm_sent)) is not None:
        if not converse(sock, tally, reset, lambda: talk(sock)):
            return


def churner(port, tally, sigterm_sent, rng):
    """A connection per request (Connection: close), so that connects keep
    coming as the stop does: each is refused, or answered whole, or closed
    cleanly before any byte of a response (only after the SIGTERM), never
    reset."""
    def talk(sock):
        ms = rng.randrange(20)
        sock.sendall(f"GET /work?ms={ms} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
        got = read_response(sock)
        if got is None:
            if not sigterm_sent.is_set():
                tally.fail("a new connection was closed unanswered before the SIGTERM")
            tally.add(closed_unanswered=1)
        elif got[0] != 200:
            tally.fail(f"response {got[0]}")
        else:
            tally.add(ok=1)

    def reset(e):
        # Only a connect that raced the close of the listening socket: the
        # server's count of clean closes says it never accepted it.
        if not sigterm_sent.is_set():
            tally.fail(f"a new connection was reset before the SIGTERM: {e!r}")
        tally.add(raced=1)

    while (sock := connect(port, tally, sigterm_sent)) is not None:
        if not converse(sock, tally, reset, lambda: talk(sock)):
            return


def prober(port, stop, tally, sigterm_sent):
    """After the SIGTERM: a connect every 5 ms until the server exits; once
    one is refused, none may succeed."""
    sigterm_sent.wait()
    refused_once = False
    while not stop.is_set():
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=1)
            s.close()
            if refused_once:
                tally.fail("a connect succeeded after one was refused")
                return
        except ConnectionRefusedError:
            refused_once = True
        except OSError:
            pass
        stop.wait(0.005)


def one_run(exe, grace_ms, seed):
    rng = random.Random(seed)
    proc = subprocess.Popen([exe, "--port", "0", "--grace-ms", str(grace_ms), "--drain-timeout-ms", "5000"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()
        m = re.match(r"LISTENING port=(\d+)", first)
        if not m:
            raise Failure(f"no LISTENING line: {first!r}")
        port = int(m.group(1))
        tally = Tally()
        sigterm_sent = threading.Event()
        exited = threading.Event()
        threads = [threading.Thread(target=client, args=(port, tally, sigterm_sent, random.Random(rng.random())))
                   for _ in range(CLIENTS)]
        threads += [threading.Thread(target=churner, args=(port, tally, sigterm_sent, random.Random(rng.random())))
                    for _ in range(CHURNING)]
        probe = threading.Thread(target=prober, args=(port, exited, tally, sigterm_sent))
        for t in threads:
            t.start()
        probe.start()
        time.sleep(rng.uniform(0.2, 0.8))  # the random moment of the SIGTERM, not a synchronisation
        sigterm_sent.set()
        t_signal = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            out, err = proc.communicate(timeout=grace_ms / 1000 + 10)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise Failure("the server did not exit")
        took = time.monotonic() - t_signal
        exited.set()
        for t in threads:
            t.join(timeout=15)
            if t.is_alive():
                raise Failure("a client hung")
        probe.join()
        if tally.failures:
            raise Failure(f"{len(tally.failures)} failures, the first: {tally.failures[0]}")
        if proc.returncode not in (-signal.SIGTERM, 128 + signal.SIGTERM):
            raise Failure(f"exit status {proc.returncode}, not by SIGTERM; stderr {err!r}")
        if took > grace_ms / 1000 + 1:
            raise Failure(f"exited {took:.2f} s after the SIGTERM (grace {grace_ms} ms + 1 s)")
        served = re.search(r"served (\d+) of (\d+) requests read", out)
        if not served:
            raise Failure(f"no served line: {out!r}")
        answered, read = int(served.group(1)), int(served.group(2))
        if grace_ms >= MAX_WORK_MS + 200 and answered != read:
            raise Failure(f"{read - answered} of {read} requests read got no response")
        if tally.ok != answered:
            raise Failure(f"the clients got {tally.ok} whole responses, the server wrote {answered}")
        closed = re.search(r"closed (\d+) of (\d+) connections cleanly", out)
        if not closed or closed.group(1) != closed.group(2):
            raise Failure(f"a connection the server accepted was not closed cleanly: {out!r}")
        if "abandoned 0" not in err:
            raise Failure(f"the drain gave up on connections: {err!r}")
        return f"{tally.ok} ok, {read - answered} cancelled, {tally.closed_unanswered} closed idle, " \
               f"{tally.refused} refused, {tally.raced} raced the close, exit {took * 1000:.0f} ms after the signal"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def main():
    if len(sys.argv) not in (3, 4):
        print(__doc__)
        sys.exit(2)
    exe, grace_ms = sys.argv[1], int(sys.argv[2])
    repetitions = int(sys.argv[3]) if len(sys.argv) == 4 else 20
    seed = int(os.environ.get("GRACEFUL_SEED", str(random.randrange(1 << 30))))
    print(f"seed {seed} (GRACEFUL_SEED replays it)")
    for k in range(repetitions):
        try:
            print(f"run {k + 1}: {one_run(exe, grace_ms, seed + k)}", flush=True)
        except Failure as e:
            print(f"FAIL in run {k + 1} (seed {seed + k}): {e}")
            sys.exit(1)
    print("PASS")


if __name__ == "__main__":
    main()
