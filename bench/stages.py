"""`settle` with wall and CPU time recorded at every progress message (for bench/run.py).

    python bench/stages.py STAGES.jsonl [--serial-audits] run --league … --month … --logs … --out …

Runs the real command line (`settlement.cli.main`) with its progress going to STAGES.jsonl
instead of the screen: one JSON line per message with the wall clock and the CPU seconds of the
whole process (every thread, DuckDB's and Polars' included) at that moment. `--serial-audits`
runs the pre-publication audits before the statements instead of beside them, so that each has
its own wall and CPU time (`audits` and `audits done` lines).
"""

import time

START = time.perf_counter()

import json  # noqa: E402 - the clock starts before the imports
import sys  # noqa: E402
import threading  # noqa: E402

out = open(sys.argv[1], "w", encoding="utf-8")  # noqa: SIM115 - kept open for the run
args = sys.argv[2:]


def mark(message: str) -> None:
    """Wall seconds since this script started, CPU seconds since the process did."""
    wall, cpu = time.perf_counter() - START, time.process_time()
    out.write(json.dumps({"wall": wall, "cpu": cpu, "message": message}, ensure_ascii=False))
    out.write("\n")
    out.flush()


mark("start")
from settlement import cli, engine  # noqa: E402

cli._progress = lambda quiet: mark  # the command's progress, with -q or without

if args and args[0] == "--serial-audits":
    args = args[1:]
    one_at_a_time = threading.Lock()
    audit, render = engine._audit_before_publishing, engine.render

    def serial_audit(*a, **k):
        with one_at_a_time:
            mark("audits")
            try:
                return audit(*a, **k)
            finally:
                mark("audits done")

    def serial_render(*a, **k):
        time.sleep(0.05)  # let the audits take the lock first
        with one_at_a_time:
            mark("statements")
            return render(*a, **k)

    engine._audit_before_publishing, engine.render = serial_audit, serial_render

mark("imported")
try:
    cli.main(args, prog_name="settle", standalone_mode=True)
finally:
    mark("exit")
