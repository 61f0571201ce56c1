-- Up to ? lines of owner ? numbered above ?, oldest first (binds: owner, after, limit).
SELECT seq, at, source, text FROM wrangle_logs WHERE owner = ? AND seq > ? ORDER BY seq LIMIT ?
