# bench_plot.gp — the chart of docs/bench.png, drawn by scripts/bench.py.
# Variables (gnuplot -e): ratiofile, rssfile, outfile, ncols, nrows, cols, ref, ttl,
# ymin (the ratio axis' lower end, a power of two at or below the smallest ratio).
# Both data files: a header line "workload alloc1 alloc2 ...", then one line
# per workload; '?' marks a missing or FAILED cell.

if (!exists("ref")) ref = "mimalloc"
if (!exists("ttl")) ttl = "allocator comparison"
if (!exists("ymin")) ymin = 0.125

set terminal pngcairo size 1500,1000 font "DejaVu Sans,10" noenhanced
set output outfile
set datafile missing '?'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border rgb "#333333"
set boxwidth 0.9
set grid ytics lc rgb "#dddddd"
set key outside right top vertical
set xtics rotate by -25 nomirror
set ytics nomirror
set border 3

# one fixed colour per allocator, whichever columns are present
# (names: the variable "cols", the allocators in column order)
color(n) = n eq "glibc" ? 0x8c8c8c : n eq "hakmem" ? 0xd62728 : n eq "mimalloc" ? 0x1f77b4 : \
           n eq "jemalloc" ? 0x2ca02c : n eq "tcmalloc" ? 0xff7f0e : 0x9467bd
if (!exists("cols")) cols = "glibc hakmem mimalloc jemalloc tcmalloc"

if (exists("nrows")) set xrange [-0.6:nrows-0.4]
set multiplot layout 2,1 title ttl font ",12"

set title sprintf("throughput relative to %s (median ops/s; higher is better)", ref)
set ylabel sprintf("ops/s ÷ %s (log scale)", ref)
set logscale y 2
# bars rise from the axis' lower end, so it must lie below every ratio or a
# bar (an allocator 20 times slower) would vanish
set yrange [ymin:*]
set ytics ("1/1024" 2**-10, "1/256" 2**-8, "1/64" 2**-6, "1/32" 2**-5, "1/16" 2**-4, "1/8" 0.125, "1/4" 0.25, \
           "1/2" 0.5, "1" 1, "2" 2, "4" 4, "8" 8, "16" 16, "32" 32, "64" 64)
set arrow 1 from graph 0, first 1 to graph 1, first 1 nohead dt 2 lw 1.5 lc rgb "#000000" front
plot for [i=2:ncols] ratiofile using i:xtic(1) title columnheader(i) lc rgb color(word(cols, i-1))
unset arrow 1

set title "peak RSS (median of the runs' peaks; lower is better)"
set ylabel "MiB (log scale)"
set logscale y 10
set ytics auto
set yrange [*:*]
plot for [i=2:ncols] rssfile using i:xtic(1) title columnheader(i) lc rgb color(word(cols, i-1))

unset multiplot
