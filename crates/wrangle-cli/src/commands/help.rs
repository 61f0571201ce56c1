//! `wrangle completions` and `wrangle man`: shell completion scripts and manual pages,
//! generated (by clap_complete and clap_mangen) from the same command definitions as
//! `--help`, so none of them can drift from the CLI. Owns no grammar of its own.

use clap::CommandFactory;

use crate::cli::{Cli, ManArgs};
use crate::fail::{CliError, CliResult};
use crate::stdout::outp;

/// Prints the completion script for `shell`.
pub(crate) fn completions(shell: clap_complete::Shell) -> CliResult {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "wrangle", &mut script);
    outp!("{}", String::from_utf8_lossy(&script));
    Ok(0)
}

/// Prints the page of `args.command` (wrangle's own when empty), or writes every page
/// into `args.dir`.
pub(crate) fn man(args: &ManArgs) -> CliResult {
    let root = Cli::command();
    if let Some(dir) = &args.dir {
        std::fs::create_dir_all(dir)
            .and_then(|()| clap_mangen::generate_to(root, dir))
            .map_err(|e| {
                CliError::Runtime(format!("cannot write pages into {}: {e}", dir.display()))
            })?;
        return Ok(0);
    }
    // Walk down to the named subcommand. Once built, each carries its page title
    // (`wrangle-job-create`, as `generate_to` names the files) and its usage line.
    let mut command = root;
    command.build();
    for (depth, name) in args.command.iter().enumerate() {
        let Some(sub) = command.find_subcommand(name).cloned() else {
            return Err(CliError::input(format!(
                "no command 'wrangle {}' (see wrangle --help)",
                args.command[..=depth].join(" ")
            )));
        };
        command = sub;
    }
    let mut page = Vec::new();
    clap_mangen::Man::new(command)
        .render(&mut page)
        .map_err(|e| CliError::Runtime(format!("cannot render the page: {e}")))?;
    outp!("{}", String::from_utf8_lossy(&page));
    Ok(0)
}
