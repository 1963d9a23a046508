"""benchlib: the parts of scripts/bench.py, hakmem's allocator comparison.

workloads  the table of workloads (one row per workload, commands per mode)
stats      medians, summaries of a workload's runs, number formats
parse      the text the harness reads back: RESULT lines, runwrap's info
           file, strace -c tables, stress-ng metrics, hakmem-stats lines
measure    building the programs, finding the allocators, running them
realprog   the real programs (tests/real/), each through `hakmem compare`
report     docs/BENCHMARKS.md, the summary table, the chart and README block
"""
