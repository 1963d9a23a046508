"""Reading back what the programs print. Pure functions of text."""
import re


def parse_kv(text):
    """'a=1 b=x' -> {'a': '1', 'b': 'x'}; words without '=' are skipped."""
    out = {}
    for word in text.split():
        key, eq, value = word.partition("=")
        if eq:
            out[key] = value
    return out


def parse_result(stdout):
    """The last 'RESULT ...' line of a benchmark's output as a dict, or None.

    Numbers stay strings except ops_per_sec, ops and seconds (floats); extra
    (key=value,key=value) is split into the dict 'extra_kv'.
    """
    lines = [ln for ln in stdout.splitlines() if ln.startswith("RESULT ")]
    if not lines:
        return None
    res = parse_kv(lines[-1][len("RESULT "):])
    for key in ("ops_per_sec", "ops", "seconds"):
        if key in res:
            try:
                res[key] = float(res[key])
            except ValueError:
                del res[key]  # a malformed number must not pass as a measurement
    res["extra_kv"] = dict(item.partition("=")[::2] for item in res.get("extra", "").split(",") if "=" in item)
    return res


def result_ok(res):
    """Did the program check its work and report a rate?"""
    return res is not None and res.get("check") == "ok" and isinstance(res.get("ops_per_sec"), float)


def parse_owned(text):
    """'k/n' -> (k, n), or None."""
    m = re.fullmatch(r"(\d+)/(\d+)", text or "")
    return (int(m.group(1)), int(m.group(2))) if m else None


def parse_info(text):
    """runwrap's info file -> {'maxrss_kb': int, 'status': str, 'wall', 'user', 'sys': float}."""
    kv = parse_kv(text)
    info = {"status": kv.get("status", "")}
    for key, conv in (("maxrss_kb", int), ("wall", float), ("user", float), ("sys", float)):
        try:
            info[key] = conv(kv[key])
        except (KeyError, ValueError):
            info[key] = None
    return info


_STRACE_ROW = re.compile(r"[a-z_0-9]+")


def parse_strace(text):
    """The table of `strace -c` -> {syscall: calls}; 'total' is left out.

    A row is '% time, seconds, usecs/call, calls, [errors,] syscall': the
    calls are the fourth field whether or not errors is filled in.
    """
    counts = {}
    for line in text.splitlines():
        f = line.split()
        if len(f) >= 5 and _STRACE_ROW.fullmatch(f[-1]) and f[-1] != "total" and f[3].isdigit():
            counts[f[-1]] = counts.get(f[-1], 0) + int(f[3])
    return counts


_SNG_ROW = re.compile(r"^stress-ng: \w+:\s+\[\d+\]\s+([a-z][\w-]*)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)"
                      r"\s+([\d.]+)\s+([\d.]+)\s*$")


def parse_stress_ng(text, stressor="malloc"):
    """stress-ng --metrics-brief -> {'bogo_ops', 'real_s', 'usr_s', 'sys_s', 'ops_per_sec'} or None.

    The row is 'stressor, bogo ops, real time, usr time, sys time, bogo
    ops/s (real time), bogo ops/s (usr+sys time)'; the metric is the
    real-time rate, the one a user of the machine waits for.
    """
    for line in text.splitlines():
        m = _SNG_ROW.match(line)
        if m and m.group(1) == stressor:
            return {"bogo_ops": int(m.group(2)), "real_s": float(m.group(3)), "usr_s": float(m.group(4)),
                    "sys_s": float(m.group(5)), "ops_per_sec": float(m.group(6))}
    return None


def stats_lines(stderr, limit=3):
    """The first 'hakmem-stats:' lines of a run's stderr."""
    return [ln for ln in stderr.splitlines() if ln.startswith("hakmem-stats:")][:limit]


def stats_mallocs(stderr):
    """The largest mallocs=N of the 'hakmem-stats:' lines, or None without one.

    A program that forks prints one report per process that exits through
    exit(); the largest is the one that shows hakmem served the work.
    """
    best = None
    for line in stats_lines(stderr, limit=None):
        m = re.search(r"(?:^hakmem-stats:| )mallocs=(\d+)(?: |$)", line)
        if m:
            best = max(best or 0, int(m.group(1)))
    return best


def callgrind_total(stderr):
    """The instruction total callgrind prints ('Collected : N'), or None."""
    found = re.findall(r"Collected : (\d+)", stderr)
    return int(found[-1]) if found else None
