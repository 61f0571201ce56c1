//! Turns at maintenance duties (`take_turn`): of many workers, one at a time holds a duty
//! such as pruning, until its turn ends or it lets it lapse.

use anyhow::Result;

use crate::Handle;
use crate::ensure_eq;
use crate::support::at;

cases![
    one_holder_at_a_time_until_the_turn_ends,
    duties_are_independent
];

/// The first taker holds the turn and may renew it; another is refused while it lasts
/// and gets it once it has ended (at its end, not before).
async fn one_holder_at_a_time_until_the_turn_ends(a: Handle, b: Handle) -> Result<()> {
    ensure_eq!(
        a.take_turn("pruner", "w1", at(10), at(0)).await?,
        true,
        "w1 at 0 s"
    );
    ensure_eq!(
        b.take_turn("pruner", "w2", at(12), at(5)).await?,
        false,
        "w2 at 5 s"
    );
    ensure_eq!(
        a.take_turn("pruner", "w1", at(20), at(9)).await?,
        true,
        "w1 renews at 9 s"
    );
    ensure_eq!(
        b.take_turn("pruner", "w2", at(25), at(15)).await?,
        false,
        "w2 at 15 s"
    );
    ensure_eq!(
        b.take_turn("pruner", "w2", at(30), at(20)).await?,
        true,
        "w2 at 20 s"
    );
    ensure_eq!(
        a.take_turn("pruner", "w1", at(31), at(21)).await?,
        false,
        "w1 at 21 s"
    );
    Ok(())
}

/// Holding one duty says nothing about another.
async fn duties_are_independent(a: Handle, b: Handle) -> Result<()> {
    ensure_eq!(
        a.take_turn("pruner", "w1", at(10), at(0)).await?,
        true,
        "pruner"
    );
    ensure_eq!(
        b.take_turn("other", "w2", at(10), at(0)).await?,
        true,
        "other"
    );
    Ok(())
}
