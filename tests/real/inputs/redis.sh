# real.redis (tests/real/redis.py), run as `sh redis.sh` in an empty
# directory: a server with IO threads, loaded with every data type, a fork
# (BGSAVE) under load, then a restart that loads the saved file; prints the
# dataset's size and digest at each step
set -e
inputs=$(cd "$(dirname "$0")" && pwd)
sock="$PWD/redis.sock"
start() {
  redis-server --port 0 --unixsocket "$sock" --dir "$PWD" --dbfilename dump.rdb --save '' \
    --appendonly no --io-threads 2 --io-threads-do-reads yes --enable-debug-command yes \
    --logfile "$PWD/server.log" &
  pid=$!
  # ready means PONG: while it loads the saved file it answers LOADING, exit 0
  for i in $(seq 300); do [ "$(redis-cli -s "$sock" ping 2>/dev/null)" = PONG ] && return; sleep 0.1; done
  echo "redis-server did not start" >&2
  exit 1
}
cli() { redis-cli -s "$sock" "$@"; }
trap 'kill $pid 2>/dev/null || true' EXIT
start
cli debug populate 100000 key 100
awk -f "$inputs/redis_load.awk" | cli >/dev/null
redis-benchmark -s "$sock" -q -c 20 -n 20000 -t set,get,incr,lpush,rpush,lpop,rpop,sadd,hset,lrange_100,mset >/dev/null
cli dbsize
cli debug digest
cli bgsave >/dev/null
# more writes while the child saves: copy-on-write in both processes
redis-benchmark -s "$sock" -q -c 20 -n 20000 -t set,lpush,hset >/dev/null
for i in $(seq 600); do
  cli info persistence | grep -q '^rdb_bgsave_in_progress:0' && break
  sleep 0.1
done
cli info persistence | grep -o '^rdb_last_bgsave_status:[a-z]*'
cli debug digest
cli shutdown nosave >/dev/null 2>&1 || true
wait $pid || true
start
cli dbsize
cli debug digest
cli shutdown nosave >/dev/null 2>&1 || true
wait $pid || true
