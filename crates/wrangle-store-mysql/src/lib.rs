//! MySQL 8 / MariaDB 10.6+ wrangle store: SKIP LOCKED claims (work in progress).
