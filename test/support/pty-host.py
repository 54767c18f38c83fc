# A pseudo-terminal host for CLI tests: runs argv on a fresh PTY, relays our stdin to it and its output to our stdout.
# Prints "pid <child pid>" on stderr first; exits with the child's code (128+N when signal N killed it).
import os
import pty
import select
import sys

pid, master = pty.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])

sys.stderr.write(f"pid {pid}\n")
sys.stderr.flush()
reading_stdin = True
while True:
    ready, _, _ = select.select([master] + ([0] if reading_stdin else []), [], [])
    if 0 in ready:
        data = os.read(0, 4096)
        if data:
            os.write(master, data)
        else:
            reading_stdin = False
    if master in ready:
        try:
            data = os.read(master, 4096)
        except OSError:  # EIO: every process holding the terminal is gone
            break
        if not data:
            break
        os.write(1, data)
_, status = os.waitpid(pid, 0)
sys.exit(128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status))
