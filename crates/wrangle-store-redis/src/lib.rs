//! Redis wrangle store: atomic Lua claims, blocking wake-ups (work in progress).
