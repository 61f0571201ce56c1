//! Where `wrangle run`'s items come from: stdin lines, `::: ITEM...`, `--items FILE`,
//! `--range START..END --block SIZE` or the stdout lines of a `--dispatch` command; or,
//! as in GNU parallel, several input sources (`::: a b ::: 1 2`, `:::: FILE`, linked
//! with `:::+`/`::::+`) whose combinations are the items, as tuples.
//!
//! A source is opened up front (so a missing file or an unrunnable dispatch command is
//! bad input, exit 2, before anything runs) and then read on its own thread into a
//! bounded channel: when the run falls behind, the reader blocks, and so does a dispatch
//! command writing into its pipe. That is what keeps memory flat for an endless source.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};
use tokio::sync::mpsc;
use wrangle::exec::command::{item_payload, tuple_payload};

use crate::fail::{CliError, CliResult};

/// Items waiting between the reader thread and the run.
const CHANNEL_ITEMS: usize = 1024;

/// One thing the reader produces: an item's payload, or why the source broke off.
pub(crate) type SourceEvent = Result<Value, String>;

/// How the values read become items: `-0` (NUL-separated input), `--colsep` (each
/// value split into columns) and `-N` (values grouped), as in GNU parallel.
#[derive(Debug, Clone, Default)]
pub(crate) struct Shape {
    /// Input lines end at NUL bytes, not newlines.
    pub(crate) null: bool,
    /// Each value is split into columns here: the item is the tuple of its columns.
    pub(crate) colsep: Option<regex::bytes::Regex>,
    /// Every `N` values make one item, a tuple (the last may be shorter; 0: one empty
    /// tuple per value).
    pub(crate) group: Option<usize>,
}

impl Shape {
    /// How many items `values` values make.
    pub(crate) fn items_of(&self, values: u64) -> u64 {
        match self.group {
            Some(n) if n > 1 => values.div_ceil(n as u64),
            _ => values,
        }
    }

    /// What ends an input line.
    pub(crate) fn separator(&self) -> u8 {
        if self.null { b'\0' } else { b'\n' }
    }
}

/// Sends a source's values as items, shaped by a [`Shape`]; `false` once the run stopped
/// listening.
struct Emitter<'a> {
    items: &'a mpsc::Sender<SourceEvent>,
    shape: &'a Shape,
    /// `-N`: values waiting for the rest of their group.
    pending: Vec<Vec<u8>>,
}

impl<'a> Emitter<'a> {
    fn new(items: &'a mpsc::Sender<SourceEvent>, shape: &'a Shape) -> Self {
        Emitter {
            items,
            shape,
            pending: Vec::new(),
        }
    }

    fn send(&self, event: SourceEvent) -> bool {
        self.items.blocking_send(event).is_ok()
    }

    /// One value of a single source.
    fn value(&mut self, value: Vec<u8>) -> bool {
        if let Some(colsep) = &self.shape.colsep {
            return self.send(Ok(tuple_payload(columns(colsep, &value))));
        }
        match self.shape.group {
            None => self.send(Ok(item_payload(value))),
            Some(0) => self.send(Ok(tuple_payload(Vec::new()))),
            Some(n) => {
                self.pending.push(value);
                if self.pending.len() < n {
                    return true;
                }
                let group = std::mem::take(&mut self.pending);
                self.send(Ok(tuple_payload(group)))
            }
        }
    }

    /// One combination of several sources (`--colsep` splits each of its values).
    fn tuple(&mut self, values: Vec<Vec<u8>>) -> bool {
        let values = match &self.shape.colsep {
            Some(colsep) => values.iter().flat_map(|v| columns(colsep, v)).collect(),
            None => values,
        };
        self.send(Ok(tuple_payload(values)))
    }

    /// The source ended: a short last group is an item too.
    fn finish(&mut self) -> bool {
        if self.pending.is_empty() {
            return true;
        }
        let group = std::mem::take(&mut self.pending);
        self.send(Ok(tuple_payload(group)))
    }
}

