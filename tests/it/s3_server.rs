//! In-process S3-compatible server for integration tests.
//!
//! [`S3Server::start`] runs a real S3 server ([`s3s`] protocol layer over the
//! [`s3s_fs`] file-system backend) on `127.0.0.1:<random port>`, on its own
//! tokio runtime in a background thread, so it can be used from plain
//! synchronous `#[test]` functions. Requests must be SigV4-signed with the
//! server's fixed access/secret key (s3s `SimpleAuth`); path-style addressing
//! (object_store's default, `with_virtual_hosted_style_request(false)`).
//!
//! One bucket ([`S3Server::bucket`]) exists from the start: with `s3s-fs` a
//! bucket is just a directory under the temporary root, and an object is just
//! a file at `<root>/<bucket>/<key>`. Files written straight to
//! [`S3Server::object_path`] are served by GET/HEAD/LIST (the ETag is then
//! computed from the content).
//!
//! Everything is torn down when the [`S3Server`] is dropped: the accept loop
//! stops, open connections get up to 2 s to finish, the thread is joined and
//! the temporary directory is deleted.
//!
//! # Fault injection
//!
//! Every server has a [`FaultPlan`] ([`S3Server::faults`], an `Arc` the test
//! can keep). Rules make the next N matching requests fail with a real S3
//! error response (`503 SlowDown`, `503 ServiceUnavailable` or
//! `500 InternalError`, XML body as from AWS) instead of being executed:
//!
//! ```ignore
//! server.faults.fail_next("GET", 2, FaultKind::SlowDown);          // any GET (incl. LIST!)
//! server.faults.fail_next_op("PutObject", 1, FaultKind::InternalError);
//! server.faults.checked_add(FaultRule::new(FaultKind::SlowDown, 3).op("GetObject").key_contains("usage/")).unwrap();
//! ```
//!
//! Faults are injected through s3s's `S3Access` hook, i.e. *after* the SigV4
//! signature has been verified, so a faulted request is otherwise a valid one
//! and nothing is changed on disk. For operations that carry a request body
//! (`PutObject`, `UploadPart`, `CompleteMultipartUpload`, `DeleteObjects`) the
//! fault is applied in the per-operation hook, after the body has been read
//! (streaming bodies are drained first), so the client always receives the
//! error response cleanly instead of a connection reset caused by the server
//! closing a socket with unread request data. Every authenticated request is
//! also recorded ([`FaultPlan::requests`]) and every injected fault too
//! ([`FaultPlan::injected`]), so tests can assert on traffic.
//!
//! Note: object_store retries 5xx responses (default `RetryConfig`: up to 10
//! retries, exponential backoff from 100 ms), so "fail the next 2 GETs" should
//! be invisible to the client except for latency, while `usize::MAX` makes a
//! rule permanent.
//!
//! # Using it (self-check of the intended API)
//!
//! ```ignore
//! // tests/it/main.rs:   mod s3_server;
//! use crate::s3_server::{FaultKind, S3Server};
//!
//! #[test]
//! fn bill_run_reads_lake_from_s3() {
//!     let s3 = S3Server::start();
//!     // seed an object directly on disk (or through s3.object_store())
//!     std::fs::create_dir_all(s3.object_path("lake/usage").parent().unwrap()).unwrap();
//!     std::fs::write(s3.object_path("lake/usage/part-0.parquet"), b"...").unwrap();
//!
//!     s3.faults.fail_next_op("GetObject", 2, FaultKind::SlowDown);
//!
//!     let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_billrun"));
//!     s3.apply_env(&mut cmd); // drops inherited AWS_* vars, sets ours
//!     cmd.arg("--lake").arg(s3.url("lake"));
//!     let out = cmd.output().unwrap();
//!     assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
//!     assert_eq!(s3.faults.injected().len(), 2);
//!     assert!(s3.object_path("out/invoices.parquet").exists());
//! }
//! ```

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use futures::StreamExt;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use hyper_util::server::graceful::GracefulShutdown;
use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::SimpleAuth;
use s3s::dto::{CompleteMultipartUploadInput, DeleteObjectsInput, PutObjectInput, StreamingBlob, UploadPartInput};
use s3s::path::S3Path;
use s3s::service::{S3Service, S3ServiceBuilder};
use s3s::{S3Error, S3ErrorCode, S3Request, S3Result};

