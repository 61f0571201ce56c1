//! The placeholders of command templates (`wrangle run`'s COMMAND, a worker's `--exec`,
//! `exec = [...]` in wrangle.toml), as GNU parallel spells them: which `{…}` in an
//! argument is a placeholder, what it stands for, and the one-line error for one that is
//! misspelled. Owns the grammar and the path arithmetic (`{.}`, `{/}`, `{//}`, `{/.}`);
//! the exec executor fills the values in.
//!
//! A `{…}` is a placeholder when everything between the braces is a letter, digit or one
//! of `_ # % . /` and no `$` comes right before it. Anything else is text and reaches the
//! command as written: `${HOME}` for a shell, `{print $1}` for awk, `{"a": 1}` as JSON,
//! `{a,b}`. A placeholder-shaped name that is not one of the names below is an error,
//! never passed through, so a typo cannot run a command with a literal `{fiel}` in it.

use crate::parse::InputError;

/// What a placeholder stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// `{}`: the item (every argument of a tuple, joined by spaces).
    Item,
    /// `{N}`: the Nth argument of a tuple (of several input sources); `{1}` of a single
    /// item is the item.
    Arg(usize),
    /// `{#}`, `{id}`: the task id (in `wrangle run`, the item's sequence number).
    Id,
    /// `{attempt}`.
    Attempt,
    /// `{start}` of a range block.
    Start,
    /// `{end}` of a range block.
    End,
    /// `{job}`: the job's name.
    Job,
    /// `{%}`: the job slot the attempt runs in, 1 to the number running at once (the
    /// lowest free one, so a slot names a reusable resource: a GPU, a scratch dir).
    JobSlot,
}

/// Which part of the value, read as a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The whole value.
    Whole,
    /// `.`: without its extension (`dir/a.tar.gz` → `dir/a.tar`).
    NoExtension,
    /// `/`: the file name (`dir/a.txt` → `a.txt`).
    Basename,
    /// `//`: the directory (`dir/a.txt` → `dir`, `a.txt` → `.`).
    Dirname,
    /// `/.`: the file name without its extension (`dir/a.txt` → `a`).
    BasenameNoExtension,
}

/// One placeholder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placeholder {
    /// What it stands for.
    pub field: Field,
    /// Which part of that.
    pub part: Part,
}

/// A template argument, cut into text and placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece<'a> {
    /// Passed as written.
    Text(&'a str),
    /// Replaced by its value.
    Slot(Placeholder),
}

/// The placeholders there are, for error messages and help.
pub const KNOWN: &str =
    "{} {.} {/} {//} {/.} {N} {N.} {N/} {N//} {N/.} {#} {%} {id} {attempt} {start} {end} {job}";

/// Cuts `arg` into text and placeholders; a misspelled placeholder is an error naming it.
pub fn parse_template(arg: &str) -> Result<Vec<Piece<'_>>, InputError> {
    let mut pieces = Vec::new();
    let mut text_from = 0;
    let mut at = 0;
    while let Some(open) = arg[at..].find('{').map(|i| at + i) {
        let Some(close) = arg[open..].find('}').map(|i| open + i) else {
            break;
        };
        let token = &arg[open + 1..close];
        let shaped = token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_#%./".contains(c));
        let after_dollar = arg[..open].ends_with('$');
        if !shaped || after_dollar {
            // Not a placeholder: look for the next `{` after this one.
            at = open + 1;
            continue;
        }
        let placeholder = parse_token(token)
            .map_err(|why| InputError::new(format!("{why} in '{arg}' (placeholders: {KNOWN})")))?;
        if text_from < open {
            pieces.push(Piece::Text(&arg[text_from..open]));
        }
        pieces.push(Piece::Slot(placeholder));
        text_from = close + 1;
        at = close + 1;
    }
    if text_from < arg.len() {
        pieces.push(Piece::Text(&arg[text_from..]));
    }
    Ok(pieces)
}

/// Checks every argument of a template; returns the highest `{N}` used (0 for none).
pub fn check_template<S: AsRef<str>>(argv: &[S]) -> Result<usize, InputError> {
    let mut highest = 0;
    for arg in argv {
        for piece in parse_template(arg.as_ref())? {
            if let Piece::Slot(Placeholder {
                field: Field::Arg(n),
                ..
            }) = piece
            {
                highest = highest.max(n);
            }
        }
    }
    Ok(highest)
}

/// Whether any argument holds a placeholder (else `wrangle run` appends the item).
pub fn has_placeholder<S: AsRef<str>>(argv: &[S]) -> bool {
    argv.iter().any(|arg| {
        parse_template(arg.as_ref())
            .is_ok_and(|pieces| pieces.iter().any(|p| matches!(p, Piece::Slot(_))))
    })
}