fn columns(colsep: &regex::bytes::Regex, value: &[u8]) -> Vec<Vec<u8>> {
    colsep.split(value).map(<[u8]>::to_vec).collect()
}

/// A validated item source.
#[derive(Debug, Clone)]
pub(crate) enum ItemSource {
    /// Lines of standard input.
    Stdin,
    /// Lines of a file.
    File(PathBuf),
    /// Items given after `:::`, byte for byte.
    Args(Vec<std::ffi::OsString>),
    /// Tuples of arguments, one from each of several input sources.
    Tuples(Vec<Vec<Vec<u8>>>),
    /// Blocks of ids.
    Range { start: i64, end: i64, block: u64 },
    /// Lines a command prints.
    Dispatch(Vec<String>),
}

impl ItemSource {
    /// How many items there will be, when that is known before reading them.
    pub(crate) fn known_total(&self, shape: &Shape) -> Option<u64> {
        match self {
            ItemSource::Args(items) => Some(shape.items_of(items.len() as u64)),
            ItemSource::Tuples(tuples) => Some(tuples.len() as u64),
            ItemSource::Range { start, end, block } => Some(end.abs_diff(*start).div_ceil(*block)),
            _ => None,
        }
    }

    /// The regular file items are read from, whose lines can be counted ahead for an ETA
    /// (not stdin, a pipe or a FIFO).
    pub(crate) fn countable_file(&self) -> Option<&std::path::Path> {
        match self {
            ItemSource::File(path)
                if path.as_os_str() != "-"
                    && std::fs::metadata(path).is_ok_and(|m| m.is_file()) =>
            {
                Some(path)
            }
            _ => None,
        }
    }

    /// Opens the source and starts reading it on a thread; items arrive on the receiver
    /// in order, and it closes when the source ends.
    pub(crate) fn start(&self, shape: &Shape) -> CliResult<mpsc::Receiver<SourceEvent>> {
        let (items, receiver) = mpsc::channel(CHANNEL_ITEMS);
        let shape = shape.clone();
        match self.clone() {
            ItemSource::Stdin => spawn_reader(move || {
                read_lines(std::io::stdin().lock(), &mut Emitter::new(&items, &shape))
            }),
            ItemSource::File(path) if path.as_os_str() == "-" => spawn_reader(move || {
                read_lines(std::io::stdin().lock(), &mut Emitter::new(&items, &shape))
            }),
            ItemSource::File(path) => {
                let file = std::fs::File::open(&path).map_err(|err| {
                    CliError::input(format!("cannot read --items {}: {err}", path.display()))
                })?;
                spawn_reader(move || {
                    read_lines(BufReader::new(file), &mut Emitter::new(&items, &shape))
                })
            }
            ItemSource::Args(args) => spawn_reader(move || {
                let mut emit = Emitter::new(&items, &shape);
                for arg in args {
                    if !emit.value(std::os::unix::ffi::OsStringExt::into_vec(arg)) {
                        return;
                    }
                }
                emit.finish();
            }),
            ItemSource::Tuples(tuples) => spawn_reader(move || {
                let mut emit = Emitter::new(&items, &shape);
                for tuple in tuples {
                    if !emit.tuple(tuple) {
                        return;
                    }
                }
            }),
            ItemSource::Range { start, end, block } => spawn_reader(move || {
                let mut from = start;
                while from < end {
                    let to = from.saturating_add(block as i64).min(end);
                    if items
                        .blocking_send(Ok(json!({"start": from, "end": to})))
                        .is_err()
                    {
                        return;
                    }
                    from = to;
                }
            }),
            ItemSource::Dispatch(argv) => {
                let child = Command::new(&argv[0])
                    .args(&argv[1..])
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::inherit())
                    .spawn()
                    .map_err(|err| {
                        CliError::input(format!("cannot run --dispatch '{}': {err}", argv[0]))
                    })?;
                spawn_reader(move || {
                    read_dispatch(child, &argv[0], &mut Emitter::new(&items, &shape))
                })
            }
        }
        Ok(receiver)
    }
}

