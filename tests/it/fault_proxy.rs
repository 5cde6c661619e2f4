//! A loopback HTTP proxy in front of a real storage server (Azurite, fake-gcs-server)
//! that fails chosen requests with the store's own error response instead of
//! forwarding them, and records every request it sees.
//!
//! The emulators have no fault injection of their own; the S3 test server injects
//! its faults inside the server ([`crate::s3_server::FaultPlan`]). Here the client
//! talks to the proxy, which forwards each request unchanged on a fresh connection to
//! the server, so a faulted request never reaches it and changes nothing there. A
//! faulted request's body is read to its end before the error is sent, so the client
//! gets a clean response, not a reset connection.

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Requests to fail: the next `times` whose method is `method` (or any, if empty) and
/// whose path and query contain `contains`.
#[derive(Clone, Debug)]
struct Rule {
    method: String,
    contains: String,
    times: usize,
    status: u16,
}

#[derive(Default)]
pub struct Plan {
    rules: Mutex<Vec<Rule>>,
    /// The requests failed on purpose.
    injected: Mutex<Vec<String>>,
}

impl Plan {
    fn take(&self, method: &str, target: &str) -> Option<u16> {
        let mut rules = self.rules.lock().unwrap();
        let rule = rules.iter_mut().find(|r| r.times > 0 && (r.method.is_empty() || r.method == method) && target.contains(&r.contains))?;
        rule.times -= 1;
        Some(rule.status)
    }
}

/// A running proxy. Stops when dropped.
pub struct FaultProxy {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    plan: Arc<Plan>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl FaultProxy {
    pub fn start(upstream: SocketAddr) -> FaultProxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("fault proxy: bind");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let listener = {
            let _guard = rt.enter();
            tokio::net::TcpListener::from_std(listener).unwrap()
        };
        let plan = Arc::new(Plan::default());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let served = plan.clone();
        let thread = std::thread::spawn(move || {
            rt.block_on(serve(listener, upstream, served, rx));
            rt.shutdown_timeout(Duration::from_secs(2));
        });
        FaultProxy { endpoint: format!("http://{addr}"), plan, shutdown: Some(tx), thread: Some(thread) }
    }

    /// Fails the next `times` requests of `method` (any, if empty) whose path and
    /// query contain `contains` with `status`; `usize::MAX` makes it permanent.
    pub fn fail_next(&self, method: &str, contains: &str, times: usize, status: u16) {
        self.plan.rules.lock().unwrap().push(Rule { method: method.into(), contains: contains.into(), times, status });
    }

    /// Lifts every rule.
    pub fn heal(&self) {
        self.plan.rules.lock().unwrap().clear();
    }

    pub fn injected(&self) -> Vec<String> {
        self.plan.injected.lock().unwrap().clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

type Body = BoxBody<Bytes, hyper::Error>;

async fn serve(listener: tokio::net::TcpListener, upstream: SocketAddr, plan: Arc<Plan>, mut shutdown: tokio::sync::oneshot::Receiver<()>) {
    let http = ConnBuilder::new(TokioExecutor::new());
    loop {
        tokio::select! {
            res = listener.accept() => {
                let Ok((socket, _)) = res else { continue };
                let plan = plan.clone();
                let service = hyper::service::service_fn(move |req| handle(req, upstream, plan.clone()));
                let conn = http.serve_connection(TokioIo::new(socket), service).into_owned();
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
            _ = &mut shutdown => break,
        }
    }
}

async fn handle(req: Request<Incoming>, upstream: SocketAddr, plan: Arc<Plan>) -> Result<Response<Body>, hyper::Error> {
    let target = format!("{} {}", req.method(), req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/"));
    if let Some(status) = plan.take(req.method().as_str(), &target) {
        plan.injected.lock().unwrap().push(target);
        // The body first: the client is still sending it.
        let _ = req.into_body().collect().await;
        let xml =
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>ServerBusy</Code><Message>The server is busy (injected by the test).</Message></Error>";
        let body = Full::new(Bytes::from(xml)).map_err(|never| match never {}).boxed();
        let resp = Response::builder().status(status).header("content-type", "application/xml").header("x-ms-error-code", "ServerBusy").body(body).unwrap();
        return Ok(resp);
    }
    let stream = match tokio::net::TcpStream::connect(upstream).await {
        Ok(s) => s,
        Err(e) => {
            let body = Full::new(Bytes::from(format!("fault proxy: upstream unreachable: {e}"))).map_err(|never| match never {}).boxed();
            return Ok(Response::builder().status(502).body(body).unwrap());
        }
    };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let resp = sender.send_request(req).await?;
    Ok(resp.map(|b| b.boxed()))
}
