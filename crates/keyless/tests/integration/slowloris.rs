//! Slow and idle clients: a request head or body dribbled in, an idle keep-alive
//! connection, and more connections than the cap. Short limits come from flags so the
//! tests stay fast; each attack ends with a health check (the server stays up).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

use crate::testkit::Server;

/// A TLS connection to `server` speaking HTTP/1.1, trusting only its `ca.pem`.
async fn connect(server: &Server) -> Result<TlsStream<TcpStream>> {
    connect_from(server, [127, 0, 0, 1]).await
}

/// Reads until the server closes the connection (EOF or a reset, both count), at most
/// `within`; returns what it sent and how long it took.
async fn read_until_closed(
    stream: &mut TlsStream<TcpStream>,
    within: Duration,
) -> Result<(String, Duration)> {
    let start = Instant::now();
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .with_context(|| {
        format!(
            "the server kept the connection open past {within:?}; received {:?}",
            String::from_utf8_lossy(&received)
        )
    })?;
    Ok((
        String::from_utf8_lossy(&received).into_owned(),
        start.elapsed(),
    ))
}

/// Reads one response whose end the caller recognises (`marker`), keeping the
/// connection open.
async fn read_response(stream: &mut TlsStream<TcpStream>, marker: &str) -> Result<String> {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(Duration::from_secs(10), async {
        while !String::from_utf8_lossy(&received).contains(marker) {
            let n = stream.read(&mut buf).await?;
            ensure!(n > 0, "connection closed before the response ended");
            received.extend_from_slice(&buf[..n]);
        }
        Ok(())
    })
    .await
    .context("no complete response within 10 s")??;
    Ok(String::from_utf8_lossy(&received).into_owned())
}

async fn assert_healthy(server: &Server) -> Result<()> {
    let reply = server.get("/healthz").await?;
    ensure!(
        reply.code() == 200,
        "healthz after the attack: {}",
        reply.code()
    );
    Ok(())
}

const HEALTHZ: &str = "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";

#[tokio::test]
async fn half_a_request_head_is_cut_off_at_the_header_timeout() -> Result<()> {
    let server = Server::start(&["--header-read-timeout", "1"]).await?;

    let mut slow = connect(&server).await?;
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: loc")
        .await?;
    let (got, took) = read_until_closed(&mut slow, Duration::from_secs(8)).await?;
    ensure!(
        got.is_empty() || got.starts_with("HTTP/1.1 408"),
        "half a head must get no answer (or 408), got {got:?}"
    );
    ensure!(
        took >= Duration::from_millis(800),
        "closed too early: {took:?}"
    );

    // The same request, sent at once, is served on a fresh connection.
    let mut quick = connect(&server).await?;
    quick.write_all(HEALTHZ.as_bytes()).await?;
    let got = read_response(&mut quick, "\r\n\r\n").await?;
    ensure!(got.starts_with("HTTP/1.1 200"), "prompt request: {got:?}");
    assert_healthy(&server).await
}

/// The head of a token request with a 10-byte body.
fn token_head(server: &Server) -> String {
    format!(
        "POST {} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 10\r\n\r\n",
        server.token_path_v2()
    )
}