/// Fixed credentials; the server accepts only requests signed with these.
pub const ACCESS_KEY: &str = "billrun-test-access-key";
pub const SECRET_KEY: &str = "billrun-test-secret-key";
pub const REGION: &str = "us-east-1";
pub const BUCKET: &str = "billrun-test";

/// A running in-process S3 server. Stops when dropped.
pub struct S3Server {
    /// `http://127.0.0.1:<port>` (no trailing slash).
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    pub access_key: String,
    pub secret_key: String,
    /// Fault injection + request log; clone the `Arc` freely.
    pub faults: Arc<FaultPlan>,
    /// Root of the s3s-fs store; the bucket is the directory `root/<bucket>`.
    root: tempfile::TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl S3Server {
    /// Start a server with an empty fault plan. Panics on setup failure.
    pub fn start() -> S3Server {
        Self::start_with_faults(Arc::new(FaultPlan::default()))
    }

    /// Start a server using the given (possibly pre-armed) fault plan.
    pub fn start_with_faults(faults: Arc<FaultPlan>) -> S3Server {
        let root = tempfile::Builder::new().prefix("billrun-s3-").tempdir().expect("s3 test server: create temp root");
        std::fs::create_dir(root.path().join(BUCKET)).expect("s3 test server: create bucket dir");

        let fs = s3s_fs::FileSystem::new(root.path()).expect("s3 test server: init s3s-fs");
        let service = {
            let mut b = S3ServiceBuilder::new(fs);
            b.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
            b.set_access(FaultAccess { plan: Arc::clone(&faults) });
            b.build()
        };

        // Bind synchronously so the port is known (and the socket is already
        // listening, i.e. connections queue up) before `start` returns.
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("s3 test server: bind 127.0.0.1:0");
        std_listener.set_nonblocking(true).expect("s3 test server: set_nonblocking");
        let addr = std_listener.local_addr().expect("s3 test server: local_addr");

        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("s3 test server: build tokio runtime");
        let listener = {
            let _guard = rt.enter();
            tokio::net::TcpListener::from_std(std_listener).expect("s3 test server: register listener with tokio")
        };

        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("s3-test-server-{}", addr.port()))
            .spawn(move || {
                rt.block_on(serve(listener, service, rx));
                rt.shutdown_timeout(Duration::from_secs(2));
            })
            .expect("s3 test server: spawn thread");

        S3Server {
            endpoint: format!("http://{addr}"),
            bucket: BUCKET.to_owned(),
            region: REGION.to_owned(),
            access_key: ACCESS_KEY.to_owned(),
            secret_key: SECRET_KEY.to_owned(),
            faults,
            root,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    /// Environment a child `billrun` process needs to reach this server
    /// (read by `AmazonS3Builder::from_env()`).
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
            ("AWS_REGION", self.region.as_str()),
            ("AWS_ACCESS_KEY_ID", self.access_key.as_str()),
            ("AWS_SECRET_ACCESS_KEY", self.secret_key.as_str()),
            ("AWS_ALLOW_HTTP", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    /// Remove every `AWS_*` variable the child would inherit from the test
    /// process (a developer's `AWS_SESSION_TOKEN`, `AWS_ENDPOINT_URL_S3`,
    /// `AWS_PROFILE`, ... would otherwise leak into object_store's config),
    /// then set [`S3Server::env`].
    pub fn apply_env<'a>(&self, cmd: &'a mut std::process::Command) -> &'a mut std::process::Command {
        for (key, _) in std::env::vars_os() {
            if key.to_str().is_some_and(|k| k.starts_with("AWS_")) {
                cmd.env_remove(&key);
            }
        }
        cmd.envs(self.env())
    }

    /// `s3://<bucket>/<path>` (or `s3://<bucket>` for an empty path).
    pub fn url(&self, path: &str) -> String {
        let path = path.trim_start_matches('/');
        if path.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{}", self.bucket, path)
        }
    }

