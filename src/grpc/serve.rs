//! The gRPC listener: HTTP/2 connections (prior-knowledge h2c, or TLS with ALPN `h2`)
//! served by hyper on a runtime of their own, requests routed by path to the CA service,
//! the health service or reflection; `grpc-timeout` honoured; go-grpc-prometheus metrics
//! with closed label sets; graceful shutdown (in-flight RPCs finish).

use super::proto::ca_server::CaServer;
use super::{CaService, Peer, SERVICE};
use crate::api::{AppState, MAX_BODY_BYTES};
use crate::metrics;
use crate::runtime::Dedicated;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tonic::codegen::Service;
use tonic::server::NamedService;

type HttpResponse = http::Response<tonic::body::Body>;

/// How the gRPC listener runs.
#[derive(Clone)]
pub struct GrpcOptions {
    /// TLS (ALPN `h2`); `None`: plaintext HTTP/2 with prior knowledge.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Longest the listener waits for in-flight RPCs at shutdown.
    pub shutdown_timeout: Duration,
}

impl std::fmt::Debug for GrpcOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcOptions")
            .field("tls", &self.tls.is_some())
            .field("shutdown_timeout", &self.shutdown_timeout)
            .finish()
    }
}

/// One generated service, callable with a request.
type Handler = Arc<
    dyn Fn(http::Request<Incoming>) -> std::pin::Pin<Box<dyn Future<Output = HttpResponse> + Send>>
        + Send
        + Sync,
>;

fn handler<S>(service: S) -> Handler
where
    S: Service<http::Request<Incoming>, Response = HttpResponse, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    Arc::new(move |req| {
        let mut s = service.clone();
        Box::pin(async move {
            match s.call(req).await {
                Ok(r) => r,
                Err(never) => match never {},
            }
        })
    })
}

/// Every service the listener serves.
#[derive(Clone)]
struct Routes {
    ca: Handler,
    health: Handler,
    reflection_v1: Handler,
    reflection_v1alpha: Handler,
}

/// (service, methods) the metrics name; anything else is `unknown`.
const KNOWN: &[(&str, &[&str])] = &[
    (
        SERVICE,
        &[
            "CreateSigningCertificate",
            "GetTrustBundle",
            "GetConfiguration",
        ],
    ),
    ("grpc.health.v1.Health", &["Check", "Watch"]),
    (
        "grpc.reflection.v1.ServerReflection",
        &["ServerReflectionInfo"],
    ),
    (
        "grpc.reflection.v1alpha.ServerReflection",
        &["ServerReflectionInfo"],
    ),
];

/// The metric labels of a request path: `(service, method, type)` from the closed set.
fn labels(path: &str) -> (&'static str, &'static str, &'static str) {
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    let (svc, method) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    for (s, methods) in KNOWN {
        if *s == svc
            && let Some(m) = methods.iter().find(|m| **m == method)
        {
            let kind = match *m {
                "Watch" => "server_stream",
                "ServerReflectionInfo" => "bidi_stream",
                _ => "unary",
            };
            return (s, m, kind);
        }
    }
    ("unknown", "unknown", "unknown")
}

/// gRPC code names as go-grpc-prometheus labels them.
fn code_name(code: i32) -> &'static str {
    match tonic::Code::from_i32(code) {
        tonic::Code::Ok => "OK",
        tonic::Code::Cancelled => "Canceled",
        tonic::Code::Unknown => "Unknown",
        tonic::Code::InvalidArgument => "InvalidArgument",
        tonic::Code::DeadlineExceeded => "DeadlineExceeded",
        tonic::Code::NotFound => "NotFound",
        tonic::Code::AlreadyExists => "AlreadyExists",
        tonic::Code::PermissionDenied => "PermissionDenied",
        tonic::Code::ResourceExhausted => "ResourceExhausted",
        tonic::Code::FailedPrecondition => "FailedPrecondition",
        tonic::Code::Aborted => "Aborted",
        tonic::Code::OutOfRange => "OutOfRange",
        tonic::Code::Unimplemented => "Unimplemented",
        tonic::Code::Internal => "Internal",
        tonic::Code::Unavailable => "Unavailable",
        tonic::Code::DataLoss => "DataLoss",
        tonic::Code::Unauthenticated => "Unauthenticated",
    }
}

