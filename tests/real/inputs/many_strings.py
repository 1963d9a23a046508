# real.stats: at least 100000 allocations (one str per number), one line out
print(len([str(i) for i in range(100000)]))
