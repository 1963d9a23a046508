# real.git: ~400 files in 20 directories, deterministic contents (run by
# git.sh in the new repository)
BEGIN {
  for (d = 0; d < 20; d++) {
    system("mkdir -p dir" d);
    for (f = 0; f < 20; f++) {
      fn = "dir" d "/file" f ".txt";
      for (l = 0; l < 40 + (d * 7 + f) % 60; l++)
        printf "line %d of file %d in dir %d: %x %s\n", l, f, d, (l * 2654435761 + f * 40503 + d) % 4294967296, substr("the quick brown fox jumps over the lazy dog", 1 + l % 20) > fn;
      close(fn);
    }
  }
}
