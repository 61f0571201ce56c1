//! divvy's dance party in Rust: hand out ticket codes, the SHA-1 of each ticket number, from
//! several runners at once.
//!
//! ```text
//! cargo run -p wrangle --example dance_party -- [TICKETS (10)] [RUNNERS (5)]
//! ```
//!
//! Each line is the process id, the ticket number, its code and the runner that made it.
//! Set `DANCE_PARTY_LATENCY_MS=150` to pretend, as divvy does, that codes come from a slow
//! service. Ctrl-C stops handing out tickets; runners finish the one they hold.

use std::time::Duration;

use wrangle::parallel::{BoxError, Dispatcher, Parallel, ParallelJob, RunnerInfo};

struct DanceParty {
    tickets: u64,
    latency: Duration,
}

impl ParallelJob for DanceParty {
    type Item = u64;

    fn dispatch(&self, tickets: &mut Dispatcher<'_, u64>) -> Result<(), BoxError> {
        println!("Generating {} ticket codes for the show...", self.tickets);
        for ticket in 0..self.tickets {
            tickets.send(ticket)?;
        }
        Ok(())
    }

    fn perform(&self, ticket: u64, runner: &RunnerInfo) -> Result<(), BoxError> {
        let code = hex(&sha1(ticket.to_string().as_bytes()));
        let pid = std::process::id();
        println!("{pid:5} {ticket:6} {code} runner {}", runner.number());
        std::thread::sleep(self.latency);
        Ok(())
    }
}

fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let tickets = args.next().map_or(Ok(10), |arg| arg.parse())?;
    let runners = args.next().map_or(Ok(5), |arg| arg.parse())?;
    let latency = match std::env::var("DANCE_PARTY_LATENCY_MS") {
        Ok(ms) => Duration::from_millis(ms.parse()?),
        Err(_) => Duration::ZERO,
    };

    let parallel = Parallel::new(runners);
    let stop = parallel.stop_handle();
    // Detached: it waits for Ctrl-C for as long as the process lives.
    std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
        else {
            return;
        };
        if runtime.block_on(tokio::signal::ctrl_c()).is_ok() {
            stop.stop();
        }
    });

    let report = parallel.run(&DanceParty { tickets, latency });
    for failure in &report.failures {
        eprintln!("error: {failure}");
    }
    eprintln!(
        "{} of {} tickets in {:.1?} with {runners} runners",
        report.performed - report.failed,
        report.dispatched,
        report.elapsed
    );
    if report.is_success() {
        Ok(())
    } else {
        Err("not every ticket got a code".into())
    }
}

/// SHA-1 (FIPS 180-4): fine for ticket codes, not for security.
fn sha1(message: &[u8]) -> [u8; 20] {
    let mut state: [u32; 5] = [
        0x6745_2301,
        0xEFCD_AB89,
        0x98BA_DCFE,
        0x1032_5476,
        0xC3D2_E1F0,
    ];
    // Padding: a 1 bit, zeros up to 56 mod 64 bytes, then the length in bits.
    let mut padded = message.to_vec();
    padded.push(0x80);
    padded.resize((message.len() + 9).div_ceil(64) * 64, 0);
    let bit_length = (message.len() as u64).wrapping_mul(8);
    let end = padded.len();
    padded[end - 8..].copy_from_slice(&bit_length.to_be_bytes());

    for block in padded.chunks_exact(64) {
        let mut words = [0u32; 80];
        for (word, bytes) in words.iter_mut().zip(block.chunks_exact(4)) {
            *word = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        }
        for i in 16..80 {
            words[i] = (words[i - 3] ^ words[i - 8] ^ words[i - 14] ^ words[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = state;
        for (i, word) in words.iter().enumerate() {
            let (f, k) = match i {
                0..20 => ((b & c) | (!b & d), 0x5A82_7999),
                20..40 => (b ^ c ^ d, 0x6ED9_EBA1),
                40..60 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
                _ => (b ^ c ^ d, 0xCA62_C1D6),
            };
            let next = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*word);
            (e, d, c, b, a) = (d, c, b.rotate_left(30), a, next);
        }
        for (total, part) in state.iter_mut().zip([a, b, c, d, e]) {
            *total = total.wrapping_add(part);
        }
    }

    let mut digest = [0u8; 20];
    for (bytes, word) in digest.chunks_exact_mut(4).zip(state) {
        bytes.copy_from_slice(&word.to_be_bytes());
    }
    digest
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[test]
fn codes_match_divvys_readme() {
    let code = |ticket: u64| hex(&sha1(ticket.to_string().as_bytes()));
    assert_eq!(code(0), "b6589fc6ab0dc82cf12099d1c2d40ab994e8410c");
    assert_eq!(code(1), "356a192b7913b04c54574d18c28d46e6395428ab");
    assert_eq!(code(9), "0ade7c2cf97f75d009975f4d720d1fa6c19f4897");
    // Messages around the padding edges, checked against sha1sum.
    for (length, expected) in [
        (55, "c1c8bbdc22796e28c0e15163d20899b65621d65a"),
        (56, "c2db330f6083854c99d4b5bfb6e8f29f201be699"),
        (64, "0098ba824b5c16427bd7a1122a5a442a25ec644d"),
    ] {
        assert_eq!(hex(&sha1(&vec![b'a'; length])), expected, "{length} bytes");
    }
}