/// The separators that start an input source: `:::` values, `::::` files; with `+`,
/// linked to the source before (paired, not combined).
const SEPARATORS: [&str; 4] = [":::", ":::+", "::::", "::::+"];

/// Whether `arg` starts an input source.
pub(crate) fn is_separator(arg: &std::ffi::OsStr) -> bool {
    SEPARATORS.iter().any(|s| arg == *s)
}

/// The items given by input sources: `rest` begins with a separator. One `:::` list is
/// [`ItemSource::Args`] and one `::::` file [`ItemSource::File`]; several become every
/// combination (the last source varying fastest), sources linked with `+` paired
/// instead (as long as the shorter), as GNU parallel does. Returns the source and
/// how many arguments each item has.
pub(crate) fn input_sources(rest: &[std::ffi::OsString]) -> CliResult<(ItemSource, usize)> {
    use std::os::unix::ffi::OsStringExt;
    // Each source: (linked to the previous, its values).
    let mut sources: Vec<(bool, Vec<Vec<u8>>)> = Vec::new();
    let mut files_only: Option<PathBuf> = None;
    let mut at = 0;
    while at < rest.len() {
        let separator = rest[at].to_string_lossy().into_owned();
        let values: Vec<&std::ffi::OsString> = rest[at + 1..]
            .iter()
            .take_while(|a| !is_separator(a))
            .collect();
        at += 1 + values.len();
        let linked = separator.ends_with('+');
        if linked && sources.is_empty() {
            return Err(CliError::input(format!(
                "{separator} links to an input source before it; start with ::: or ::::"
            )));
        }
        if values.is_empty() {
            return Err(CliError::input(format!(
                "{separator} needs at least one {} after it",
                if separator.starts_with("::::") {
                    "file"
                } else {
                    "item"
                }
            )));
        }
        if separator.starts_with("::::") {
            for (i, file) in values.iter().enumerate() {
                let path = PathBuf::from(file);
                files_only = Some(path.clone());
                let bytes = std::fs::read(&path).map_err(|err| {
                    CliError::input(format!("cannot read {separator} {}: {err}", path.display()))
                })?;
                let mut lines: Vec<Vec<u8>> =
                    bytes.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
                if lines.last().is_some_and(Vec::is_empty) {
                    lines.pop();
                }
                sources.push((linked && i == 0, lines));
            }
        } else {
            files_only = None;
            sources.push((
                linked,
                values.into_iter().map(|v| v.clone().into_vec()).collect(),
            ));
        }
    }
    if let [(_, values)] = &sources[..] {
        // One source: the plain item forms, read lazily where they can be.
        let first_is_file = rest[0].to_string_lossy().starts_with("::::");
        return Ok(match (first_is_file, files_only) {
            (true, Some(path)) => (ItemSource::File(path), 1),
            _ => (
                ItemSource::Args(
                    values
                        .iter()
                        .map(|v| std::ffi::OsString::from_vec(v.clone()))
                        .collect(),
                ),
                1,
            ),
        });
    }
    let width = sources.len();
    // Linked sources form one group of paired tuples; groups are then combined.
    let mut groups: Vec<Vec<Vec<Vec<u8>>>> = Vec::new();
    for (linked, values) in sources {
        if linked {
            let group = groups.last_mut().expect("a linked source follows another");
            // The shorter source decides the length (GNU parallel's `:::+`: no wrapping).
            group.truncate(values.len());
            for (tuple, value) in group.iter_mut().zip(values) {
                tuple.push(value);
            }
        } else {
            groups.push(values.into_iter().map(|v| vec![v]).collect());
        }
    }
    let mut tuples: Vec<Vec<Vec<u8>>> = vec![Vec::new()];
    for group in groups {
        let mut combined = Vec::with_capacity(tuples.len() * group.len());
        for prefix in &tuples {
            for tail in &group {
                let mut tuple = prefix.clone();
                tuple.extend(tail.iter().cloned());
                combined.push(tuple);
            }
        }
        tuples = combined;
    }
    Ok((ItemSource::Tuples(tuples), width))
}

