# real.cc (tests/real/cc.py), run as `sh cc.sh ROOT`: the compilers (cc1,
# cc1plus: obstacks, GC'd trees, many small nodes) compiling hakmem's own
# sources (every .c under ROOT/src, in a fixed order) and its C++ test to
# assembly on stdout
set -e
root=$1
for f in $(cd "$root" && find src -name '*.c' | LC_ALL=C sort); do
  gcc -std=c11 -D_GNU_SOURCE -O2 -I"$root/include" -I"$root/src" -S -o - "$root/$f"
done
g++ -std=c++17 -O2 -I"$root/include" -S -o - "$root/tests/test_cxx.cpp"
