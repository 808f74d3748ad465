#!/usr/bin/env python3
"""examples/crawl_lines stopped by a real SIGINT and resumed: no line lost,
none done twice, and memory flat however many lines.

    crawl_lines_test.py EXE [LINES (1000000)] [--no-memory-check]

Writes a file of LINES lines, then, with a grace long enough for every line
in flight and with none (--grace-ms 0: the lines in flight are cancelled, and
the ones done after the first cancelled one make the --skip list):
  1. runs crawl_lines over it, sends SIGINT once a tenth of the lines are
     done, and checks that it died by SIGINT and printed a resume line;
  2. reruns it with that resume line, to the end (exit 0, "done: N lines");
  3. checks that the two outputs together hold every line number exactly once.
Then checks the memory of a whole run: its peak RSS with nine tenths of the
lines done is within BOUND_MIB of its peak with a tenth done (the report's
outcome byte per line is all that grows); not with --no-memory-check (a
sanitizer's own memory, ASan's quarantine of freed blocks, grows)."""

import os
import re
import signal
import subprocess
import sys
import tempfile
import time

BOUND_MIB = 2.0  # 800,000 lines more: the report's byte per line, 0.8 MiB
MAX_CONCURRENT = "1000"
STEP_MS = "2"


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def run(exe, args, stop_after=None, out=None):
    """Runs crawl_lines; with stop_after, sends SIGINT once `out` has that many
    lines. Returns (exit status, stderr)."""
    proc = subprocess.Popen([exe] + args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if stop_after is not None:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                fail(f"crawl_lines ended before the signal: {proc.stderr.read()}")
            if time.monotonic() > deadline:
                proc.kill()
                fail("the output did not grow")
            try:
                with open(out, "rb") as f:
                    if f.read().count(b"\n") >= stop_after:
                        break
            except FileNotFoundError:
                pass
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
    err = proc.stderr.read()
    return proc.wait(), err


def wait_and_read_peak(proc, out, lines):
    """Waits until `out` has `lines` lines; returns proc's VmHWM in MiB."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if os.path.exists(out):
            with open(out, "rb") as f:
                done = f.read().count(b"\n")
            if done >= lines:
                with open(f"/proc/{proc.pid}/status") as status:
                    m = re.search(r"^VmHWM:\s+(\d+) kB", status.read(), re.M)
                return int(m.group(1)) / 1024.0
        time.sleep(0.02)
    fail(f"never saw {lines} lines done")


def numbers(path):
    with open(path) as f:
        return [int(line) for line in f if line.strip()]


def stop_and_resume(exe, lines_file, n, grace_ms, work):
    out1, out2 = os.path.join(work, f"out1_{grace_ms}"), os.path.join(work, f"out2_{grace_ms}")
    base = ["--file", lines_file, "--max-concurrent", MAX_CONCURRENT, "--step-ms", STEP_MS,
            "--grace-ms", str(grace_ms)]
    code, err = run(exe, base + ["--out", out1], stop_after=n // 10, out=out1)
    if code not in (-signal.SIGINT, 130):
        fail(f"grace {grace_ms}: exit status {code}, expected death by SIGINT\n{err}")
    m = re.search(r"^resume: (--from \d+(?: --skip [\d,]+)?)$", err, re.M)
    if not m:
        fail(f"grace {grace_ms}: no resume line\n{err}")
    resume = m.group(1).split()
    code2, err2 = run(exe, base + ["--out", out2] + resume)
    if code2 != 0 or f"done: " not in err2:
        fail(f"grace {grace_ms}: the rerun ended {code2}\n{err2}")
    first, second = numbers(out1), numbers(out2)
    both = first + second
    if len(both) != len(set(both)):
        fail(f"grace {grace_ms}: {len(both) - len(set(both))} lines done twice")
    missing = set(range(1, n + 1)) - set(both)
    if missing:
        fail(f"grace {grace_ms}: {len(missing)} lines never done, the first {min(missing)}")
    skipped = len(resume) > 2
    print(f"grace {grace_ms} ms: {len(first)} lines done before the signal, {len(second)} after "
          f"({' '.join(resume[:2])}{', with a --skip list of ' + str(resume[3].count(',') + 1) if skipped else ''})")


def main():
    exe = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
    check_memory = "--no-memory-check" not in sys.argv[3:]
    with tempfile.TemporaryDirectory() as work:
        lines_file = os.path.join(work, "lines.txt")
        with open(lines_file, "w") as f:
            f.writelines(f"https://example.org/{i}\n" for i in range(1, n + 1))
        for grace_ms in (2000, 0):
            stop_and_resume(exe, lines_file, n, grace_ms, work)

        if not check_memory:
            print("PASS (no memory check)")
            return
        # Memory: the peak RSS (VmHWM, counted from the exec on) with a
        # tenth of the lines done, and with nine tenths done.
        proc = subprocess.Popen([exe, "--file", lines_file, "--out", os.path.join(work, "out_mem"),
                                 "--max-concurrent", MAX_CONCURRENT, "--step-ms", STEP_MS],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        peaks = [wait_and_read_peak(proc, os.path.join(work, "out_mem"), n * k // 10) for k in (1, 9)]
        if proc.wait() != 0:
            fail(f"the memory run ended {proc.returncode}")
        print(f"peak RSS: {peaks[0]:.1f} MiB with {n // 10} lines done, {peaks[1]:.1f} MiB with {n * 9 // 10}")
        if peaks[1] - peaks[0] > BOUND_MIB:
            fail(f"memory grew by {peaks[1] - peaks[0]:.1f} MiB, more than {BOUND_MIB}")
    print("PASS")


if __name__ == "__main__":
    main()
