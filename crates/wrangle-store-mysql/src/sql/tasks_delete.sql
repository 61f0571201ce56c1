-- Deletes the tasks whose ids are in the JSON array bound (already locked by the caller).
DELETE t FROM wrangle_tasks t
JOIN JSON_TABLE(?, '$[*]' COLUMNS (id BIGINT PATH '$')) AS d ON t.id = d.id
