//! Runs the store conformance suite against the Redis store with its default options.

mod harness;

fn main() {
    harness::run("redis", wrangle_store_redis::DEFAULT_BULK_ENQUEUE_FROM);
}
