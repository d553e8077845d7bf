//! `--tls`: the certificate file exists when the URL line appears, and HTTPS works with it.

mod common;

use std::sync::Arc;

use common::{within, Hub};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn serves_https_with_the_written_certificate() {
    let dir = std::env::temp_dir().join(format!("test-hub-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cert_path = dir.join("cert.pem");
    let hub = Hub::start(&["--tls", cert_path.to_str().unwrap()]).await;
    assert!(hub.base.starts_with("https://127.0.0.1:"), "{}", hub.base);

    let pem = std::fs::read_to_string(&cert_path).expect("certificate written before the URL line");
    let der = pem_body(&pem);
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(der)).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    for name in ["127.0.0.1", "localhost"] {
        let tcp = tokio::net::TcpStream::connect(&hub.addr).await.unwrap();
        let server_name = ServerName::try_from(name.to_owned()).unwrap();
        let mut tls = within("TLS handshake", connector.connect(server_name, tcp)).await.expect("certificate accepted");
        tls.write_all(b"POST /hub/negotiate?negotiateVersion=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut response = Vec::new();
        let _ = within("HTTPS response", tls.read_to_end(&mut response)).await;
        let text = String::from_utf8_lossy(&response);
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        assert!(text.contains("\"connectionToken\""), "{text}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The DER bytes of a single-certificate PEM file.
fn pem_body(pem: &str) -> Vec<u8> {
    use base64::Engine;
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD.decode(body).unwrap()
}