fn spawn_reader<R: Send + 'static>(read: impl FnOnce() -> R + Send + 'static) {
    std::thread::Builder::new()
        .name("wrangle-items".into())
        .spawn(read)
        .expect("starting the item reader thread");
}

/// Sends each line (without its line ending, byte for byte; with `-0`, each NUL-ended
/// record) as a value. Returns false when the run stopped listening.
fn read_lines(mut input: impl BufRead, emit: &mut Emitter<'_>) -> bool {
    let separator = emit.shape.separator();
    let mut line = Vec::new();
    loop {
        line.clear();
        match input.read_until(separator, &mut line) {
            Ok(0) => return emit.finish(),
            Ok(_) => {
                if line.last() == Some(&separator) {
                    line.pop();
                    if separator == b'\n' && line.ends_with(b"\r") {
                        line.pop();
                    }
                }
                if !emit.value(std::mem::take(&mut line)) {
                    return false;
                }
            }
            Err(err) => {
                emit.send(Err(format!("reading items failed: {err}")));
                return false;
            }
        }
    }
}

/// Reads a dispatch command's lines; a command that fails is reported once it ends.
fn read_dispatch(mut child: Child, program: &str, emit: &mut Emitter<'_>) {
    let stdout = child.stdout.take().expect("stdout is piped");
    if !read_lines(BufReader::new(stdout), emit) {
        // The run stopped (Ctrl-C): the command must not keep producing into nothing.
        let _ = child.kill();
        let _ = child.wait();
        return;
    }
    let failure = match child.wait() {
        Ok(status) if status.success() => return,
        Ok(status) => format!("--dispatch '{program}' failed ({status})"),
        Err(err) => format!("--dispatch '{program}': {err}"),
    };
    emit.send(Err(failure));
}

/// The values in a file: its lines (records ended by `separator`), the last one counted
/// even without its ending.
pub(crate) fn count_lines(path: &std::path::Path, separator: u8) -> std::io::Result<u64> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut buffer = vec![0u8; 1 << 16];
    let (mut lines, mut last) = (0u64, separator);
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        lines += buffer[..read].iter().filter(|&&b| b == separator).count() as u64;
        last = buffer[read - 1];
    }
    Ok(lines + u64::from(last != separator))
}

/// Drains a reader into a list (tests).
#[cfg(test)]
fn collect(source: ItemSource) -> Vec<SourceEvent> {
    collect_shaped(source, &Shape::default())
}

