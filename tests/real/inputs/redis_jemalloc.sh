# real.redis's second part (tests/real/redis.py), run under hakmem as
# `sh redis_jemalloc.sh` in an empty directory: Redis is linked with
# libjemalloc and calls mallctl (statistics, background_thread,
# arena.N.purge) and malloc_stats_print. Prints what redis.py checks: the
# server's thread names, INFO memory after a load and after FLUSHALL, and
# the first line of MEMORY MALLOC-STATS.
set -e
sock="$PWD/redis.sock"
redis-server --port 0 --unixsocket "$sock" --dir "$PWD" --save '' --appendonly no \
  --enable-debug-command yes --logfile "$PWD/server.log" &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
cli() { redis-cli -s "$sock" "$@"; }
for i in $(seq 300); do [ "$(cli ping 2>/dev/null)" = PONG ] && break; sleep 0.1; done
cli debug populate 200000 key 100 >/dev/null
for t in /proc/$pid/task/*; do echo "thread: $(cat "$t/comm")"; done
sleep 0.3 # INFO memory's allocator figures are refreshed by the server's cron, every 100 ms
cli info memory | tr -d '\r' | grep -E '^(used_memory|allocator_allocated|allocator_active|allocator_resident):' |
  sed 's/^/loaded /'
cli flushall >/dev/null
sleep 0.3 # INFO memory's allocator figures are refreshed by the server's cron, every 100 ms
cli info memory | tr -d '\r' | grep -E '^(used_memory|allocator_allocated|used_memory_rss):' | sed 's/^/flushed /'
cli memory malloc-stats | head -1 | sed 's/^/malloc-stats: /'
cli shutdown nosave >/dev/null 2>&1 || true
wait $pid || true
