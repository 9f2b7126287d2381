//! HTTPS without a proxy (SPEC section 9): the configured certificate, HTTP/2 and HTTP/1.1 by
//! ALPN, and a renewed certificate served without a restart. Checked with curl.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::{Backend, Proc, Site};

/// A self-signed certificate for 127.0.0.1 named `cn`, as `<name>.crt` and `<name>.key`.
fn certificate(dir: &Path, name: &str, cn: &str) {
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "2", "-subj", &format!("/CN={cn}")])
        .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        .arg("-keyout")
        .arg(dir.join(format!("{name}.key")))
        .arg("-out")
        .arg(dir.join(format!("{name}.crt")))
        .output()
        .expect("openssl");
    assert!(out.status.success(), "openssl req: {out:?}");
}

/// `curl` over HTTPS trusting `ca`: (HTTP version, status), or `None` when it failed.
fn curl(url: &str, ca: &Path, version: &str) -> Option<(String, String)> {
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_version} %{http_code}",
            version,
        ])
        .arg("--cacert")
        .arg(ca)
        .arg(url)
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (v, code) = text.split_once(' ')?;
    (out.status.success() && code != "000").then(|| (v.to_string(), code.to_string()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_speaks_h2_and_http1_and_reloads_a_renewed_certificate() {
    let site = Site::new(Backend::Sqlite).await;
    let dir = site.dir.path();
    certificate(dir, "one", "keymint-one");
    certificate(dir, "two", "keymint-two");
    std::fs::copy(dir.join("one.crt"), dir.join("tls.crt")).unwrap();
    std::fs::copy(dir.join("one.key"), dir.join("tls.key")).unwrap();
    let (cert, key) = (dir.join("tls.crt"), dir.join("tls.key"));
    let p = Proc::spawn(
        &site,
        &[
            ("KEYMINT_TLS_CERT", cert.to_str().unwrap()),
            ("KEYMINT_TLS_KEY", key.to_str().unwrap()),
        ],
    )
    .await;
    assert!(p.base.starts_with("https://"), "{}", p.base);
    let url = format!("{}/healthz", p.base.replace("127.0.0.1", "localhost"));
    let ca_one = dir.join("one.crt");
    let h2 = tokio::task::spawn_blocking({
        let (url, ca) = (url.clone(), ca_one.clone());
        move || (curl(&url, &ca, "--http2"), curl(&url, &ca, "--http1.1"))
    })
    .await
    .unwrap();
    assert_eq!(h2.0, Some(("2".into(), "200".into())), "HTTP/2 by ALPN");
    assert_eq!(h2.1, Some(("1.1".into(), "200".into())), "HTTP/1.1 by ALPN");

    // Renew: the new key, then the new certificate, each replaced whole (as certbot does).
    for ext in ["key", "crt"] {
        let tmp = dir.join(format!("tls.{ext}.new"));
        std::fs::copy(dir.join(format!("two.{ext}")), &tmp).unwrap();
        std::fs::rename(&tmp, dir.join(format!("tls.{ext}"))).unwrap();
    }
    let ca_two = dir.join("two.crt");
    let started = Instant::now();
    loop {
        let (u, ca) = (url.clone(), ca_two.clone());
        let got = tokio::task::spawn_blocking(move || curl(&u, &ca, "--http2"))
            .await
            .unwrap();
        if got.is_some() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the renewed certificate is not served after 5 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!("renewed certificate served after {:?}", started.elapsed());
    let (u, ca) = (url.clone(), ca_one.clone());
    let old = tokio::task::spawn_blocking(move || curl(&u, &ca, "--http2"))
        .await
        .unwrap();
    assert_eq!(old, None, "the old certificate is still served");
}
