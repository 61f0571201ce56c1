//! Writing to stdout when the reader may go away: a listing piped into `head -1` ends the
//! command quietly with exit 0 at the first write after the pipe closed, as ripgrep does,
//! instead of panicking ("failed printing to stdout: Broken pipe") as `println!` would.
//!
//! Every command prints through [`out!`] and [`outp!`]; `wrangle run` writes items' output
//! itself and stops starting items instead (see `commands::run::output`).

use std::fmt;
use std::io::Write;

/// `println!` that ends the process quietly (exit 0) when stdout is a closed pipe.
macro_rules! out {
    () => {
        $crate::stdout::write(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::stdout::write(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` that ends the process quietly (exit 0) when stdout is a closed pipe.
macro_rules! outp {
    ($($arg:tt)*) => {
        $crate::stdout::write(format_args!($($arg)*))
    };
}

pub(crate) use {out, outp};

/// Writes `args` to stdout; see the module documentation.
pub(crate) fn write(args: fmt::Arguments<'_>) {
    let mut stdout = std::io::stdout().lock();
    if let Err(err) = stdout.write_fmt(args).and_then(|()| stdout.flush()) {
        if err.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("wrangle: error: cannot write to stdout: {err}");
        std::process::exit(crate::fail::EXIT_TASK_FAILED);
    }
}
