//! PostgreSQL wrangle store: FOR UPDATE SKIP LOCKED claims, LISTEN/NOTIFY wake-ups (work in progress).
