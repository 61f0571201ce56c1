//! Runs the store conformance suite against the Redis store with every batch without
//! unique keys, even of one task, written by the bulk enqueue (`src/bulk.rs`) instead of
//! `enqueue.lua`: both must leave the same records, indexes and counts.

mod harness;

fn main() {
    harness::run("redis (bulk enqueue)", 1);
}
