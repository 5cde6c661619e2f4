//! Azurite, Microsoft's Azure Storage emulator (npm package `azurite`), started by the
//! test on a loopback port with its blob service only, in memory, behind a
//! [`FaultProxy`]. `scripts/test.sh` installs it and sets `AZURITE_BLOB` to its
//! `azurite-blob` command.

use crate::fault_proxy::FaultProxy;
use base64::Engine;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The emulator's well-known development account and key (public, in Azure's docs).
pub const ACCOUNT: &str = "devstoreaccount1";
pub const KEY: &str = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
pub const CONTAINER: &str = "billrun";

pub struct Azurite {
    child: Child,
    pub addr: SocketAddr,
    /// Clients talk to the proxy, which forwards to Azurite or fails on purpose.
    pub proxy: FaultProxy,
    _dir: tempfile::TempDir,
}

fn command() -> String {
    std::env::var("AZURITE_BLOB").unwrap_or_else(|_| "azurite-blob".into())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Azurite {
    /// Starts Azurite and creates the container [`CONTAINER`]. Panics, saying how to
    /// install it, when the emulator cannot be started.
    pub fn start() -> Azurite {
        let dir = tempfile::Builder::new().prefix("billrun-azurite-").tempdir().unwrap();
        for _ in 0..3 {
            let port = free_port();
            let child = Command::new(command())
                // No telemetry: the emulator talks to the tests on loopback and to nothing else.
                .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string(), "--skipApiVersionCheck", "--disableTelemetry", "--silent", "--location"])
                .arg(dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn();
            let mut child =
                child.unwrap_or_else(|e| panic!("cannot start Azurite ('{}': {e}); run the tests with scripts/test.sh, which installs it", command()));
            let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if TcpStream::connect(addr).is_ok() {
                    let proxy = FaultProxy::start(addr);
                    let azurite = Azurite { child, addr, proxy, _dir: dir };
                    azurite.create_container(CONTAINER);
                    return azurite;
                }
                if child.try_wait().unwrap().is_some() {
                    break; // the port was taken meanwhile: try another
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("Azurite did not start on a loopback port");
    }

    /// `az://billrun/<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("az://{CONTAINER}/{}", path.trim_start_matches('/'))
    }

    /// The environment of a billrun process using this emulator through the proxy;
    /// every inherited `AZURE_*` variable is dropped first.
    pub fn apply_env<'a>(&self, cmd: &'a mut Command) -> &'a mut Command {
        for (key, _) in std::env::vars_os() {
            if key.to_str().is_some_and(|k| k.starts_with("AZURE_") || k.starts_with("AZURITE_")) {
                cmd.env_remove(&key);
            }
        }
        cmd.env("AZURE_STORAGE_USE_EMULATOR", "true")
            .env("AZURITE_BLOB_STORAGE_URL", &self.proxy.endpoint)
            .env("AZURE_STORAGE_ACCOUNT_NAME", ACCOUNT)
            .env("AZURE_STORAGE_ACCOUNT_KEY", KEY)
    }

    /// Creates a container with a SharedKey-signed request, straight to Azurite.
    pub fn create_container(&self, name: &str) {
        let date = httpdate();
        let version = "2021-08-06";
        let resource = format!("/{ACCOUNT}/{ACCOUNT}/{name}\nrestype:container");
        let to_sign = format!("PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n{resource}");
        let key = base64::engine::general_purpose::STANDARD.decode(KEY).unwrap();
        let sig = base64::engine::general_purpose::STANDARD.encode(hmac_sha256(&key, to_sign.as_bytes()));
        let req = format!(
            "PUT /{ACCOUNT}/{name}?restype=container HTTP/1.1\r\nHost: {}\r\nx-ms-date: {date}\r\nx-ms-version: {version}\r\nAuthorization: SharedKey {ACCOUNT}:{sig}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.addr
        );
        let mut s = TcpStream::connect(self.addr).unwrap();
        s.write_all(req.as_bytes()).unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        assert!(resp.starts_with("HTTP/1.1 201"), "Azurite refused to create container {name}: {resp}");
    }

    /// Every blob under `prefix` with its bytes, sorted by path (relative to the
    /// prefix), read straight from Azurite with object_store's own Azure client.
    pub fn files(&self, prefix: &str) -> Vec<(String, Vec<u8>)> {
        use futures::TryStreamExt;
        use object_store::{ObjectStore, ObjectStoreExt};
        let store = object_store::azure::MicrosoftAzureBuilder::new()
            .with_endpoint(format!("http://{}/{ACCOUNT}", self.addr))
            .with_allow_http(true)
            .with_account(ACCOUNT)
            .with_access_key(KEY)
            .with_container_name(CONTAINER)
            .build()
            .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let root = object_store::path::Path::from(prefix.trim_matches('/'));
        rt.block_on(async {
            let metas: Vec<_> = store.list(Some(&root)).try_collect().await.unwrap();
            let mut out = Vec::new();
            for m in metas {
                let bytes = store.get(&m.location).await.unwrap().bytes().await.unwrap();
                let rel = m.location.as_ref().strip_prefix(root.as_ref()).unwrap_or(m.location.as_ref()).trim_start_matches('/').to_string();
                out.push((rel, bytes.to_vec()));
            }
            out.sort();
            out
        })
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The current time as HTTP wants it, e.g. `Sun, 06 Dec 2026 12:00:00 GMT`.
fn httpdate() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let t = chrono::DateTime::from_timestamp(secs, 0).unwrap();
    t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let inner = Sha256::new().chain_update(block.map(|b| b ^ 0x36)).chain_update(msg).finalize();
    Sha256::new().chain_update(block.map(|b| b ^ 0x5c)).chain_update(inner).finalize().into()
}
