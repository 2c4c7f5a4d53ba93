//! A real S3 API: `moto_server` (in memory) on a free port.

use std::io::{Read, Write};
use std::time::Duration;

use crate::{Background, free_port, require, venv_bin, wait_http_ok};

pub struct MotoServer {
    pub endpoint: String,
    pub port: u16,
    _process: Background,
    _dir: tempfile::TempDir,
}

impl MotoServer {
    /// `None` (skip) when moto is not installed outside CI.
    pub fn start() -> Option<Self> {
        let bin = require("moto", &venv_bin("moto_server"))?;
        let dir = tempfile::tempdir().expect("a temporary folder");
        let port = free_port();
        let process = Background::spawn(
            &bin,
            &["-H", "127.0.0.1", "-p", &port.to_string()],
            &[],
            dir.path().join("moto.log"),
        );
        if !wait_http_ok(port, "/", Duration::from_secs(60)) {
            panic!("moto did not start on port {port}:\n{}", process.log_tail());
        }
        Some(Self {
            endpoint: format!("http://127.0.0.1:{port}"),
            port,
            _process: process,
            _dir: dir,
        })
    }

    /// Creates a bucket (moto checks no signatures).
    pub fn create_bucket(&self, bucket: &str) {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).expect("moto is up");
        let req = format!(
            "PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        );
        s.write_all(req.as_bytes()).unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        assert!(
            resp.starts_with("HTTP/1.1 200"),
            "creating bucket {bucket}: {resp}"
        );
    }

    /// Creates a Secrets Manager secret (moto serves that API too).
    pub fn create_secret(&self, name: &str, value: &str) {
        let body = format!(
            "{{\"Name\": \"{name}\", \"SecretString\": \"{}\"}}",
            value.replace('\\', "\\\\").replace('"', "\\\"")
        );
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).expect("moto is up");
        let req = format!(
            "POST / HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/x-amz-json-1.1\r\nX-Amz-Target: secretsmanager.CreateSecret\r\nAuthorization: AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/secretsmanager/aws4_request, SignedHeaders=host, Signature=0\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.port,
            body.len()
        );
        s.write_all(req.as_bytes()).unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        assert!(resp.starts_with("HTTP/1.1 200"), "creating secret {name}: {resp}");
    }

    /// The environment an S3 client needs to reach this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL_S3", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
    }
}