#[cfg(test)]
fn collect_shaped(source: ItemSource, shape: &Shape) -> Vec<SourceEvent> {
    let mut receiver = source.start(shape).unwrap();
    let mut all = Vec::new();
    while let Some(event) = receiver.blocking_recv() {
        all.push(event);
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_come_in_blocks_with_a_short_last_one() {
        let source = ItemSource::Range {
            start: 0,
            end: 25,
            block: 10,
        };
        assert_eq!(source.known_total(&Shape::default()), Some(3));
        let blocks = collect(source);
        assert_eq!(
            blocks,
            vec![
                Ok(json!({"start": 0, "end": 10})),
                Ok(json!({"start": 10, "end": 20})),
                Ok(json!({"start": 20, "end": 25}))
            ]
        );
    }

    #[test]
    fn files_give_lines_without_endings_and_keep_empty_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("items");
        std::fs::write(&path, b"a\r\n\nb c\n\xffz").unwrap();
        let lines = collect(ItemSource::File(path));
        assert_eq!(
            lines,
            vec![
                Ok(json!("a")),
                Ok(json!("")),
                Ok(json!("b c")),
                Ok(item_payload(b"\xffz".to_vec()))
            ]
        );
    }

    #[test]
    fn counted_lines_match_the_items_read() {
        let dir = tempfile::tempdir().unwrap();
        for (text, items) in [
            (&b""[..], 0),
            (b"a\n", 1),
            (b"a\r\n\nb c\n\xffz", 4),
            (b"\n\n", 2),
        ] {
            let path = dir.path().join("items");
            std::fs::write(&path, text).unwrap();
            assert_eq!(count_lines(&path, b'\n').unwrap(), items, "{text:?}");
            assert_eq!(collect(ItemSource::File(path)).len() as u64, items);
        }
    }

    #[test]
    fn a_failing_dispatch_command_is_reported_after_its_lines() {
        let argv = ["sh", "-c", "echo one; echo two; exit 3"]
            .map(String::from)
            .to_vec();
        let events = collect(ItemSource::Dispatch(argv));
        assert_eq!(events[..2], [Ok(json!("one")), Ok(json!("two"))]);
        assert!(
            events[2].as_ref().unwrap_err().contains("failed"),
            "{events:?}"
        );
    }

    #[test]
    fn missing_files_and_programs_are_bad_input() {
        let missing = ItemSource::File("/nonexistent/items".into())
            .start(&Shape::default())
            .unwrap_err();
        assert!(matches!(missing, CliError::Input(_)));
        let unrunnable = ItemSource::Dispatch(vec!["/nonexistent/cmd".into()])
            .start(&Shape::default())
            .unwrap_err();
        assert!(matches!(unrunnable, CliError::Input(_)));
    }

    #[test]
    fn null_separated_columns_and_groups_shape_the_items() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("items");
        std::fs::write(&path, b"a b\n1\0c\0d").unwrap();
        let null = Shape {
            null: true,
            ..Shape::default()
        };
        assert_eq!(
            collect_shaped(ItemSource::File(path.clone()), &null),
            vec![Ok(json!("a b\n1")), Ok(json!("c")), Ok(json!("d"))]
        );
        assert_eq!(count_lines(&path, 0).unwrap(), 3);
        let tuple = |values: &[&str]| {
            Ok(tuple_payload(
                values.iter().map(|v| v.as_bytes().to_vec()).collect(),
            ))
        };
        let colsep = Shape {
            colsep: Some(regex::bytes::Regex::new(",\\s*").unwrap()),
            ..Shape::default()
        };
        let args = |list: &[&str]| ItemSource::Args(list.iter().map(Into::into).collect());
        assert_eq!(
            collect_shaped(args(&["a, b,c", "d"]), &colsep),
            vec![tuple(&["a", "b", "c"]), tuple(&["d"])]
        );
        let pairs = Shape {
            group: Some(2),
            ..Shape::default()
        };
        assert_eq!(
            collect_shaped(args(&["a", "b", "c"]), &pairs),
            vec![tuple(&["a", "b"]), tuple(&["c"])]
        );
        assert_eq!(pairs.items_of(3), 2);
        let none = Shape {
            group: Some(0),
            ..Shape::default()
        };
        assert_eq!(
            collect_shaped(args(&["a", "b"]), &none),
            vec![tuple(&[]), tuple(&[])]
        );
    }

    #[test]
    fn the_reader_stops_when_nobody_listens() {
        // An endless dispatch: dropping the receiver must end (kill) it, not hang.
        let argv = ["yes"].map(String::from).to_vec();
        let mut receiver = ItemSource::Dispatch(argv).start(&Shape::default()).unwrap();
        assert_eq!(receiver.blocking_recv(), Some(Ok(json!("y"))));
        drop(receiver);
    }
}