    /// Root directory of the file-system store (contains the bucket
    /// directory plus s3s-fs's hidden `.bucket-*` metadata files).
    pub fn root(&self) -> &std::path::Path {
        self.root.path()
    }

    /// Directory backing the bucket.
    pub fn bucket_dir(&self) -> PathBuf {
        self.root.path().join(&self.bucket)
    }

    /// File backing object `key` (which may not exist). Keys use `/`.
    pub fn object_path(&self, key: &str) -> PathBuf {
        let mut p = self.bucket_dir();
        p.extend(key.split('/').filter(|s| !s.is_empty()));
        p
    }

    /// An object_store client for this server's bucket (for seeding or
    /// inspecting from the test itself; needs a tokio runtime to `.await`).
    pub fn object_store(&self) -> object_store::aws::AmazonS3 {
        object_store::aws::AmazonS3Builder::new()
            .with_endpoint(&self.endpoint)
            .with_region(&self.region)
            .with_bucket_name(&self.bucket)
            .with_access_key_id(&self.access_key)
            .with_secret_access_key(&self.secret_key)
            .with_allow_http(true)
            .with_virtual_hosted_style_request(false)
            .build()
            .expect("s3 test server: build object_store client")
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            // Never panic in drop (could abort during unwinding); a panicked
            // server thread has already printed its message.
            let _ = thread.join();
        }
        // `root` (TempDir) is dropped after this, deleting the store.
    }
}

