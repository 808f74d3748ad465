#!/usr/bin/env python3
"""examples/drain_progress on a real terminal: a tmux pane of a tmux server
of its own. Waits for the program's first line, sends C-c as a person would
(tmux send-keys: the terminal's SIGINT to the foreground process group),
and checks the pane: the live progress line while the drain goes on, the
line rewritten in place (one line, not one per report), the report after
it, and the death by SIGINT.

    drain_progress_test.py EXE

Exit status 0 when it holds; the reason otherwise. Prints the last pane."""

import os
import shutil
import subprocess
import sys
import time

WIDTH, HEIGHT = 200, 40


def fail(message):
    print("FAIL:", message)
    sys.exit(1)


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        sys.exit(2)
    exe = os.path.abspath(sys.argv[1])
    if shutil.which("tmux") is None:
        fail("tmux is not installed (scripts/deps installs it)")
    server = f"graceful-drain-{os.getpid()}"
    tmux = ["tmux", "-L", server, "-f", "/dev/null"]

    def run(*args):
        return subprocess.run([*tmux, *args], check=True, capture_output=True, text=True).stdout

    def pane():
        return run("capture-pane", "-p", "-S", "-", "-t", "t")  # the history too

    def wait_for(predicate, what, within):
        limit = time.monotonic() + within
        while time.monotonic() < limit:
            text = pane()
            if predicate(text):
                return text
            time.sleep(0.05)  # polling the screen, not synchronising with the program
        state = run("display-message", "-p", "-t", "t", "#{pane_dead} #{pane_dead_signal} #{pane_pid}")
        fail(f"timed out waiting for {what} (pane dead, signal, pid: {state.strip()}); the pane:\n{pane()}")

    env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "NOTIFY_SOCKET")}
    subprocess.run([*tmux, "new-session", "-d", "-s", "t", "-x", str(WIDTH), "-y", str(HEIGHT)],
                   check=True, env=env)
    try:
        run("set-option", "-g", "remain-on-exit", "on")
        # 8 jobs, 4 at a time; their work (2-20 s) is under way at the C-c, and
        # their cleanups take 0.5-4 s: the drain lasts a few seconds.
        # Under a small Python parent that ignores the terminal's SIGINT and
        # prints how the program ended (tmux 3.3 may mark a pane dead before
        # it reaps the program, and then never say how it ended).
        watcher = ("import signal, subprocess, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
                   "p = subprocess.Popen(sys.argv[1:], "
                   "preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)); "
                   "print('EXIT', p.wait(), flush=True)")
        run("respawn-pane", "-k", "-t", "t", sys.executable, "-c", watcher,
            exe, "--tasks", "8", "--max-concurrent", "4", "--seed", "7")
        wait_for(lambda t: "Press Ctrl+C" in t, "the first line", 10)
        run("send-keys", "-t", "t", "C-c")
        during = wait_for(lambda t: "[cancelling]" in t, "the progress line", 10)
        for want in ("since the stop:", "cleaning up", "never started", "waiting for job-"):
            if want not in during:
                fail(f"the progress line has no {want!r}:\n{during}")
        final = wait_for(lambda t: "EXIT " in t, "the exit", 20)
        print(final.rstrip())
        lines = [l for l in final.splitlines() if l.strip() and not l.startswith(("EXIT ", "Pane is dead"))]
        progress = [l for l in lines if l.startswith("[")]
        if len(progress) != 1 or not progress[0].startswith("[done]"):
            fail(f"the progress line was not rewritten in place into one [done] line: {progress}")
        if not lines[0].startswith("8 jobs, 4 at a time"):
            fail(f"the first line is gone: {lines[0]!r}")
        if not any(l.startswith("graceful run of 8 tasks: stopped by signal 2") for l in lines):
            fail("no report after the progress line")
        if lines.index(progress[0]) > [i for i, l in enumerate(lines) if l.startswith("graceful run")][0]:
            fail("the report came before the progress line")
        if "EXIT -2" not in final:
            fail("the program did not die by SIGINT")
        print("PASS")
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)


if __name__ == "__main__":
    main()
