//! The API server's limits, on a router of test routes over real TCP.

use std::time::{Duration, Instant};

use axum::routing::get;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::*;

fn limits(header_ms: u64, request_ms: u64, connections: usize, in_flight: usize) -> HttpLimits {
    HttpLimits {
        max_connections: connections,
        header_read_timeout_ms: header_ms,
        request_timeout_ms: request_ms,
        max_in_flight: in_flight,
        ..HttpLimits::default()
    }
}

async fn server(limits: &HttpLimits) -> ApiServer {
    let app = Router::new()
        .route("/fast", get(|| async { "fast" }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "slow"
            }),
        );
    ApiServer::serve("127.0.0.1:0".parse().unwrap(), app, limits, None)
        .await
        .unwrap()
}

/// One request on a connection of its own; the response's status line and
/// headers.
async fn request(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

/// Reads until the server closes the connection; what it sent.
async fn until_closed(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut out))
        .await
        .expect("the server closed the connection");
    out
}

#[tokio::test]
async fn a_client_that_trickles_its_headers_is_cut_off_while_others_are_served() {
    let server = server(&limits(300, 5_000, 16, 16)).await;
    let started = Instant::now();
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(b"GET /fast HTTP/1.1\r\nHost: t\r\n")
        .await
        .unwrap();
    assert!(request(server.addr, "/fast")
        .await
        .starts_with("HTTP/1.1 200"));
    let said = until_closed(&mut slow).await;
    assert!(started.elapsed() >= Duration::from_millis(250));
    assert!(
        !String::from_utf8_lossy(&said).contains("200 OK"),
        "{said:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_slowloris_connections_are_closed_within_the_header_timeout() {
    // 50 connections send their headers one byte a second; the header
    // timeout is 1.5 s: each is closed by then (the write of its next byte
    // fails or its read ends), while a normal request is served.
    let header = Duration::from_millis(1500);
    let server = server(&limits(1500, 5_000, 64, 64)).await;
    let started = Instant::now();
    let trickle = |addr: SocketAddr| async move {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let opened = Instant::now();
        for b in b"GET /fast HTTP/1.1\r\nHost: t\r\n\r\n".iter().cycle() {
            if s.write_all(&[*b]).await.is_err() {
                break;
            }
            let mut one = [0u8; 1];
            match tokio::time::timeout(Duration::from_secs(1), s.read(&mut one)).await {
                Ok(Ok(0) | Err(_)) => break,
                Ok(Ok(_)) => panic!("the server answered a request never finished"),
                Err(_) => {} // a second passed: the next byte
            }
            assert!(opened.elapsed() < Duration::from_secs(10), "never closed");
        }
        opened.elapsed()
    };
    let slow: Vec<_> = (0..50)
        .map(|_| tokio::spawn(trickle(server.addr)))
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let answer = request(server.addr, "/fast").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let served = started.elapsed();
    let mut longest = Duration::ZERO;
    for t in slow {
        longest = longest.max(t.await.unwrap());
    }
    assert!(
        served < header,
        "served in {served:?}, behind the slow ones"
    );
    assert!(
        longest < header + Duration::from_millis(1200),
        "the slowest was closed after {longest:?}"
    );
}

#[tokio::test]
async fn requests_past_the_in_flight_bound_get_503_and_slow_ones_408() {
    let server = server(&limits(5_000, 600, 16, 2)).await;
    let slow = |_| tokio::spawn(request(server.addr, "/slow"));
    let held: Vec<_> = (0..2).map(slow).collect();
    tokio::time::sleep(Duration::from_millis(150)).await;
    let shed = request(server.addr, "/fast").await;
    assert!(shed.starts_with("HTTP/1.1 503"), "{shed}");
    assert!(
        shed.to_ascii_lowercase().contains("retry-after: 1"),
        "{shed}"
    );
    for h in held {
        let timed_out = h.await.unwrap();
        assert!(timed_out.starts_with("HTTP/1.1 408"), "{timed_out}");
    }
    assert!(request(server.addr, "/fast")
        .await
        .starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn a_connection_past_max_connections_waits_for_one_to_close() {
    let server = server(&limits(400, 5_000, 1, 16)).await;
    let started = Instant::now();
    let mut idle = TcpStream::connect(server.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    // Served only once the idle connection is closed for its silence.
    let answer = request(server.addr, "/fast").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(started.elapsed() >= Duration::from_millis(350));
    until_closed(&mut idle).await;
}