/// `grpc-timeout`: digits and a unit (H, M, S, m, u, n).
fn grpc_timeout(headers: &http::HeaderMap) -> Option<Duration> {
    let v = headers.get("grpc-timeout")?.to_str().ok()?;
    if v.len() < 2 || v.len() > 9 {
        return None;
    }
    let (digits, unit) = v.split_at(v.len() - 1);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.checked_mul(3600)?),
        "M" => Duration::from_secs(n.checked_mul(60)?),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// Counts a call whose future is dropped before it answered: `DeadlineExceeded` when the
/// client's `grpc-timeout` had passed, `Canceled` otherwise.
struct Unfinished {
    labels: [&'static str; 3],
    started: Instant,
    deadline: Option<Duration>,
    done: bool,
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let elapsed = self.started.elapsed();
        let code = if self.deadline.is_some_and(|d| elapsed >= d) {
            "DeadlineExceeded"
        } else {
            "Canceled"
        };
        let [kind, service, method] = self.labels;
        metrics::GRPC_HANDLED
            .with_label_values(&[kind, service, method, code])
            .inc();
        metrics::GRPC_HANDLING_SECONDS
            .with_label_values(&[kind, service, method])
            .observe(elapsed.as_secs_f64());
    }
}

impl Routes {
    async fn dispatch(self, req: http::Request<Incoming>) -> Result<HttpResponse, Infallible> {
        let (service, method, kind) = labels(req.uri().path());
        metrics::GRPC_STARTED
            .with_label_values(&[kind, service, method])
            .inc();
        let started = Instant::now();
        let deadline = grpc_timeout(req.headers());
        // The same request id as REST: the client's x-request-id, or a new one; in every
        // log line of the call and echoed in the response headers.
        let id = crate::api::middleware::request_id_from(
            req.headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok()),
        );
        let span =
            tracing::info_span!("request", id = %id, method = "POST", path = %req.uri().path());
        // A call the client abandons (its own deadline, a reset) is dropped mid-way by
        // hyper: still counted, as gRPC servers count it.
        let mut unfinished = Unfinished {
            labels: [kind, service, method],
            started,
            deadline,
            done: false,
        };
        let call = tracing::Instrument::instrument(self.call(service, req), span);
        let response = match deadline {
            None => call.await,
            Some(d) => match tokio::time::timeout(d, call).await {
                Ok(r) => r,
                Err(_) => tonic::Status::deadline_exceeded(
                    "the deadline the client set passed before an answer",
                )
                .into_http(),
            },
        };
        // Unary answers and refusals carry their status in the headers (trailers-only);
        // streams report OK here and their status in trailers.
        let code = response
            .headers()
            .get("grpc-status")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        metrics::GRPC_HANDLED
            .with_label_values(&[kind, service, method, code_name(code)])
            .inc();
        let mut response = response;
        if let Ok(v) = http::HeaderValue::from_str(&id) {
            response.headers_mut().insert("x-request-id", v);
        }
        metrics::GRPC_HANDLING_SECONDS
            .with_label_values(&[kind, service, method])
            .observe(started.elapsed().as_secs_f64());
        unfinished.done = true;
        Ok(response)
    }

    async fn call(self, service: &str, req: http::Request<Incoming>) -> HttpResponse {
        let handler = match service {
            SERVICE => &self.ca,
            "grpc.health.v1.Health" => &self.health,
            "grpc.reflection.v1.ServerReflection" => &self.reflection_v1,
            "grpc.reflection.v1alpha.ServerReflection" => &self.reflection_v1alpha,
            _ => {
                return tonic::Status::unimplemented("no such service on this server").into_http();
            }
        };
        handler(req).await
    }
}

/// A connection the REST listener hands over: nothing read from it yet.
pub(crate) struct HandedOver {
    pub stream: std::net::TcpStream,
    pub peer: SocketAddr,
    /// The client is about to start TLS (its ClientHello offered only `h2`).
    pub tls: bool,
}

/// Where the REST listener hands over gRPC connections.
pub(crate) type Handoff = tokio::sync::mpsc::UnboundedSender<HandedOver>;
type Inbox = tokio::sync::mpsc::UnboundedReceiver<HandedOver>;

