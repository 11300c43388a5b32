"""Runs a command, passes its output through, and prints its peak RSS in KiB as the last line."""
import os
import subprocess
import sys

child = subprocess.Popen(sys.argv[1:])
_, status, usage = os.wait4(child.pid, 0)
sys.stdout.flush()
print(usage.ru_maxrss, flush=True)
sys.exit(os.waitstatus_to_exitcode(status))
