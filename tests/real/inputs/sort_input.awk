# real.sort: ~50 MB of lines, deterministic: a pseudo-random 10-digit key, a
# letter, the line number and a short word, comma-separated
BEGIN {
  x = 12345
  for (i = 0; i < 1200000; i++) {
    x = (x * 1103515245 + 12345) % 2147483648
    printf "%010d,%s,%d,%s\n", x, substr("zyxwvutsrqponmlkjihgfedcba", 1 + x % 26), i, substr("ABCDEFGHIJ0123456789abcdefghij", 1 + x % 30)
  }
}