async fn serve(listener: tokio::net::TcpListener, service: S3Service, mut shutdown: tokio::sync::oneshot::Receiver<()>) {
    let http = ConnBuilder::new(TokioExecutor::new());
    let graceful = GracefulShutdown::new();

    loop {
        tokio::select! {
            res = listener.accept() => match res {
                Ok((socket, _peer)) => {
                    let conn = http.serve_connection(TokioIo::new(socket), service.clone());
                    let conn = graceful.watch(conn.into_owned());
                    tokio::spawn(async move {
                        let _ = conn.await;
                    });
                }
                Err(err) => {
                    // e.g. EMFILE; back off a little instead of spinning.
                    eprintln!("s3 test server: accept error: {err}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            // Fires on explicit shutdown and also if the sender is dropped.
            _ = &mut shutdown => break,
        }
    }

    drop(listener);
    let _ = tokio::time::timeout(Duration::from_secs(2), graceful.shutdown()).await;
}

// ---------------------------------------------------------------------------
// Fault injection
// ---------------------------------------------------------------------------

/// The error a faulted request gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// `503 SlowDown` (S3 throttling).
    SlowDown,
    /// `503 ServiceUnavailable`.
    ServiceUnavailable,
    /// `500 InternalError`.
    InternalError,
}

impl FaultKind {
    pub fn status(self) -> u16 {
        match self {
            FaultKind::SlowDown | FaultKind::ServiceUnavailable => 503,
            FaultKind::InternalError => 500,
        }
    }

    fn to_s3_error(self, op: &str) -> S3Error {
        let code = match self {
            FaultKind::SlowDown => S3ErrorCode::SlowDown,
            FaultKind::ServiceUnavailable => S3ErrorCode::ServiceUnavailable,
            FaultKind::InternalError => S3ErrorCode::InternalError,
        };
        S3Error::with_message(code, format!("injected fault ({op})"))
    }
}

/// Which requests a rule applies to and how many times. All set filters must
/// match; unset filters match anything.
#[derive(Clone, Debug)]
pub struct FaultRule {
    /// HTTP method, case-insensitive: "GET", "PUT", "HEAD", "POST", "DELETE".
    pub method: Option<String>,
    /// s3s operation name, e.g. "GetObject", "HeadObject", "PutObject",
    /// "ListObjectsV2", "DeleteObject", "DeleteObjects", "CopyObject",
    /// "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload",
    /// "AbortMultipartUpload".
    pub op: Option<String>,
    /// Substring of the object key (requests without a key never match).
    pub key_contains: Option<String>,
    /// How many more requests this rule will fail (`usize::MAX` = forever).
    pub remaining: usize,
    pub kind: FaultKind,
}

impl FaultRule {
    pub fn new(kind: FaultKind, times: usize) -> FaultRule {
        FaultRule { method: None, op: None, key_contains: None, remaining: times, kind }
    }

    pub fn method(mut self, method: &str) -> FaultRule {
        self.method = Some(method.to_owned());
        self
    }

    pub fn op(mut self, op: &str) -> FaultRule {
        self.op = Some(op.to_owned());
        self
    }

    pub fn key_contains(mut self, needle: &str) -> FaultRule {
        self.key_contains = Some(needle.to_owned());
        self
    }

    fn matches(&self, method: &str, op: &str, key: Option<&str>) -> bool {
        self.remaining > 0
            && self.method.as_deref().is_none_or(|m| m.eq_ignore_ascii_case(method))
            && self.op.as_deref().is_none_or(|o| o == op)
            && self.key_contains.as_deref().is_none_or(|needle| key.is_some_and(|k| k.contains(needle)))
    }
}

/// One authenticated request seen by the server (or one injected fault).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRecord {
    pub method: String,
    /// s3s operation name, e.g. "GetObject".
    pub op: String,
    pub key: Option<String>,
    /// `Some` only in [`FaultPlan::injected`].
    pub fault: Option<FaultKind>,
}

/// Shared, mutable fault configuration + request log.
#[derive(Debug, Default)]
pub struct FaultPlan {
    state: Mutex<FaultState>,
}

#[derive(Debug, Default)]
struct FaultState {
    rules: Vec<FaultRule>,
    requests: Vec<RequestRecord>,
    injected: Vec<RequestRecord>,
}

impl FaultPlan {
    pub fn new() -> Arc<FaultPlan> {
        Arc::new(FaultPlan::default())
    }

    /// The next `n` requests with this HTTP method fail with `kind`.
    /// Careful: "GET" also matches ListObjectsV2; use [`Self::fail_next_op`]
    /// with "GetObject" to target object reads only.
    pub fn fail_next(&self, method: &str, n: usize, kind: FaultKind) {
        self.add(FaultRule::new(kind, n).method(method));
    }

    /// The next `n` requests of this s3s operation fail with `kind`.
    pub fn fail_next_op(&self, op: &str, n: usize, kind: FaultKind) {
        self.add(FaultRule::new(kind, n).op(op));
    }

    /// Append a rule. Rules are consulted in insertion order; the first one
    /// that matches (and has `remaining > 0`) is consumed.
    pub fn add(&self, rule: FaultRule) {
        self.lock().rules.push(rule);
    }

    /// Remove all rules (the logs are kept).
    pub fn clear(&self) {
        self.lock().rules.clear();
    }

    /// Faults still armed (saturating sum of `remaining`).
    pub fn pending(&self) -> usize {
        self.lock().rules.iter().fold(0usize, |acc, r| acc.saturating_add(r.remaining))
    }

    /// Every authenticated request that reached routing, in arrival order
    /// (including the faulted ones).
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.lock().requests.clone()
    }

    /// Every injected fault, in order.
    pub fn injected(&self) -> Vec<RequestRecord> {
        self.lock().injected.clone()
    }

    fn lock(&self) -> MutexGuard<'_, FaultState> {
        // A panicking test thread must not poison the server for others.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn record(&self, method: &str, op: &str, key: Option<&str>) {
        self.lock().requests.push(RequestRecord { method: method.to_owned(), op: op.to_owned(), key: key.map(str::to_owned), fault: None });
    }

    /// Consume one matching fault, if any.
    fn take(&self, method: &str, op: &str, key: Option<&str>) -> Option<FaultKind> {
        let mut st = self.lock();
        let rule = st.rules.iter_mut().find(|r| r.matches(method, op, key))?;
        if rule.remaining != usize::MAX {
            rule.remaining -= 1;
        }
        let kind = rule.kind;
        st.injected.push(RequestRecord { method: method.to_owned(), op: op.to_owned(), key: key.map(str::to_owned), fault: Some(kind) });
        Some(kind)
    }
}