/// The gRPC side, not serving yet: a listener of its own (`--grpc-port`), connections
/// handed over by the REST listener (the shared port), or both.
pub struct GrpcListener {
    listener: Option<std::net::TcpListener>,
    inbox: Option<Inbox>,
    /// TLS for handed-over connections (the API's certificate, ALPN h2).
    shared_tls: Option<Arc<rustls::ServerConfig>>,
    options: GrpcOptions,
}

impl GrpcListener {
    /// Serves on `listener` when given; connections may also be handed over through
    /// [`GrpcListener::handoff`].
    pub fn new(listener: Option<std::net::TcpListener>, options: GrpcOptions) -> GrpcListener {
        GrpcListener {
            listener,
            inbox: None,
            shared_tls: None,
            options,
        }
    }

    /// The own listener's address, if it has one.
    pub fn local_addr(&self) -> Option<std::io::Result<SocketAddr>> {
        self.listener.as_ref().map(|l| l.local_addr())
    }

    /// A sender the REST listener hands gRPC connections to; `tls` finishes the handshake
    /// of those that start one.
    pub(crate) fn handoff(&mut self, tls: Option<Arc<rustls::ServerConfig>>) -> Handoff {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        self.inbox = Some(rx);
        self.shared_tls = tls;
        tx
    }

    /// Serves on a runtime of its own until `stop` is notified, then lets in-flight RPCs
    /// finish (at most `shutdown_timeout`). Returns when the runtime is running.
    pub(crate) fn start(
        self,
        state: Arc<AppState>,
        stop: Arc<tokio::sync::Notify>,
    ) -> std::io::Result<Running> {
        let runtime = Dedicated::new("brevis-grpc", 2)?;
        let (reporter, health) = tonic_health::server::health_reporter();
        let reflection = |b: tonic_reflection::server::Builder<'static>| {
            b.register_encoded_file_descriptor_set(super::proto::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        };
        let routes = Routes {
            ca: handler(
                CaServer::new(CaService::new(state.clone()))
                    .max_decoding_message_size(MAX_BODY_BYTES)
                    .max_encoding_message_size(MAX_BODY_BYTES),
            ),
            health: handler(health),
            reflection_v1: handler(
                reflection(tonic_reflection::server::Builder::configure())
                    .build_v1()
                    .map_err(std::io::Error::other)?,
            ),
            reflection_v1alpha: handler(
                reflection(tonic_reflection::server::Builder::configure())
                    .build_v1alpha()
                    .map_err(std::io::Error::other)?,
            ),
        };
        if let Some(l) = &self.listener {
            l.set_nonblocking(true)?;
        }
        let options = self.options;
        let listener = self.listener;
        let inbox = self.inbox;
        let shared_tls = self.shared_tls;
        let done = Arc::new(tokio::sync::Notify::new());
        let finished = done.clone();
        let readiness = state.readiness.clone();
        runtime.handle().spawn(async move {
            let listener = match listener.map(tokio::net::TcpListener::from_std).transpose() {
                Ok(l) => l,
                Err(e) => {
                    tracing::error!(error = %e, "the gRPC listener cannot start");
                    finished.notify_one();
                    return;
                }
            };
            // Known (and not serving) before the first connection; readiness decides next.
            reporter
                .set_service_status(
                    <CaServer<CaService> as NamedService>::NAME,
                    tonic_health::ServingStatus::NotServing,
                )
                .await;
            let health = tokio::spawn(report_health(reporter, readiness));
            accept_loop(listener, inbox, shared_tls, routes, options, stop).await;
            health.abort();
            finished.notify_one();
        });
        Ok(Running { runtime, done })
    }
}

/// A serving gRPC listener.
pub(crate) struct Running {
    runtime: Dedicated,
    done: Arc<tokio::sync::Notify>,
}

impl Running {
    /// Waits until the listener stopped and its connections drained.
    pub(crate) async fn stopped(self) {
        self.done.notified().await;
        drop(self.runtime);
    }
}

