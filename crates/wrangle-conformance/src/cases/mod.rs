//! The case registry: one module per area, each listing its cases with [`cases!`].
//!
//! A case is an `async fn(Handle, Handle) -> anyhow::Result<()>` with a doc comment saying
//! which rule it checks; the two handles reach one store (the second as another process
//! would). Its trial is named `area::function_name`.

use crate::Case;

/// Declares this module's cases: `cases![first_case, second_case]` defines `cases()`,
/// returning them named `area::first_case`, … where `area` is the module's name.
macro_rules! cases {
    ($($case:ident),+ $(,)?) => {
        /// This area's cases, in the order listed.
        pub(crate) fn cases() -> Vec<$crate::Case> {
            let area = module_path!().rsplit("::").next().unwrap_or("cases");
            vec![$(
                $crate::Case::new(area, stringify!($case), |a, b| -> $crate::CaseFuture {
                    Box::pin($case(a, b))
                })
            ),+]
        }
    };
}

mod claim;
mod command;
mod complete;
mod enqueue;
mod job;
mod lease;
mod listen;
mod log;
mod model;
mod operator;
mod queue;
mod retry;
mod turn;
mod worker;

/// Every case of every area, in life-cycle order.
pub(crate) fn all() -> Vec<Case> {
    [
        enqueue::cases(),
        claim::cases(),
        complete::cases(),
        retry::cases(),
        lease::cases(),
        operator::cases(),
        queue::cases(),
        worker::cases(),
        command::cases(),
        job::cases(),
        turn::cases(),
        listen::cases(),
        log::cases(),
        model::cases(),
    ]
    .concat()
}
