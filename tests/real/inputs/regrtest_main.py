# real.pytests: CPython's test runner (python -m test), given to python -c
# with regrtest's arguments after it. Only this process prints hakmem's
# report: the variable is gone before any child starts (some tests compare
# child processes' stderr).
import os, sys, runpy
os.environ.pop("HAKMEM_STATS", None)
sys.argv[0] = "test"
runpy.run_module("test", run_name="__main__", alter_sys=True)
