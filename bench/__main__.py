"""All benchmarks, one after another: `python -m bench` (about 35 minutes on 2 cores)."""
import time

from bench import billing, canary, cold_start, dashboard_feed, fanout, makespan, pacing, resources

started = time.monotonic()
for module in (makespan, cold_start, resources, pacing, fanout, dashboard_feed, canary, billing):
    print(f"\n=== {module.__name__} ===")
    module.main()
print(f"\nall benchmarks in {time.monotonic() - started:.0f}s")
