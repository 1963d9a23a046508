# real.python: dicts, strings, sorting, sets, tuples and growing buffers;
# prints the sizes and a sha256 of everything it built
import hashlib, json, random, sys
r = random.Random(20251125)
h = hashlib.sha256()
# dicts of lists and strings, with deletions
d = {}
for i in range(60000):
    d["k%d_%s" % (i, "x" * (i % 40))] = [i, str(i * 7), {"a": i % 13, "b": list(range(i % 9))}]
for i in range(0, 60000, 3):
    del d["k%d_%s" % (i, "x" * (i % 40))]
h.update(json.dumps(d, sort_keys=True).encode())
# string building, splitting, sorting
parts = [("%08x" % r.getrandbits(32)) * (1 + i % 5) for i in range(60000)]
s = "|".join(parts)
h.update(s.encode())
words = s.split("|")
words.sort()
h.update("".join(words[::1000]).encode())
# many short-lived objects: sets, tuples, nested lists
acc = 0
for rnd in range(6):
    st = set()
    lst = []
    for i in range(20000):
        t = (rnd, i, str(i) * (i % 7))
        st.add(t)
        lst.append([t, {i: t}])
    acc += len(st) + sum(len(x[0][2]) for x in lst)
h.update(str(acc).encode())
# growing buffers
ba = bytearray()
for i in range(100000):
    ba += bytes([i % 256]) * (i % 50)
h.update(hashlib.sha256(ba).digest())
print(len(d), len(words), acc, len(ba))
print(h.hexdigest())
