//! Runs the store conformance suite against the in-memory store.

use std::sync::Arc;

use wrangle_conformance::{Handle, Harness, anyhow, async_trait};
use wrangle_store_memory::MemoryStore;

/// Opens in-memory stores; "another process" is the same store through a second `Arc`.
struct Memory;

#[async_trait]
impl Harness for Memory {
    fn name(&self) -> &'static str {
        "memory"
    }

    async fn fresh(&self) -> anyhow::Result<(Handle, Handle)> {
        let store: Handle = Arc::new(MemoryStore::new());
        Ok((Arc::clone(&store), store))
    }
}

fn main() {
    wrangle_conformance::run(Memory)
}
