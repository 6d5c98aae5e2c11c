//! The API and the dashboard over HTTPS, spoken to by curl trusting the
//! fleet CA: a token created, listed, revoked and refused; the sign-in
//! cookie marked Secure; plain HTTP on the port gets no answer.

use super::*;

/// `curl` against the API at `https://supervisor.vcp:<port>` (resolved to
/// loopback), trusting `ca`; the status line, headers and body.
fn curl(ca: &std::path::Path, addr: SocketAddr, args: &[&str], path: &str) -> String {
    let curl = common::require_tool("curl", "curl");
    let port = addr.port();
    let out = std::process::Command::new(curl)
        .args(["-sS", "-i", "--max-time", "20", "--cacert"])
        .arg(ca)
        .arg("--resolve")
        .arg(format!("supervisor.vcp:{port}:127.0.0.1"))
        .args(args)
        .arg(format!("https://supervisor.vcp:{port}{path}"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "curl {args:?} {path}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("$ curl {} {path}\n{text}\n", args.join(" "));
    text
}

/// The JSON body of a `curl -i` answer.
fn body(answer: &str) -> Value {
    let (_, body) = answer.split_once("\r\n\r\n").unwrap();
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_over_https_with_the_fleet_ca() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    vcp::certs::write_fleet(&certs, &[], &[]).unwrap();
    let tls = vcp_supervisor::tls::https_config(
        &certs.join("supervisor.pem"),
        &certs.join("supervisor.key"),
    )
    .unwrap();
    let (fleet, t) = start_with(&dir.path().join("data"), None, |opts| {
        opts.api.as_mut().unwrap().tls = Some(tls);
    })
    .await;
    let addr = fleet.api_addr();
    let ca = certs.join("ca.pem");
    tokio::task::block_in_place(|| {
        let bearer = format!("Authorization: Bearer {}", t.operator);
        let op = ["-H", bearer.as_str()];
        let create = r#"{"account": "acme", "role": "customer", "ttl": "1h"}"#;
        let json = "Content-Type: application/json";
        let args = [&op[..], &["-H", json, "-d", create]].concat();
        let created = curl(&ca, addr, &args, "/v1/tokens");
        assert!(created.starts_with("HTTP/1.1 201"), "{created}");
        let issued = body(&created);
        let (secret, id) = (
            issued["token"].as_str().unwrap(),
            issued["id"].as_str().unwrap(),
        );
        let listed = curl(&ca, addr, &op, "/v1/tokens");
        assert!(listed.contains(id) && !listed.contains(secret), "{listed}");
        let theirs = format!("Authorization: Bearer {secret}");
        let hosts = curl(&ca, addr, &["-H", &theirs], "/v1/hosts");
        assert!(hosts.starts_with("HTTP/1.1 200"), "{hosts}");
        let args = [&op[..], &["-X", "DELETE"]].concat();
        let revoked = curl(&ca, addr, &args, &format!("/v1/tokens/{id}"));
        assert!(revoked.starts_with("HTTP/1.1 200"), "{revoked}");
        let refused = curl(&ca, addr, &["-H", &theirs], "/v1/hosts");
        assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");
        assert!(body(&refused)["error"]
            .as_str()
            .unwrap()
            .contains("was revoked at"));

        // The dashboard's cookies are Secure over HTTPS.
        let jar = dir.path().join("jar");
        let jar = jar.to_str().unwrap();
        let form = curl(&ca, addr, &["-c", jar], "/ui/login");
        assert!(form.contains("; Secure"), "{form}");
        let csrf = form
            .split("vcp_csrf=")
            .nth(1)
            .unwrap()
            .split(';')
            .next()
            .unwrap();
        let fields = format!("token={}&next=%2Fui&csrf={csrf}", t.operator);
        let signed = curl(&ca, addr, &["-b", jar, "-d", &fields], "/ui/login");
        assert!(signed.starts_with("HTTP/1.1 303"), "{signed}");
        let cookie = format!(
            "vcp_token={}; HttpOnly; SameSite=Strict; Path=/; Secure",
            t.operator
        );
        assert!(signed.contains(&cookie), "{signed}");
    });
    // Plain HTTP on the HTTPS port is not served.
    let plain = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        s.write_all(b"GET /v1/openapi.json HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut got = Vec::new();
        let _ = s.read_to_end(&mut got);
        String::from_utf8_lossy(&got).into_owned()
    })
    .await
    .unwrap();
    assert!(!plain.contains("HTTP/1.1 200"), "{plain}");
    fleet.stop().await;
}
