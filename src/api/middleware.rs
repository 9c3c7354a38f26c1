//! Per-request plumbing on the main listener: request ids (echoed in `X-Request-Id`),
//! Fulcio's HTTP metrics, permissive CORS, and a tracing span per request.

use crate::metrics;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpResponse};
use std::time::Instant;
use tracing::Instrument;

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

fn request_id(req: &ServiceRequest) -> String {
    request_id_from(req.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()))
}

/// The request id: the client's `X-Request-Id` when it is a sane token, else a new
/// random one (REST and gRPC alike).
pub(crate) fn request_id_from(given: Option<&str>) -> String {
    given
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 128
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        })
        .map(str::to_string)
        .unwrap_or_else(|| {
            let mut b = [0u8; 12];
            let _ = aws_lc_rs::rand::fill(&mut b);
            hex::encode(b)
        })
}

/// The `method` label: the lower-case name of a standard method, `other` for any other
/// token. A label value must come from a closed set: the method is chosen by the client,
/// and each new value would be a new series kept for the life of the process.
pub(crate) fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "get",
        Method::POST => "post",
        Method::PUT => "put",
        Method::DELETE => "delete",
        Method::HEAD => "head",
        Method::OPTIONS => "options",
        Method::PATCH => "patch",
        Method::CONNECT => "connect",
        Method::TRACE => "trace",
        _ => "other",
    }
}

/// Wraps every request of the main listener.
pub(crate) async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let start = Instant::now();
    let id = request_id(&req);
    let method = method_label(req.method());
    let has_origin = req.headers().contains_key(header::ORIGIN);
    let span = tracing::info_span!("request", id = %id, method = %req.method(), path = %req.path());

    let mut res = if req.method() == actix_web::http::Method::OPTIONS && has_origin {
        // CORS pre-flight: answer directly.
        let resp = HttpResponse::Ok()
            .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST, HEAD"))
            .insert_header((
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                "Origin, Accept, Content-Type, X-Requested-With, Authorization",
            ))
            .finish();
        req.into_response(resp).map_into_right_body()
    } else {
        next.call(req)
            .instrument(span.clone())
            .await?
            .map_into_left_body()
    };

    let status = res.status().as_u16();
    let status_code = res.status();
    let code = status_code.as_str();
    metrics::HTTP_REQUESTS
        .with_label_values(&[code, method])
        .inc();
    metrics::API_LATENCY
        .with_label_values(&[code, method])
        .observe(start.elapsed().as_secs_f64());
    let headers = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&id) {
        headers.insert(REQUEST_ID.clone(), v);
    }
    if has_origin {
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
    }
    span.in_scope(|| {
        tracing::debug!(
            status,
            elapsed_ms = start.elapsed().as_secs_f64() * 1000.0,
            "request done"
        );
    });
    Ok(res)
}
