//! Bounded random testing of parsers, on the stable toolchain and without dependencies:
//! inputs are made by mutating examples of valid text (cut, repeat, splice, flip bytes,
//! insert characters parsers trip on) and by drawing from an alphabet of such
//! characters, from a seed, so a failure is reproducible. Each call is checked to return
//! rather than panic, and errors to be one line.
//!
//! `WRANGLE_FUZZ_ITERATIONS` sets the inputs per parser (default 20,000, which CI runs;
//! `scripts/fuzz.sh` runs many more) and `WRANGLE_FUZZ_SEED` the seed (default: the
//! time, printed so a failing run can be replayed).

use std::panic::{AssertUnwindSafe, catch_unwind};

/// Characters that parsers of durations, sizes, ranges, URLs, TOML and JSON trip on.
const TRICKY: &[&str] = &[
    "",
    " ",
    "\t",
    "\n",
    "\r\n",
    "\0",
    "-",
    "+",
    ".",
    "..",
    ":",
    "::",
    ",",
    "=",
    "/",
    "//",
    "?",
    "&",
    "@",
    "%",
    "%00",
    "%ff",
    "#",
    "[",
    "]",
    "{",
    "}",
    "\"",
    "'",
    "\\",
    "e",
    "E",
    "_",
    "0",
    "00",
    "9",
    "99999999999999999999",
    "18446744073709551616",
    "-9223372036854775809",
    "NaN",
    "inf",
    "1e308",
    "é",
    "\u{fffd}",
    "\u{200b}",
    "𝕏",
    "ms",
    "s",
    "m",
    "h",
    "d",
    "y",
    "K",
    "M",
    "G",
    "T",
    "iB",
    "*",
    "=",
    "true",
    "null",
    "[[",
    "]]",
    "\"\"\"",
];

/// A small, fast, seedable generator (xorshift64*): good enough to pick mutations.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (any value; 0 is moved off the fixed point).
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len())]
    }
}

/// How many inputs each parser gets.
pub fn iterations() -> usize {
    std::env::var("WRANGLE_FUZZ_ITERATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000)
}

/// The seed: `WRANGLE_FUZZ_SEED`, or the clock (printed).
pub fn seed() -> u64 {
    let seed = std::env::var("WRANGLE_FUZZ_SEED")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    eprintln!("fuzz seed {seed} (replay with WRANGLE_FUZZ_SEED={seed})");
    seed
}

/// One input: a mutated example, or a string of tricky pieces.
pub fn input(rng: &mut Rng, examples: &[&str]) -> String {
    if rng.below(5) == 0 {
        return (0..rng.below(8)).map(|_| rng.pick(TRICKY)).collect();
    }
    let mut text = rng.pick(examples).to_string();
    for _ in 0..=rng.below(3) {
        text = mutate(rng, &text, examples);
    }
    text
}

fn mutate(rng: &mut Rng, text: &str, examples: &[&str]) -> String {
    let chars: Vec<char> = text.chars().collect();
    let at = rng.below(chars.len() + 1);
    let (head, tail): (String, String) =
        (chars[..at].iter().collect(), chars[at..].iter().collect());
    match rng.below(7) {
        0 => format!("{head}{}{tail}", rng.pick(TRICKY)),
        1 => head,
        2 => tail,
        3 => text.repeat(1 + rng.below(4)),
        4 => format!("{head}{}", rng.pick(examples)),
        5 => chars
            .iter()
            .map(|c| {
                if rng.below(4) == 0 {
                    char::from_u32(*c as u32 ^ 1).unwrap_or(*c)
                } else {
                    *c
                }
            })
            .collect(),
        _ => format!("{head}{}{tail}", "9".repeat(1 + rng.below(40))),
    }
}

/// Feeds `parse` [`iterations`] inputs made from `examples`: it must return for each (a
/// panic fails the test, naming the input), and `error_of` must give a one-line message
/// for each error.
pub fn check<T, E>(
    name: &str,
    examples: &[&str],
    parse: impl Fn(&str) -> Result<T, E>,
    error_of: impl Fn(&E) -> String,
) {
    let mut rng = Rng::new(seed() ^ name.len() as u64);
    for _ in 0..iterations() {
        let input = input(&mut rng, examples);
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            parse(&input).err().map(|e| error_of(&e))
        }));
        match outcome {
            Err(_) => panic!("{name} panicked on {input:?}"),
            Ok(Some(message)) => assert!(
                !message.trim_end().contains('\n'),
                "{name}: a multi-line error for {input:?}: {message}"
            ),
            Ok(None) => {}
        }
    }
}
