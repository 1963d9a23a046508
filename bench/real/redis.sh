# The real_redis row of make bench (scripts/benchlib/workloads.py), run as
# `sh redis.sh KEYS REQUESTS` in a directory of its own: a redis-server on a
# unix socket filled with KEYS keys (DEBUG POPULATE), REQUESTS of each of
# redis-benchmark's standard commands against it (server and client under
# the allocator measured), then the dataset's size and digest, the same with
# every allocator (the benchmark's keys are fixed: no -r). No IO threads,
# unlike tests/real/inputs/redis.sh: they spin, and on a small shared
# machine the spinning, not the allocator, would decide the time.
set -e
keys=${1:?usage: redis.sh KEYS REQUESTS}
n=${2:?usage: redis.sh KEYS REQUESTS}
sock="$PWD/redis.sock"
rm -f "$sock" dump.rdb
redis-server --port 0 --unixsocket "$sock" --dir "$PWD" --save '' --appendonly no \
  --enable-debug-command yes --logfile "$PWD/server.log" &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
cli() { redis-cli -s "$sock" "$@"; }
i=0
until [ "$(cli ping 2>/dev/null)" = PONG ]; do
  i=$((i + 1))
  [ $i -lt 500 ] || { echo "redis-server did not start" >&2; exit 1; }
  sleep 0.02
done
cli debug populate "$keys" key 100 >/dev/null
redis-benchmark -s "$sock" -q -c 20 -n "$n" -d 64 -t set,get,incr,lpush,rpush,lpop,rpop,sadd,hset,spop,zadd,lrange_100,mset >/dev/null
cli dbsize
cli debug digest
cli shutdown nosave >/dev/null 2>&1 || true
wait $pid || true
