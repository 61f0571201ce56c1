//! A TCP proxy between wrangle and a test server that breaks the network on command, for
//! the fault suite: clients connect to [`FaultProxy::port`] instead of the server's port,
//! and the test switches faults on and off while they work.
//!
//! - [`stall`](FaultProxy::stall): bytes stop flowing both ways while connections stay
//!   open, as behind a dead switch or a frozen NAT entry; new connections are accepted and
//!   hang too. [`heal`](FaultProxy::heal) lets everything held through.
//! - [`reset`](FaultProxy::reset): every open connection is torn down with a TCP RST, both
//!   towards the client and towards the server (a load balancer or firewall dropping
//!   state); new connections work.
//! - [`delay`](FaultProxy::delay): every reply from the server is held for the given time
//!   before it is passed on, so each round trip is that much slower (a distant or
//!   overloaded store).
//! - [`refuse`](FaultProxy::refuse): new connections are closed as soon as they arrive.
//!
//! Each connection is two threads, one per direction; all of it is blocking `std` I/O.
//! Dropping the proxy resets every connection and stops accepting.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::TestkitError;

/// What the proxy does to traffic now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    Stall,
    Delay(Duration),
    Refuse,
}

/// A proxy on a free port of 127.0.0.1 in front of `upstream`.
#[derive(Debug)]
pub struct FaultProxy {
    port: u16,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

#[derive(Debug)]
struct Shared {
    upstream: SocketAddr,
    fault: Mutex<Fault>,
    /// Signalled whenever `fault` changes, so stalled forwarders re-check it.
    changed: Condvar,
    /// Both ends of every open connection, by a number of its own, for `reset`.
    open: Mutex<HashMap<u64, (TcpStream, TcpStream)>>,
    stopping: AtomicBool,
}

impl FaultProxy {
    /// Starts a proxy that forwards to `127.0.0.1:upstream_port`, passing traffic unchanged.
    pub fn start(upstream_port: u16) -> Result<Self, TestkitError> {
        let listener =
            TcpListener::bind(("127.0.0.1", 0)).map_err(TestkitError::io("binding 127.0.0.1:0"))?;
        let port = listener
            .local_addr()
            .map_err(TestkitError::io("reading the proxy's address"))?
            .port();
        let shared = Arc::new(Shared {
            upstream: SocketAddr::from(([127, 0, 0, 1], upstream_port)),
            fault: Mutex::new(Fault::None),
            changed: Condvar::new(),
            open: Mutex::new(HashMap::new()),
            stopping: AtomicBool::new(false),
        });
        let acceptor = {
            let shared = shared.clone();
            std::thread::spawn(move || accept_loop(&listener, &shared))
        };
        Ok(Self {
            port,
            shared,
            acceptor: Some(acceptor),
        })
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `url` with the upstream's port replaced by the proxy's (`…@127.0.0.1:UP/…` becomes
    /// `…@127.0.0.1:PROXY/…`).
    pub fn url_for(&self, url: &str) -> String {
        let from = format!("127.0.0.1:{}", self.shared.upstream.port());
        assert!(url.contains(&from), "{url} does not name {from}");
        url.replacen(&from, &format!("127.0.0.1:{}", self.port), 1)
    }

    /// Stops all traffic; connections stay open.
    pub fn stall(&self) {
        self.set(Fault::Stall);
    }

    /// Holds each reply from the server for `latency` (added to every round trip).
    pub fn delay(&self, latency: Duration) {
        self.set(Fault::Delay(latency));
    }

    /// Closes new connections as they arrive; open ones keep working.
    pub fn refuse(&self) {
        self.set(Fault::Refuse);
    }

    /// Passes traffic unchanged again (what was held by a stall flows on).
    pub fn heal(&self) {
        self.set(Fault::None);
    }

    /// Tears down every open connection with a TCP RST on both sides. Returns how many.
    pub fn reset(&self) -> usize {
        let open = std::mem::take(&mut *lock(&self.shared.open));
        for (client, server) in open.values() {
            abort(client);
            abort(server);
        }
        open.len()
    }

    /// How many connections are open through the proxy now.
    pub fn open_connections(&self) -> usize {
        lock(&self.shared.open).len()
    }

    fn set(&self, fault: Fault) {
        *lock(&self.shared.fault) = fault;
        self.shared.changed.notify_all();
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        self.heal();
        // Wake the acceptor so it sees `stopping`.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        self.reset();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A forwarder that panicked leaves nothing half-updated behind these locks.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Closes a socket with an RST (linger 0) instead of a FIN.
fn abort(stream: &TcpStream) {
    let _ = socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO));
    let _ = stream.shutdown(Shutdown::Both);
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for (id, client) in (0u64..).zip(listener.incoming()) {
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = client else { continue };
        if *lock(&shared.fault) == Fault::Refuse {
            abort(&client);
            continue;
        }
        let Ok(server) = TcpStream::connect_timeout(&shared.upstream, Duration::from_secs(5))
        else {
            abort(&client);
            continue;
        };
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        let clones = (
            client.try_clone(),
            server.try_clone(),
            client.try_clone(),
            server.try_clone(),
        );
        let (Ok(client_kept), Ok(server_kept), Ok(client_to), Ok(server_to)) = clones else {
            continue;
        };
        lock(&shared.open).insert(id, (client_kept, server_kept));
        // The second direction to finish forgets the connection.
        let running = Arc::new(AtomicU8::new(2));
        for (from, to, replies) in [(client, server_to, false), (server, client_to, true)] {
            let shared = shared.clone();
            let running = running.clone();
            std::thread::spawn(move || {
                forward(from, to, replies, &shared);
                if running.fetch_sub(1, Ordering::SeqCst) == 1 {
                    lock(&shared.open).remove(&id);
                }
            });
        }
    }
}

/// Copies `from` to `to` chunk by chunk, honouring the current fault before each write.
/// `replies` marks the server-to-client direction, the one `delay` holds.
fn forward(mut from: TcpStream, mut to: TcpStream, replies: bool, shared: &Shared) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let latency = {
            let mut fault = lock(&shared.fault);
            while *fault == Fault::Stall {
                fault = shared
                    .changed
                    .wait(fault)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            }
            match *fault {
                Fault::Delay(latency) if replies => Some(latency),
                _ => None,
            }
        };
        if let Some(latency) = latency {
            std::thread::sleep(latency);
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    // Pass the end on: a FIN, or nothing if `reset` already aborted the socket.
    let _ = to.shutdown(Shutdown::Write);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// An echo server on a free port; its port.
    fn echo_server() -> u16 {
        let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || {
                    let mut reader = stream.try_clone().unwrap();
                    let mut writer = stream;
                    let _ = std::io::copy(&mut reader, &mut writer);
                });
            }
        });
        port
    }

    /// Sends `message` and reads the echo, or the error that ended the wait.
    fn round_trip(stream: &mut TcpStream, message: &[u8]) -> std::io::Result<Vec<u8>> {
        stream.write_all(message)?;
        let mut echoed = vec![0u8; message.len()];
        stream.read_exact(&mut echoed)?;
        Ok(echoed)
    }

    #[test]
    fn passes_stalls_delays_and_resets_on_command() {
        let proxy = FaultProxy::start(echo_server()).unwrap();
        let mut client = TcpStream::connect(("127.0.0.1", proxy.port())).unwrap();
        client
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        assert_eq!(round_trip(&mut client, b"one").unwrap(), b"one");
        assert_eq!(proxy.open_connections(), 1);

        // Stalled: nothing comes back, then everything held does.
        proxy.stall();
        let err = round_trip(&mut client, b"two").unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock, "{err}");
        proxy.heal();
        let mut held = [0u8; 3];
        client.read_exact(&mut held).unwrap();
        assert_eq!(&held, b"two");

        // Delayed: each reply at least the latency late.
        proxy.delay(Duration::from_millis(100));
        let started = Instant::now();
        assert_eq!(round_trip(&mut client, b"three").unwrap(), b"three");
        assert!(started.elapsed() >= Duration::from_millis(100));
        proxy.heal();

        // Reset: the client's next read fails (RST), and a new connection works.
        assert_eq!(proxy.reset(), 1);
        let mut buf = [0u8; 1];
        assert!(matches!(client.read(&mut buf), Ok(0) | Err(_)));
        let mut again = TcpStream::connect(("127.0.0.1", proxy.port())).unwrap();
        assert_eq!(round_trip(&mut again, b"four").unwrap(), b"four");

        // Refused: new connections are closed at once.
        proxy.refuse();
        let mut refused = TcpStream::connect(("127.0.0.1", proxy.port())).unwrap();
        refused
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        assert!(matches!(refused.read(&mut buf), Ok(0) | Err(_)));
        assert_eq!(round_trip(&mut again, b"five").unwrap(), b"five");
    }
}
