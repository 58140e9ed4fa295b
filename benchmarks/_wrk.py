"""Drive HTTP routes with ``wrk``, a compiled load generator, and read its latency summary.

A Python generator competes with the server for the same CPU cores; ``wrk`` (one
thread, epoll) uses a small share of one. Each target is a POST with a fixed JSON body,
sent by a Lua script that numbers each request (``#N#`` in the body becomes 1, 2, ...: no
two questions are the same, so no cache answers them) and whose ``done`` hook prints the
counts and percentiles as JSON.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local template = [==[{body}]==]
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, nil, nil, (string.gsub(template, "#N#", tostring(n))))
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\\nWRK-JSON {{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"non_2xx": %d, "socket_errors": %d}}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout))
end
"""


@dataclass(frozen=True)
class WrkResult:
    """What one ``wrk`` run measured."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int

    @property
    def rate(self) -> float:
        """Requests per second."""
        return self.requests / self.seconds


def find_wrk() -> str:
    """The ``wrk`` executable.

    Raises:
        SystemExit: If it is not installed (``apt-get install wrk``).
    """
    found = shutil.which("wrk")
    if found is None:
        msg = "wrk is not installed: apt-get install wrk (or brew install wrk)"
        raise SystemExit(msg)
    return found


def run_wrk(
    url: str, body: dict, *, connections: int, seconds: float, script_dir: Path
) -> WrkResult:
    """POST ``body`` (``#N#`` numbered) to ``url`` from ``connections`` connections."""
    script = script_dir / f"wrk-{abs(hash(url))}.lua"
    text = json.dumps(body, ensure_ascii=False)
    script.write_text(_SCRIPT.format(body=text), encoding="utf-8")
    command = [find_wrk(), "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "60s"]
    command += ["-s", str(script), url]
    output = subprocess.run(  # noqa: S603 - a fixed command line
        command, capture_output=True, text=True, check=True, timeout=seconds + 120
    ).stdout
    line = next(line for line in output.splitlines() if line.startswith("WRK-JSON "))
    data = json.loads(line.removeprefix("WRK-JSON "))
    return WrkResult(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        non_2xx=data["non_2xx"],
        socket_errors=data["socket_errors"],
    )
