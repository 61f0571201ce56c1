//! Random mutations of valid input fed to every parser a user's text reaches: durations,
//! sizes, ranges, times, names, payloads, pool and autoscale specs, queue lists, scale
//! targets, `--halt` specs, command templates, store URLs and each store's URL options. None may panic or hang, and every
//! error is one line (the stores' connect errors quote a CA file's path exactly as
//! given, newlines and all; the CLI prints every error through `parse::one_line`). Bounded: `WRANGLE_FUZZ_ITERATIONS` inputs per parser (see
//! `wrangle_testkit::fuzz`; `scripts/fuzz.sh` runs many more). `wrangle.toml` and the
//! runner protocol are fuzzed in their own crates.

use wrangle::parse::{
    StoreUrl, parse_duration, parse_name, parse_payload, parse_range, parse_size, parse_time,
};
use wrangle::pool::{parse_autoscale, parse_pool, parse_queue_list, parse_scale_target};
use wrangle_testkit::fuzz::check;

fn text<E: std::fmt::Display>(err: &E) -> String {
    err.to_string()
}

/// How the CLI shows a library error.
fn shown<E: std::fmt::Display>(err: &E) -> String {
    wrangle::parse::one_line(err.to_string())
}

#[test]
fn core_parsers_never_panic_and_give_one_line_errors() {
    check(
        "duration",
        &["5s", "1500ms", "2h30m", "1d", "100y", "0s"],
        parse_duration,
        text,
    );
    check(
        "size",
        &["512M", "1.5G", "800K", "1048576", "2GiB"],
        parse_size,
        text,
    );
    check(
        "range",
        &["1..100", "-5..5", "0..9223372036854775807"],
        parse_range,
        text,
    );
    check(
        "time",
        &["2026-12-04T10:00:00Z", "2026-12-04 10:00", "10:00", "+1h"],
        parse_time,
        text,
    );
    check(
        "name",
        &["default", "mail-1", "a_b.c"],
        |t| parse_name("queue", t),
        text,
    );
    check(
        "payload",
        &[
            r#"{"a":1}"#,
            "[1,2]",
            "\"x\"",
            "null",
            "1e3",
            r#"{"a":{"b":[{}]}}"#,
        ],
        parse_payload,
        text,
    );
    check(
        "pool",
        &["default=2,mail=1", "a:b=4", "*=3"],
        parse_pool,
        text,
    );
    check(
        "autoscale",
        &["1..8", "2..2", "0..1024"],
        parse_autoscale,
        text,
    );
    check(
        "queues",
        &["*", "a,b", "mail, default"],
        parse_queue_list,
        text,
    );
    check(
        "scale target",
        &["mail=3", "4", "+1", "default=-1"],
        parse_scale_target,
        text,
    );
    check(
        "halt",
        &["now,fail=1", "soon,fail=10%", "-2", "never", "soon,done=3"],
        wrangle::halt::parse_halt,
        text,
    );
    check(
        "command template",
        &[
            "{}",
            "out/{/.}.png",
            "{1}-{2//}{#}{%}",
            "${HOME}",
            "{print $1}",
        ],
        |t| wrangle::placeholder::parse_template(t).map(|pieces| pieces.len()),
        text,
    );
}

#[test]
fn store_urls_and_their_options_never_panic_and_give_one_line_errors() {
    let urls = [
        "sqlite://.wrangle/wrangle.db?synchronous=full",
        "memory://",
        "postgres://u:secret@db:5432/jobs?sslmode=verify-full&sslrootcert=/ca.pem&connect_timeout=5s",
        "redis://:secret@cache:6379/2?connect_timeout=2s",
        "rediss://cache:6380/0?ca_file=/ca.pem",
        "mysql://root:secret@127.0.0.1:3306/test?ssl-mode=VERIFY_IDENTITY&ssl-ca=/ca.pem",
    ];
    check("store URL", &urls, StoreUrl::parse, text);
    check(
        "postgres options",
        &urls[2..3],
        wrangle::PostgresOptions::from_url,
        shown,
    );
    check(
        "redis options",
        &urls[3..5],
        wrangle::RedisOptions::from_url,
        shown,
    );
    check(
        "mysql options",
        &urls[5..6],
        wrangle::MySqlOptions::from_url,
        shown,
    );
    check(
        "sqlite options",
        &["synchronous=full", "synchronous=normal", ""],
        wrangle::SqliteOptions::from_query,
        shown,
    );
}
