#!/usr/bin/env python3
"""Runs a command on a pseudo-terminal, the way a person at a terminal would.

    pty_run.py [--answer TEXT --after PROMPT] [--timeout S] -- COMMAND [ARG]...

Standard input, output and error of COMMAND are the terminal. When --answer is given, TEXT and a
newline are typed once PROMPT has appeared on the terminal. Everything the terminal showed is
written to our standard output (carriage returns kept, so progress lines that redraw can be
seen), and we exit with COMMAND's exit status (124 on a timeout).
"""
import argparse
import os
import pty
import select
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--answer")
    parser.add_argument("--after", default="[y/N]")
    parser.add_argument("--timeout", type=float, default=120)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    options = parser.parse_args()
    command = options.command[1:] if options.command[:1] == ["--"] else options.command

    pid, fd = pty.fork()
    if pid == 0:
        os.environ.pop("NO_COLOR", None)
        os.execvp(command[0], command)
    shown = b""
    answered = options.answer is None
    deadline = time.monotonic() + options.timeout
    while True:
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            sys.stdout.buffer.write(shown)
            return 124
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the child closed the terminal
                chunk = b""
            if not chunk:
                break
            shown += chunk
        if not answered and options.after.encode() in shown:
            os.write(fd, options.answer.encode() + b"\n")
            answered = True
    _, status = os.waitpid(pid, 0)
    sys.stdout.buffer.write(shown)
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main())
