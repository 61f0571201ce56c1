//! GNU parallel compatibility: every one-liner in docs/gnu-parallel.md's table is run by
//! GNU parallel and by `wrangle run` (the same line, `parallel` replaced by `wrangle
//! run`), each in a fresh directory with the same files, and their standard outputs
//! compared (sorted unless the line keeps order with `-k` or runs one job at a time).
//! Lines the table marks `exit 2` must end with exit code 2 and one error line. The table
//! is the list: a line added to the docs is tested, and one that stops matching fails.
//!
//! Needs GNU parallel (`apt-get install parallel`; scripts/test.sh installs it).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// One row of the table.
struct OneLiner {
    number: String,
    line: String,
    /// `None`: the same output as GNU parallel; `Some(why)`: exit 2.
    refused: Option<String>,
}

fn table() -> Vec<OneLiner> {
    let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/gnu-parallel.md");
    let text = std::fs::read_to_string(&doc).expect("docs/gnu-parallel.md");
    text.lines()
        .filter(|line| {
            line.starts_with("| ") && line[2..].starts_with(|c: char| c.is_ascii_digit())
        })
        .map(|row| {
            // Cells split at `|` that are not escaped as `\|` (pipes inside one-liners).
            let cells: Vec<String> = split_cells(row);
            assert_eq!(cells.len(), 3, "a row has 3 cells: {row}");
            let line = cells[1]
                .strip_prefix('`')
                .and_then(|l| l.strip_suffix('`'))
                .unwrap_or_else(|| panic!("the one-liner is in backticks: {row}"))
                .to_string();
            let refused = cells[2].strip_prefix("exit 2: ").map(str::to_string);
            assert!(
                refused.is_some() || cells[2] == "same output",
                "the outcome is 'same output' or 'exit 2: why': {row}"
            );
            OneLiner {
                number: cells[0].clone(),
                line,
                refused,
            }
        })
        .collect()
}

fn split_cells(row: &str) -> Vec<String> {
    let mut cells = vec![String::new()];
    let mut chars = row.trim().trim_matches('|').chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                cells.last_mut().unwrap().push('|');
                chars.next();
            }
            '|' => cells.push(String::new()),
            c => cells.last_mut().unwrap().push(c),
        }
    }
    cells.iter().map(|c| c.trim().to_string()).collect()
}

/// A fresh directory with the table's files.
fn fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write("abc-file", "a\nb\nc\n");
    write("num.txt", "1\n2\n3\n");
    write("table.tsv", "1\ta\n2\tb\n");
    write("table.csv", "x,y,z\n1,2,3\n");
    write("a.txt", "hello\n");
    write("b.txt", "world!\n");
    write("c.log", "log\n");
    write("dir/x.tar.gz", "");
    dir
}

/// A directory on `PATH` whose `wrangle` is the binary under test.
fn wrangle_on_path() -> (tempfile::TempDir, String) {
    let bin = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_wrangle"), bin.path().join("wrangle")).unwrap();
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    (bin, path)
}

fn run_line(line: &str, path: &str, home: &Path) -> Output {
    let dir = fixture();
    Command::new("bash")
        .args(["-c", line])
        .current_dir(dir.path())
        .env("PATH", path)
        // GNU parallel asks once per user to be cited; the marker file says it was.
        .env("HOME", home)
        .env_remove("PARALLEL")
        .output()
        .unwrap()
}

fn stdout_compared(out: &Output, keeps_order: bool) -> String {
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if keeps_order {
        return text;
    }
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort_unstable();
    lines.join("\n")
}

fn gnu_parallel() -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("parallel"))
            .find(|p| p.is_file())
    });
    found.expect(
        "GNU parallel is needed to compare with (apt-get install parallel; scripts/test.sh installs it)",
    )
}

#[test]
fn gnu_parallel_one_liners_give_the_same_output_or_a_clear_refusal() {
    gnu_parallel();
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join(".parallel")).unwrap();
    std::fs::write(home.path().join(".parallel/will-cite"), "").unwrap();
    let (_bin, path) = wrangle_on_path();
    let rows = table();
    assert!(
        rows.len() >= 40,
        "the table lists {} one-liners",
        rows.len()
    );
    let mut failures = Vec::new();
    for row in &rows {
        assert_eq!(
            row.line.matches("parallel").count(),
            1,
            "line {}: name parallel once, as the command",
            row.number
        );
        let ours = row.line.replace("parallel", "wrangle run");
        let wrangle = run_line(&ours, &path, home.path());
        let stderr = String::from_utf8_lossy(&wrangle.stderr).into_owned();
        if let Some(why) = &row.refused {
            if wrangle.status.code() != Some(2)
                || stderr.trim_end().lines().count() != 1
                || !stderr.starts_with("wrangle: error: ")
            {
                failures.push(format!(
                    "{} `{ours}` should be refused ({why}) with exit 2 and one line; got {:?}: {stderr}",
                    row.number,
                    wrangle.status.code()
                ));
            }
            continue;
        }
        let gnu = run_line(&row.line, &path, home.path());
        let keeps_order = row.line.contains(" -k") || row.line.contains("-j1");
        let (theirs, mine) = (
            stdout_compared(&gnu, keeps_order),
            stdout_compared(&wrangle, keeps_order),
        );
        assert!(
            !theirs.is_empty(),
            "line {}: GNU parallel printed nothing: {}",
            row.number,
            String::from_utf8_lossy(&gnu.stderr)
        );
        if theirs != mine {
            failures.push(format!(
                "{} `{}`\n  GNU parallel: {theirs:?}\n  wrangle run:  {mine:?}\n  wrangle's stderr: {stderr}",
                row.number, row.line
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