#[tokio::test]
async fn a_stalled_body_is_refused_with_408() -> Result<()> {
    let server = Server::start(&["--body-read-timeout", "1"]).await?;

    let mut slow = connect(&server).await?;
    slow.write_all(format!("{}gr", token_head(&server)).as_bytes())
        .await?;
    let (got, _) = read_until_closed(&mut slow, Duration::from_secs(8)).await?;
    ensure!(
        got.starts_with("HTTP/1.1 408"),
        "2 of 10 body bytes must be refused with 408, got {got:?}"
    );

    // A body dripped a byte at a time is bounded as a whole, not per byte.
    let mut drip = connect(&server).await?;
    drip.write_all(token_head(&server).as_bytes()).await?;
    let dripping = async {
        for byte in b"grant_type" {
            if drip.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    };
    dripping.await;
    let (got, _) = read_until_closed(&mut drip, Duration::from_secs(8)).await?;
    ensure!(
        got.is_empty() || got.starts_with("HTTP/1.1 408"),
        "a body dripped over 3 s with a 1 s limit must not be served, got {got:?}"
    );

    // A prompt body is answered as usual (here: the token endpoint's own 400).
    let reply = server
        .post_form(
            &server.token_path_v2(),
            &[("grant_type", "client_credentials")],
            &[],
        )
        .await?;
    ensure!(
        reply.code() == 400,
        "prompt token request: {}",
        reply.code()
    );
    assert_healthy(&server).await
}

#[tokio::test]
async fn an_idle_keep_alive_connection_closes_at_the_idle_timeout() -> Result<()> {
    // The header timeout is shorter: it must not apply to a connection between requests.
    let server = Server::start(&["--idle-timeout", "3", "--header-read-timeout", "1"]).await?;

    let mut conn = connect(&server).await?;
    conn.write_all(HEALTHZ.as_bytes()).await?;
    let first = read_response(&mut conn, "\r\n\r\n").await?;
    ensure!(
        first.starts_with("HTTP/1.1 200"),
        "first request: {first:?}"
    );
    let (_, idle_for) = read_until_closed(&mut conn, Duration::from_secs(10)).await?;
    ensure!(
        idle_for >= Duration::from_millis(2500),
        "an idle keep-alive connection was closed after {idle_for:?}, before the 3 s idle timeout"
    );
    assert_healthy(&server).await
}

#[tokio::test]
async fn connections_over_the_cap_wait_until_one_closes() -> Result<()> {
    let server = Server::start(&["--max-connections", "3"]).await?;
    let port = server.port;

    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(connect(&server).await?);
    }
    // The fourth waits in the accept backlog: no TLS handshake, so no service.
    let server = Arc::new(server);
    let fourth = tokio::spawn({
        let server = Arc::clone(&server);
        async move { connect(&server).await }
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    ensure!(
        !fourth.is_finished(),
        "a fourth connection on port {port} was served with --max-connections 3"
    );

    drop(held.pop());
    let mut fourth = tokio::time::timeout(Duration::from_secs(5), fourth)
        .await
        .context("the fourth connection was not served after one closed")???;
    fourth.write_all(HEALTHZ.as_bytes()).await?;
    let got = read_response(&mut fourth, "\r\n\r\n").await?;
    ensure!(
        got.starts_with("HTTP/1.1 200"),
        "fourth connection: {got:?}"
    );

    drop(fourth);
    drop(held);
    assert_healthy(&server).await
}

/// A TLS connection to `server` speaking HTTP/1.1 from the loopback source address
/// `source`, trusting only its `ca.pem`.
async fn connect_from(server: &Server, source: [u8; 4]) -> Result<TlsStream<TcpStream>> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(server.data_dir().join("ca.pem"))? {
        roots.add(cert?)?;
    }
    let mut config = ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind((std::net::Ipv4Addr::from(source), 0).into())?;
    let tcp = socket.connect(([127, 0, 0, 1], server.port).into()).await?;
    let name = ServerName::try_from("localhost")?;
    Ok(TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await?)
}

#[tokio::test]
async fn one_address_cannot_hold_more_than_its_connection_cap() -> Result<()> {
    let server = Server::start(&["--max-connections-per-address", "3"]).await?;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(connect_from(&server, [127, 0, 0, 1]).await?);
    }
    // The fourth from the same address is closed before its handshake completes.
    let fourth = tokio::time::timeout(
        Duration::from_secs(5),
        connect_from(&server, [127, 0, 0, 1]),
    )
    .await
    .context("the fourth connection neither failed nor succeeded")?;
    ensure!(
        fourth.is_err(),
        "a fourth connection from one address was served with --max-connections-per-address 3"
    );
    // Another address is served meanwhile.
    let mut other = connect_from(&server, [127, 0, 0, 2]).await?;
    other.write_all(HEALTHZ.as_bytes()).await?;
    let got = read_response(&mut other, "\r\n\r\n").await?;
    ensure!(got.starts_with("HTTP/1.1 200"), "other address: {got:?}");
    // A closed connection gives its slot back.
    drop(held.pop());
    let mut again = None;
    for _ in 0..50 {
        if let Ok(c) = connect_from(&server, [127, 0, 0, 1]).await {
            again = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut again = again.context("the slot was not given back after a connection closed")?;
    again.write_all(HEALTHZ.as_bytes()).await?;
    let got = read_response(&mut again, "\r\n\r\n").await?;
    ensure!(got.starts_with("HTTP/1.1 200"), "after a close: {got:?}");
    drop(held);
    assert_healthy(&server).await
}

/// The SETTINGS_MAX_CONCURRENT_STREAMS the server advertises on a new HTTP/2
/// connection (read from its first SETTINGS frame).
async fn advertised_http2_streams(server: &Server) -> Result<Option<u32>> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(server.data_dir().join("ca.pem"))? {
        roots.add(cert?)?;
    }
    let mut config = ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = TcpStream::connect(("127.0.0.1", server.port)).await?;
    let mut tls = TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost")?, tcp)
        .await?;
    ensure!(
        tls.get_ref().1.alpn_protocol() == Some(b"h2".as_slice()),
        "the server did not negotiate h2"
    );
    // Client preface, then an empty SETTINGS frame.
    tls.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await?;
    tls.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).await?;
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let mut head = [0u8; 9];
            tls.read_exact(&mut head).await?;
            let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
            let mut payload = vec![0u8; len];
            tls.read_exact(&mut payload).await?;
            // SETTINGS (type 4), not an ACK (flag 1).
            if head[3] == 4 && head[4] & 1 == 0 {
                return Ok(payload.chunks_exact(6).find_map(|e| {
                    (u16::from_be_bytes([e[0], e[1]]) == 3)
                        .then(|| u32::from_be_bytes([e[2], e[3], e[4], e[5]]))
                }));
            }
        }
    })
    .await
    .context("no SETTINGS frame within 5 s")?
}

/// One HTTP/2 connection cannot carry more than `--max-http2-streams` requests at once
/// (default 100): the cap is advertised to the client in the connection's SETTINGS.
#[tokio::test]
async fn http2_connections_advertise_the_stream_cap() -> Result<()> {
    let server = Server::start(&[]).await?;
    assert_eq!(advertised_http2_streams(&server).await?, Some(100));
    let server = Server::start(&["--max-http2-streams", "7"]).await?;
    assert_eq!(advertised_http2_streams(&server).await?, Some(7));
    assert_healthy(&server).await
}
