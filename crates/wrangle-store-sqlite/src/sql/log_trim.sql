-- Keeps the newest lines of owner ?1: drops those numbered ?2 or below.
DELETE FROM logs WHERE owner = ?1 AND seq <= ?2
