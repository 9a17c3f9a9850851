//! HTTPS without a proxy, against the real binary and a rustls client: the certificate is served, the console's
//! cookies are Secure and HSTS is sent, a renewed certificate applies on SIGHUP without a
//! restart, and a broken renewal keeps the certificate in use.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::ClientConnection;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

use crate::cli::{Sandbox, Server, run};
use crate::helpers::TestCertificate;

/// A TLS connection (rustls, the handshake done) to 127.0.0.1:`port` as `localhost`, trusting
/// only the certificate in `trusted`.
fn tls_connect(port: u16, trusted: &Path) -> Result<(ClientConnection, TcpStream), String> {
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_file_iter(trusted).map_err(|e| e.to_string())? {
        roots
            .add(certificate.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = ServerName::try_from("localhost").map_err(|e| e.to_string())?;
    let mut connection =
        ClientConnection::new(Arc::new(config), name).map_err(|e| e.to_string())?;
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    while connection.is_handshaking() {
        connection
            .complete_io(&mut tcp)
            .map_err(|e| e.to_string())?;
    }
    Ok((connection, tcp))
}

/// `GET path` over TLS (see `tls_connect`): the raw answer, or why the handshake or the
/// exchange failed.
fn https_get(port: u16, trusted: &Path, path: &str) -> Result<String, String> {
    let (mut connection, mut tcp) = tls_connect(port, trusted)?;
    let mut tls = rustls::Stream::new(&mut connection, &mut tcp);
    write!(
        tls,
        "GET {path} HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    // The server may close without a close_notify: what came before counts.
    let _ = tls.read_to_end(&mut answer);
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

fn port_of(server: &Server) -> u16 {
    server
        .address
        .rsplit(':')
        .next()
        .and_then(|port| port.parse().ok())
        .expect("port")
}

fn tls_server(sandbox: &Sandbox, cert: &Path, key: &Path, log: &Path, more: &[&str]) -> Server {
    let data = sandbox.data_arg();
    let log = std::fs::File::create(log).expect("log file");
    let mut args = vec![
        "serve",
        "--bind",
        "127.0.0.1:0",
        "--data-dir",
        &data,
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ];
    args.extend(more);
    Server::spawn_with_stderr(sandbox.cmd(&args), Stdio::from(log))
}

/// Puts `from`'s certificate and key where the server reads them, each file replaced at once.
fn install(from: &TestCertificate, cert: &Path, key: &Path) {
    for (source, target) in [(&from.cert_path, cert), (&from.key_path, key)] {
        let staged = target.with_extension("new");
        std::fs::copy(source, &staged).expect("stage");
        std::fs::rename(&staged, target).expect("install");
    }
}

fn sighup(server: &Server) {
    let pid = libc::pid_t::try_from(server.child.0.id()).expect("pid");
    // SAFETY: signals our own child process, which is alive (KillOnDrop holds it).
    assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0);
}

/// Waits (at most 10 s) until `check` holds.
fn eventually(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn https_is_served_and_a_renewed_certificate_applies_on_sighup() {
    let sandbox = Sandbox::new();
    let (first, second) = (TestCertificate::localhost(), TestCertificate::localhost());
    let cert = sandbox.dir.path().join("cert.pem");
    let key = sandbox.dir.path().join("key.pem");
    install(&first, &cert, &key);
    let log = sandbox.dir.path().join("roost.log");
    let mut server = tls_server(&sandbox, &cert, &key, &log, &[]);
    let line = server.wait_for_line(|l| l.contains("listening on"));
    assert!(line.contains("https://127.0.0.1:"), "{line}");
    assert!(line.contains("console at https://localhost:"), "{line}");
    let port = port_of(&server);

    tokio::task::spawn_blocking(move || {
        let health = https_get(port, &first.cert_path, "/healthz").expect("https");
        assert!(health.starts_with("HTTP/1.1 200"), "{health}");
        assert!(
            health
                .to_ascii_lowercase()
                .contains("strict-transport-security: max-age=31536000"),
            "{health}"
        );
        // The console's cookies are Secure (the login page starts a session for its CSRF token).
        let login = https_get(port, &first.cert_path, "/login").expect("https");
        let cookies: Vec<&str> = login
            .lines()
            .filter(|line| line.to_ascii_lowercase().starts_with("set-cookie:"))
            .collect();
        assert!(!cookies.is_empty(), "{login}");
        for cookie in cookies {
            assert!(cookie.contains("; Secure"), "{cookie}");
            assert!(cookie.contains("; HttpOnly"), "{cookie}");
        }
        // Plain HTTP on the HTTPS port gets no page.
        let mut plain = TcpStream::connect(("127.0.0.1", port)).unwrap();
        plain
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        plain
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .unwrap();
        let mut answer = Vec::new();
        let _ = plain.read_to_end(&mut answer);
        assert!(
            !String::from_utf8_lossy(&answer).contains("\"ok\""),
            "served over plain HTTP"
        );
        // A client that trusts only the next certificate is refused until the renewal.
        assert!(https_get(port, &second.cert_path, "/healthz").is_err());

        install(&second, &cert, &key);
        sighup(&server);
        eventually("the renewed certificate is served", || {
            https_get(port, &second.cert_path, "/healthz")
                .is_ok_and(|answer| answer.starts_with("HTTP/1.1 200"))
        });
        assert!(https_get(port, &first.cert_path, "/healthz").is_err());

        // A broken renewal (the first key with the second certificate, then garbage) keeps the
        // certificate in use, and says why in the log.
        std::fs::copy(&first.key_path, &key).unwrap();
        sighup(&server);
        eventually("the refusal is logged", || {
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .contains("does not belong to the certificate")
        });
        std::fs::write(&cert, "not a certificate").unwrap();
        sighup(&server);
        eventually("the second refusal is logged", || {
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .matches("still serving the previous certificate")
                .count()
                == 2
        });
        let health = https_get(port, &second.cert_path, "/healthz").expect("still served");
        assert!(health.starts_with("HTTP/1.1 200"), "{health}");
        let logged = std::fs::read_to_string(&log).unwrap();
        for key_file in [&first.key_path, &second.key_path] {
            let key_pem = std::fs::read_to_string(key_file).unwrap();
            for material in key_pem.lines().filter(|line| !line.starts_with("-----")) {
                assert!(!logged.contains(material), "key material in the log");
            }
        }
        assert!(!logged.contains("PRIVATE KEY-----"), "{logged}");
        server
    })
    .await
    .unwrap();
}

/// The per-client connection limit holds under TLS too (it is applied once the handshake is done).
#[tokio::test]
async fn the_connection_limit_applies_to_tls_connections() {
    let sandbox = Sandbox::new();
    let certificate = TestCertificate::localhost();
    let log = sandbox.dir.path().join("roost.log");
    let server = tls_server(
        &sandbox,
        &certificate.cert_path,
        &certificate.key_path,
        &log,
        &["--max-connections-per-client", "2"],
    );
    let port = port_of(&server);
    tokio::task::spawn_blocking(move || {
        let held: Vec<_> = (0..2)
            .map(|_| tls_connect(port, &certificate.cert_path).expect("handshake"))
            .collect();
        // Let the server admit both before the third comes.
        std::thread::sleep(Duration::from_millis(200));
        let third = https_get(port, &certificate.cert_path, "/healthz");
        assert!(
            !third.as_deref().unwrap_or("").starts_with("HTTP/1.1 200"),
            "a third connection was served: {third:?}"
        );
        drop(held);
        eventually("a connection is served once the others closed", || {
            https_get(port, &certificate.cert_path, "/healthz")
                .is_ok_and(|answer| answer.starts_with("HTTP/1.1 200"))
        });
        // (The log is written every few milliseconds, not at once.)
        eventually("the refusal is logged", || {
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .contains("holds 2 connections already")
        });
        server
    })
    .await
    .unwrap();
}

#[test]
fn unusable_tls_files_stop_the_start_with_the_reason() {
    let sandbox = Sandbox::new();
    let data = sandbox.data_arg();
    let (one, other) = (TestCertificate::localhost(), TestCertificate::localhost());
    let cert = one.cert_path.to_str().unwrap();
    let cases: [(Vec<&str>, &str); 4] = [
        (
            vec!["--tls-cert", cert],
            "--tls-cert needs --tls-key (the certificate's private key)",
        ),
        (
            vec!["--tls-key", one.key_path.to_str().unwrap()],
            "--tls-key needs --tls-cert",
        ),
        (
            vec![
                "--tls-cert",
                cert,
                "--tls-key",
                other.key_path.to_str().unwrap(),
            ],
            "does not belong to the certificate",
        ),
        (
            vec!["--tls-cert", "/nonexistent/cert.pem", "--tls-key", cert],
            "cannot read the TLS certificate /nonexistent/cert.pem",
        ),
    ];
    for (tls_args, expected) in cases {
        let mut args = vec!["serve", "--bind", "127.0.0.1:0", "--data-dir", &data];
        args.extend(tls_args);
        let output = run(sandbox.cmd(&args));
        assert!(!output.status.success(), "{args:?} started");
        assert!(
            output.stderr.contains(expected),
            "{args:?}: {}",
            output.stderr
        );
    }
}

/// `systemctl reload` on a console without TLS: the signal is logged, the server goes on.
#[tokio::test]
async fn sighup_without_tls_leaves_the_server_running() {
    let sandbox = Sandbox::new();
    let token = sandbox.create_token("admin");
    let mut server = Server::start(&sandbox);
    sighup(&server);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        server.child.0.try_wait().expect("status").is_none(),
        "SIGHUP ended the server"
    );
    server
        .call(&token, reqwest::Method::GET, "ping", &[])
        .await
        .ok();
    let _ = server.wait_for_line(|_| true);
}
