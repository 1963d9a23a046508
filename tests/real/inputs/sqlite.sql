PRAGMA cache_size = -65536;
PRAGMA journal_mode = WAL;
PRAGMA synchronous = OFF;
CREATE TABLE t(id INTEGER PRIMARY KEY, a INTEGER, b TEXT, c REAL, d BLOB);
WITH RECURSIVE cnt(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM cnt WHERE x < 200000)
INSERT INTO t SELECT x, (x * 2654435761) % 1000003,
  printf('name-%d-%s', x % 5003, substr('abcdefghijklmnopqrstuvwxyz', 1 + x % 26, 1 + x % 17)),
  (x % 1000) / 7.0, zeroblob(x % 200) FROM cnt;
CREATE INDEX ta ON t(a);
CREATE INDEX tb ON t(b, c);
SELECT count(*), sum(a), min(b), max(b), round(avg(c), 6), sum(length(d)) FROM t;
SELECT b, count(*), sum(a) FROM t GROUP BY b ORDER BY 2 DESC, 1 LIMIT 20;
SELECT count(*) FROM t WHERE a BETWEEN 1000 AND 200000;
SELECT t1.id, t2.id FROM t AS t1 JOIN t AS t2 ON t1.a = t2.a AND t1.id < t2.id ORDER BY 1, 2 LIMIT 10;
SELECT x.b, y.n FROM (SELECT DISTINCT b FROM t WHERE id < 2000) AS x
  JOIN (SELECT b, count(*) AS n FROM t GROUP BY b) AS y USING (b) ORDER BY y.n DESC, x.b LIMIT 10;
BEGIN;
UPDATE t SET b = b || '-updated-' || id WHERE id % 3 = 0;
DELETE FROM t WHERE id % 7 = 0;
COMMIT;
SELECT count(*), sum(length(b)), max(length(b)) FROM t;
SELECT length(group_concat(b, ',')) FROM (SELECT b FROM t ORDER BY a, id LIMIT 20000);
SELECT a % 100 AS k, count(*), min(id), max(id) FROM t GROUP BY k ORDER BY k LIMIT 5;
CREATE TABLE u AS SELECT id, upper(b) AS ub, a * 3 AS a3 FROM t WHERE id % 2 = 0;
SELECT count(*), sum(a3), min(ub) FROM u;
DROP TABLE u;
PRAGMA wal_checkpoint(TRUNCATE);
PRAGMA journal_mode = DELETE;
VACUUM;
PRAGMA integrity_check;
SELECT count(*) FROM t;