/// The health service follows readiness: `SERVING` while brevis can issue.
async fn report_health(
    reporter: tonic_health::server::HealthReporter,
    readiness: Arc<dyn Fn() -> Result<(), crate::api::NotReady> + Send + Sync>,
) {
    loop {
        let check = readiness.clone();
        let ready = tokio::task::spawn_blocking(move || check().is_ok())
            .await
            .unwrap_or(false);
        let status = if ready {
            tonic_health::ServingStatus::Serving
        } else {
            tonic_health::ServingStatus::NotServing
        };
        reporter.set_service_status("", status).await;
        reporter
            .set_service_status(<CaServer<CaService> as NamedService>::NAME, status)
            .await;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// The next connection of the own listener, or never without one.
async fn accept(
    listener: &Option<tokio::net::TcpListener>,
) -> std::io::Result<(tokio::net::TcpStream, SocketAddr)> {
    match listener {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

/// The next connection the REST listener handed over, or never.
async fn handed_over(inbox: &mut Option<Inbox>) -> Option<HandedOver> {
    match inbox {
        Some(rx) => match rx.recv().await {
            Some(c) => Some(c),
            None => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

async fn accept_loop(
    listener: Option<tokio::net::TcpListener>,
    mut inbox: Option<Inbox>,
    shared_tls: Option<Arc<rustls::ServerConfig>>,
    routes: Routes,
    options: GrpcOptions,
    stop: Arc<tokio::sync::Notify>,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let tls = options.tls.clone().map(tokio_rustls::TlsAcceptor::from);
    let shared_tls = shared_tls.map(tokio_rustls::TlsAcceptor::from);
    loop {
        let (stream, peer, tls) = tokio::select! {
            accepted = accept(&listener) => match accepted {
                Ok((s, p)) => (s, p, tls.as_ref()),
                Err(e) => {
                    tracing::warn!(error = %e, "gRPC accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            Some(h) = handed_over(&mut inbox) => match tokio::net::TcpStream::from_std(h.stream) {
                Ok(s) => (s, h.peer, if h.tls { shared_tls.as_ref() } else { None }),
                Err(e) => {
                    tracing::warn!(error = %e, "a handed-over gRPC connection failed");
                    continue;
                }
            },
            _ = stop.notified() => break,
        };
        let _ = stream.set_nodelay(true);
        let routes = routes.clone();
        let service = hyper::service::service_fn(move |mut req: http::Request<Incoming>| {
            req.extensions_mut().insert(Peer(peer));
            routes.clone().dispatch(req)
        });
        let builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
        match tls {
            None => {
                let conn = builder.serve_connection(TokioIo::new(stream), service);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "gRPC connection ended");
                    }
                });
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let stream = match tokio::time::timeout(
                        Duration::from_secs(10),
                        acceptor.accept(stream),
                    )
                    .await
                    {
                        Ok(Ok(s)) => s,
                        _ => return,
                    };
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    if let Err(e) = watcher.watch(conn).await {
                        tracing::debug!(error = %e, "gRPC connection ended");
                    }
                });
            }
        }
    }
    drop(listener);
    drop(inbox);
    if tokio::time::timeout(options.shutdown_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("gRPC connections still open after the shutdown timeout; closing them");
    }
}

/// The HTTP/2 connection preface a gRPC client (prior knowledge) opens with.
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Whether a new connection opens with the HTTP/2 preface, looking without consuming:
/// decided as soon as the bytes received differ from it (an HTTP/1 request differs by its
/// second byte at the latest), or when all 24 bytes match. A client that sends nothing
/// within `wait` is left to the HTTP/1 server's own timeouts.
pub(crate) async fn opens_with_h2_preface(stream: &tokio::net::TcpStream, wait: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + wait;
    let mut buf = [0u8; 24];
    loop {
        let n = match tokio::time::timeout_at(deadline, stream.peek(&mut buf)).await {
            Ok(Ok(n)) => n,
            _ => return false,
        };
        if n == 0 || buf[..n] != PREFACE[..n] {
            return false;
        }
        if n == PREFACE.len() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        // The rest of the preface is on its way.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Whether a TLS client's ClientHello offers `h2` and not `http/1.1` in ALPN (gRPC
/// clients offer only `h2`), looking without consuming. Anything that is not a readable
/// ClientHello within `wait` is left to the HTTP/1 server.
pub(crate) async fn offers_only_h2(stream: &tokio::net::TcpStream, wait: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + wait;
    let mut buf = vec![0u8; 5 + 16_384];
    loop {
        let n = match tokio::time::timeout_at(deadline, stream.peek(&mut buf)).await {
            Ok(Ok(n)) => n,
            _ => return false,
        };
        // A handshake record: type 22, then its length.
        if n == 0 || buf[0] != 22 {
            return false;
        }
        if n >= 5 {
            let len = 5 + usize::from(u16::from_be_bytes([buf[3], buf[4]]));
            if n >= len.min(buf.len()) {
                return match alpn_offer(&buf[5..len.min(n)]) {
                    Some(protocols) => {
                        protocols.iter().any(|p| p == b"h2")
                            && !protocols.iter().any(|p| p == b"http/1.1")
                    }
                    None => false,
                };
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// The ALPN protocol names a ClientHello handshake message offers (`None`: not a
/// ClientHello, or no ALPN extension).
fn alpn_offer(handshake: &[u8]) -> Option<Vec<Vec<u8>>> {
    struct Reader<'a>(&'a [u8]);
    impl<'a> Reader<'a> {
        fn take(&mut self, n: usize) -> Option<&'a [u8]> {
            if self.0.len() < n {
                return None;
            }
            let (a, b) = self.0.split_at(n);
            self.0 = b;
            Some(a)
        }
        fn u8(&mut self) -> Option<usize> {
            self.take(1).map(|b| usize::from(b[0]))
        }
        fn u16(&mut self) -> Option<usize> {
            self.take(2)
                .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
        }
        fn vec8(&mut self) -> Option<&'a [u8]> {
            let n = self.u8()?;
            self.take(n)
        }
        fn vec16(&mut self) -> Option<&'a [u8]> {
            let n = self.u16()?;
            self.take(n)
        }
    }
    let mut r = Reader(handshake);
    if r.u8()? != 1 {
        return None; // not a ClientHello
    }
    let len = r.take(3)?;
    let len = (usize::from(len[0]) << 16) | (usize::from(len[1]) << 8) | usize::from(len[2]);
    let mut r = Reader(r.take(len)?);
    r.take(2 + 32)?; // version, random
    r.vec8()?; // session id
    r.vec16()?; // cipher suites
    r.vec8()?; // compression methods
    let mut exts = Reader(r.vec16()?);
    while !exts.0.is_empty() {
        let kind = exts.u16()?;
        let data = exts.vec16()?;
        if kind == 16 {
            let mut list = Reader(Reader(data).vec16()?);
            let mut out = Vec::new();
            while !list.0.is_empty() {
                out.push(list.vec8()?.to_vec());
            }
            return Some(out);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ClientHello as rustls writes it, with the given ALPN offer.
    fn client_hello(alpn: &[&[u8]]) -> Vec<u8> {
        let roots = rustls::RootCertStore::empty();
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        let mut conn =
            rustls::ClientConnection::new(Arc::new(config), "localhost".try_into().unwrap())
                .unwrap();
        let mut out = Vec::new();
        conn.write_tls(&mut out).unwrap();
        out
    }

    #[test]
    fn alpn_offers_are_read_from_real_client_hellos() {
        let parse = |hello: &[u8]| alpn_offer(&hello[5..]);
        assert_eq!(parse(&client_hello(&[b"h2"])), Some(vec![b"h2".to_vec()]));
        assert_eq!(
            parse(&client_hello(&[b"h2", b"http/1.1"])),
            Some(vec![b"h2".to_vec(), b"http/1.1".to_vec()])
        );
        assert_eq!(parse(&client_hello(&[])), None);
        // Truncated or foreign bytes are not a ClientHello.
        let hello = client_hello(&[b"h2"]);
        assert_eq!(alpn_offer(&hello[5..40]), None);
        assert_eq!(alpn_offer(b"GET / HTTP/1.1"), None);
    }

    #[test]
    fn grpc_timeouts_parse_as_the_spec_says() {
        let t = |v: &str| {
            let mut h = http::HeaderMap::new();
            h.insert("grpc-timeout", v.parse().unwrap());
            grpc_timeout(&h)
        };
        assert_eq!(t("5S"), Some(Duration::from_secs(5)));
        assert_eq!(t("100m"), Some(Duration::from_millis(100)));
        assert_eq!(t("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(t("7x"), None);
        assert_eq!(t("S"), None);
        assert_eq!(t("123456789S"), None);
    }
}