/// Operations with a request body: their fault is injected in the
/// per-operation access hook (after the body was read / drained) rather than
/// in `check` (which runs before the body is touched).
const BODY_OPS: &[&str] = &["PutObject", "UploadPart", "CompleteMultipartUpload", "DeleteObjects"];

/// s3s access hook: enforces "signed requests only" (what s3s does by default
/// when no access hook is set), records requests, injects faults.
struct FaultAccess {
    plan: Arc<FaultPlan>,
}

impl FaultAccess {
    async fn fail_with_body(&self, method: &str, op: &str, key: Option<&str>, body: &mut Option<StreamingBlob>) -> S3Result<()> {
        match self.plan.take(method, op, key) {
            None => Ok(()),
            Some(kind) => {
                if let Some(mut stream) = body.take() {
                    while let Some(chunk) = stream.next().await {
                        if chunk.is_err() {
                            break;
                        }
                    }
                }
                Err(kind.to_s3_error(op))
            }
        }
    }
}

#[async_trait::async_trait]
impl S3Access for FaultAccess {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        if cx.credentials().is_none() {
            return Err(S3Error::with_message(S3ErrorCode::AccessDenied, "Signature is required"));
        }
        let method = cx.method().as_str().to_owned();
        let op: String = cx.s3_op().name().to_owned();
        let key: Option<String> = match cx.s3_path() {
            S3Path::Object { key, .. } => Some(key.to_string()),
            _ => None,
        };
        self.plan.record(&method, &op, key.as_deref());
        if BODY_OPS.contains(&op.as_str()) {
            return Ok(());
        }
        match self.plan.take(&method, &op, key.as_deref()) {
            Some(kind) => Err(kind.to_s3_error(&op)),
            None => Ok(()),
        }
    }

    async fn put_object(&self, req: &mut S3Request<PutObjectInput>) -> S3Result<()> {
        let method = req.method.as_str().to_owned();
        let key = req.input.key.clone();
        self.fail_with_body(&method, "PutObject", Some(key.as_str()), &mut req.input.body).await
    }

    async fn upload_part(&self, req: &mut S3Request<UploadPartInput>) -> S3Result<()> {
        let method = req.method.as_str().to_owned();
        let key = req.input.key.clone();
        self.fail_with_body(&method, "UploadPart", Some(key.as_str()), &mut req.input.body).await
    }

    async fn complete_multipart_upload(&self, req: &mut S3Request<CompleteMultipartUploadInput>) -> S3Result<()> {
        // The XML body has already been read in full at this point.
        let method = req.method.as_str().to_owned();
        let key = req.input.key.clone();
        self.fail_with_body(&method, "CompleteMultipartUpload", Some(key.as_str()), &mut None).await
    }

    async fn delete_objects(&self, req: &mut S3Request<DeleteObjectsInput>) -> S3Result<()> {
        // The XML body has already been read in full at this point.
        let method = req.method.as_str().to_owned();
        self.fail_with_body(&method, "DeleteObjects", None, &mut None).await
    }
}
