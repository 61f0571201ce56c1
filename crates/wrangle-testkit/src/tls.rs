//! TLS material for the throwaway servers started with TLS on: a self-signed certificate
//! authority made for that one server (so every test run, and every server, has its own)
//! and a server certificate it signed for `localhost` and `127.0.0.1`, written with the
//! `openssl` program into `tls/` of the server's temp dir. Clients verify the server
//! against [`ca_file`]; nothing is added to the machine's trust store, so a client that is
//! not given the CA file must reject the server.
//!
//! Keys are ECDSA P-256: quick to make, and accepted by PostgreSQL, MariaDB, Redis and
//! rustls alike.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::TestkitError;
use crate::sys;

/// How long the certificates are valid: a test run is far shorter.
const DAYS: &str = "2";

/// The CA certificate (PEM) clients must trust, for a server with its files in `dir`.
pub(crate) fn ca_file(dir: &Path) -> PathBuf {
    dir.join("tls").join("ca.pem")
}

/// The server's certificate (PEM), for a server with its files in `dir`.
pub(crate) fn cert_file(dir: &Path) -> PathBuf {
    dir.join("tls").join("server.pem")
}

/// The server's private key (PEM, readable by its owner only), for a server with its files
/// in `dir`.
pub(crate) fn key_file(dir: &Path) -> PathBuf {
    dir.join("tls").join("server.key")
}

/// Makes a new CA and a server certificate signed by it in `dir/tls`.
pub(crate) fn generate(dir: &Path) -> Result<(), TestkitError> {
    let openssl = sys::find_or_install("openssl", "openssl", || sys::find_program(&["openssl"]))?;
    let tls = dir.join("tls");
    fs::create_dir(&tls).map_err(TestkitError::io(format!("creating {}", tls.display())))?;
    let extensions = tls.join("server.ext");
    fs::write(
        &extensions,
        "subjectAltName = DNS:localhost, IP:127.0.0.1\n\
         basicConstraints = critical, CA:FALSE\n\
         keyUsage = critical, digitalSignature, keyEncipherment\n\
         extendedKeyUsage = serverAuth\n",
    )
    .map_err(TestkitError::io(format!(
        "writing {}",
        extensions.display()
    )))?;
    let openssl = |args: &[&str]| {
        let mut cmd = Command::new(&openssl);
        cmd.args(args).current_dir(&tls);
        sys::run(&mut cmd)
    };
    let new_key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
    openssl(
        &[
            &["req", "-x509", "-nodes", "-days", DAYS],
            &new_key[..],
            &["-keyout", "ca.key", "-out", "ca.pem"],
            &["-subj", "/CN=wrangle-testkit CA"],
            &["-addext", "basicConstraints=critical,CA:TRUE"],
            &["-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        ]
        .concat(),
    )?;
    openssl(
        &[
            &["req", "-nodes"],
            &new_key[..],
            &["-keyout", "server.key", "-out", "server.csr"],
            &["-subj", "/CN=localhost"],
        ]
        .concat(),
    )?;
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        DAYS,
        "-extfile",
        "server.ext",
        "-out",
        "server.pem",
    ])?;
    // PostgreSQL refuses a key that others may read.
    sys::run(Command::new("chmod").arg("600").arg(key_file(dir)))?;
    Ok(())
}
