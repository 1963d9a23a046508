# real.redis: the command list that redis.sh sends through redis-cli: every
# data type, with deletions and pops
BEGIN { for (i = 0; i < 30000; i++) {
  printf "RPUSH list:%d %s\n", i % 300, substr("abcdefghijklmnopqrstuvwxyz0123456789", 1 + i % 30) i
  printf "HSET hash:%d f%d %s\n", i % 500, i, sprintf("%0" (1 + i % 200) "d", i)
  printf "SADD set:%d m%d\n", i % 200, i * 7 % 10007
  printf "ZADD zset:%d %d z%d\n", i % 100, i * 31 % 997, i
  printf "APPEND grow:%d %s\n", i % 50, sprintf("%0" (1 + i % 300) "d", i)
  if (i % 3 == 0) printf "DEL key:%d\n", i * 3
  if (i % 5 == 0) printf "LPOP list:%d\n", (i / 5) % 300
} }