fn parse_token(token: &str) -> Result<Placeholder, String> {
    let digits = token.bytes().take_while(u8::is_ascii_digit).count();
    let (field, modifier) = if digits > 0 {
        let n: usize = token[..digits]
            .parse()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| format!("{{{token}}}: arguments are numbered from 1"))?;
        (Field::Arg(n), &token[digits..])
    } else {
        match token {
            "#" | "id" => (Field::Id, ""),
            "attempt" => (Field::Attempt, ""),
            "start" => (Field::Start, ""),
            "end" => (Field::End, ""),
            "job" => (Field::Job, ""),
            "%" => (Field::JobSlot, ""),
            _ => (Field::Item, token),
        }
    };
    let part = match modifier {
        "" => Part::Whole,
        "." => Part::NoExtension,
        "/" => Part::Basename,
        "//" => Part::Dirname,
        "/." => Part::BasenameNoExtension,
        _ => return Err(format!("unknown placeholder {{{token}}}")),
    };
    Ok(Placeholder { field, part })
}

/// `part` of `value` read as a path, as GNU parallel computes it.
pub fn path_part(value: &[u8], part: Part) -> Vec<u8> {
    let last_slash = value.iter().rposition(|b| *b == b'/');
    let basename = || last_slash.map_or(value, |i| &value[i + 1..]);
    match part {
        Part::Whole => value.to_vec(),
        Part::NoExtension => without_extension(value).to_vec(),
        Part::Basename => basename().to_vec(),
        Part::Dirname => match last_slash {
            None => b".".to_vec(),
            Some(0) => b"/".to_vec(),
            Some(i) => value[..i].to_vec(),
        },
        Part::BasenameNoExtension => without_extension(basename()).to_vec(),
    }
}

/// `value` without a final `.EXT` in its last path component (`EXT` non-empty).
fn without_extension(value: &[u8]) -> &[u8] {
    let name_from = value.iter().rposition(|b| *b == b'/').map_or(0, |i| i + 1);
    match value[name_from..].iter().rposition(|b| *b == b'.') {
        Some(dot) if name_from + dot + 1 < value.len() => &value[..name_from + dot],
        _ => value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(field: Field, part: Part) -> Piece<'static> {
        Piece::Slot(Placeholder { field, part })
    }

    #[test]
    fn placeholders_and_text() {
        assert_eq!(
            parse_template("out/{/.}.png").unwrap(),
            vec![
                Piece::Text("out/"),
                slot(Field::Item, Part::BasenameNoExtension),
                Piece::Text(".png"),
            ]
        );
        assert_eq!(
            parse_template("{1}-{2//}{#}").unwrap(),
            vec![
                slot(Field::Arg(1), Part::Whole),
                Piece::Text("-"),
                slot(Field::Arg(2), Part::Dirname),
                slot(Field::Id, Part::Whole),
            ]
        );
        assert_eq!(
            parse_template("gpu{%}").unwrap(),
            vec![Piece::Text("gpu"), slot(Field::JobSlot, Part::Whole)]
        );
        for text in [
            "${HOME}/x",
            "{print $1}",
            r#"{"a": 1}"#,
            "{a,b}",
            "a { b",
            "}{",
            "plain",
        ] {
            assert!(
                parse_template(text)
                    .unwrap()
                    .iter()
                    .all(|p| matches!(p, Piece::Text(_))),
                "{text}"
            );
        }
        assert_eq!(parse_template("").unwrap(), vec![]);
    }

    #[test]
    fn misspelled_placeholders_are_errors() {
        for (arg, says) in [
            ("{fiel}", "unknown placeholder {fiel}"),
            ("x{..}", "unknown placeholder {..}"),
            ("{0}", "numbered from 1"),
            ("{1x}", "unknown placeholder {1x}"),
            ("{%x}", "unknown placeholder {%x}"),
            ("{ID}", "unknown placeholder {ID}"),
        ] {
            let err = parse_template(arg).unwrap_err().to_string();
            assert!(err.contains(says) && err.contains(arg), "{arg}: {err}");
        }
        assert_eq!(check_template(&["a", "{3}", "{1.}"]).unwrap(), 3);
        assert!(has_placeholder(&["echo", "x{}"]));
        assert!(!has_placeholder(&["awk", "{print $1}"]));
    }

    #[test]
    fn path_parts_as_gnu_parallel_computes_them() {
        let cases: [(&str, [&str; 4]); 7] = [
            (
                "dir/sub/a.tar.gz",
                ["dir/sub/a.tar", "a.tar.gz", "dir/sub", "a.tar"],
            ),
            ("a.txt", ["a", "a.txt", ".", "a"]),
            ("/a", ["/a", "a", "/", "a"]),
            ("dir.d/file", ["dir.d/file", "file", "dir.d", "file"]),
            ("noext", ["noext", "noext", ".", "noext"]),
            ("trailing.", ["trailing.", "trailing.", ".", "trailing."]),
            ("", ["", "", ".", ""]),
        ];
        for (value, [no_ext, base, dir, base_no_ext]) in cases {
            let part = |p| String::from_utf8(path_part(value.as_bytes(), p)).unwrap();
            assert_eq!(part(Part::Whole), value);
            assert_eq!(part(Part::NoExtension), no_ext, "{value}");
            assert_eq!(part(Part::Basename), base, "{value}");
            assert_eq!(part(Part::Dirname), dir, "{value}");
            assert_eq!(part(Part::BasenameNoExtension), base_no_ext, "{value}");
        }
    }
}
