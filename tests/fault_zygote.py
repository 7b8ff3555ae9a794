"""A fork server for the fault-injection tests: ``caseward`` commands without the start-up.

Run as ``python -m tests.fault_zygote``. It imports the CLI once, then reads one JSON request
per line on stdin and answers one JSON line on stdout:

* ``{"run": [argv...], "env": {...}, "out": path}``: fork a child that runs
  ``caseward.cli.main.main(argv)`` with ``env`` added to its environment and its output in
  ``out``; answers ``{"pid": N}``. The test may SIGKILL that pid at any moment.
* ``{"poll": N}``: reap child N if it has ended; answers ``{"pid": N, "ended": bool, "code":
  C, "signal": S}`` (the exit code, or the signal that ended it).

Each child is exactly the ``caseward`` console script minus the interpreter's start-up (about
a second of imports here): it opens its own engine and settings, since the server opened none.
"""

from __future__ import annotations

import json
import os
import sys


def _child(argv: list[str], env: dict[str, str], out: str) -> None:
    os.environ.update(env)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115 - the child's own
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
    code = 70
    try:
        from caseward.cli.main import main

        code = main(argv)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def serve() -> None:
    import cases.email.senders.sendgrid
    import cases.enforcement.platform.http  # noqa: F401
    import caseward.cli.main  # noqa: F401  (what every child would import)

    reply = sys.stdout
    for line in sys.stdin:
        request = json.loads(line)
        if "run" in request:
            pid = os.fork()
            if pid == 0:
                _child(request["run"], request.get("env", {}), request["out"])
            answer = {"pid": pid}
        else:
            pid = int(request["poll"])
            ended, status = os.waitpid(pid, os.WNOHANG)
            answer = {
                "pid": pid,
                "ended": ended == pid,
                "code": os.WEXITSTATUS(status) if ended and os.WIFEXITED(status) else None,
                "signal": os.WTERMSIG(status) if ended and os.WIFSIGNALED(status) else None,
            }
        reply.write(json.dumps(answer) + "\n")
        reply.flush()


if __name__ == "__main__":
    serve()
