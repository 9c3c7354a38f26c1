//! The one place errors become HTTP: gRPC-gateway style `{"code","message","details"}`
//! bodies with Fulcio's status codes and fixed client messages. 5xx bodies never carry
//! internal details; those go to the logs.

use crate::authority::{IssueError, KeyProblem};
use crate::ca::CaError;
use crate::identity::IdentityError;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use std::fmt;

pub(crate) const MSG_TOKEN: &str = "There was an error processing the identity token";
pub(crate) const MSG_KEY_UNPARSABLE: &str =
    "The public key supplied in the request could not be parsed";
pub(crate) const MSG_KEY_INSECURE: &str = "The public key supplied in the request is insecure";
pub(crate) const MSG_BAD_SIGNATURE: &str =
    "The signature supplied in the request could not be verified";
pub(crate) const MSG_CSR_UNPARSABLE: &str = "The certificate signing request could not be parsed";
pub(crate) const MSG_CA_BACKEND: &str = "error communicating with CA backend";
pub(crate) const MSG_CT: &str = "Error entering certificate in CTL";
pub(crate) const MSG_CA_CHAIN: &str = "The CA's certificate chain is not valid at this time; no certificate can be issued until the operator installs a valid one";

/// gRPC status codes used on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Code {
    InvalidArgument = 3,
    DeadlineExceeded = 4,
    NotFound = 5,
    PermissionDenied = 7,
    ResourceExhausted = 8,
    Unimplemented = 12,
    Internal = 13,
    Unavailable = 14,
}

/// An error response.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub code: Code,
    pub message: String,
    /// Seconds for a `Retry-After` header (429, 503).
    pub retry_after: Option<u64>,
}

#[derive(Serialize)]
struct Body<'a> {
    code: u8,
    message: &'a str,
    details: [(); 0],
}

impl ApiError {
    pub(crate) fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: Code::InvalidArgument,
            message: message.into(),
            retry_after: None,
        }
    }

    pub(crate) fn internal(message: &'static str) -> ApiError {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: Code::Internal,
            message: message.into(),
            retry_after: None,
        }
    }

    pub(crate) fn not_found() -> ApiError {
        ApiError {
            status: StatusCode::NOT_FOUND,
            code: Code::NotFound,
            message: "Not Found".into(),
            retry_after: None,
        }
    }

    pub(crate) fn method_not_allowed() -> ApiError {
        ApiError {
            status: StatusCode::NOT_IMPLEMENTED,
            code: Code::Unimplemented,
            message: "Method Not Allowed".into(),
            retry_after: None,
        }
    }

    pub(crate) fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: Code::Unavailable,
            message: message.into(),
            retry_after: None,
        }
    }

    pub(crate) fn too_many_requests(
        message: impl Into<String>,
        retry_after: std::time::Duration,
    ) -> ApiError {
        ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: Code::ResourceExhausted,
            message: message.into(),
            retry_after: Some(crate::ratelimit::retry_after_secs(retry_after)),
        }
    }

    /// 503 with gRPC code 4: brevis could not finish in time (not the client's fault).
    pub(crate) fn deadline_exceeded(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: Code::DeadlineExceeded,
            message: message.into(),
            retry_after: Some(1),
        }
    }

    pub(crate) fn request_timeout(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::REQUEST_TIMEOUT,
            code: Code::DeadlineExceeded,
            message: message.into(),
            retry_after: None,
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut resp = HttpResponse::build(self.status);
        if let Some(secs) = self.retry_after {
            resp.insert_header((actix_web::http::header::RETRY_AFTER, secs.to_string()));
        }
        resp.json(Body {
            code: self.code as u8,
            message: &self.message,
            details: [],
        })
    }
}

/// The exhaustive map from an issuance failure to what the client sees.
impl From<&IssueError> for ApiError {
    fn from(e: &IssueError) -> ApiError {
        match e {
            IssueError::Token(_) | IssueError::Identity(IdentityError::Claim(_)) => {
                ApiError::bad_request(MSG_TOKEN)
            }
            IssueError::Identity(IdentityError::Template(m)) => ApiError::bad_request(m),
            IssueError::Key(k) => match k {
                KeyProblem::Unparsable(_) => ApiError::bad_request(MSG_KEY_UNPARSABLE),
                KeyProblem::Insecure(_) => ApiError::bad_request(MSG_KEY_INSECURE),
                KeyProblem::Unsupported(_) => ApiError::bad_request(k.to_string()),
                KeyProblem::BadProof => ApiError::bad_request(MSG_BAD_SIGNATURE),
                KeyProblem::NotPermitted(..) => ApiError::bad_request(k.to_string()),
                KeyProblem::CsrUnparsable(_) => ApiError::bad_request(MSG_CSR_UNPARSABLE),
                KeyProblem::CsrAlgorithm(_) => ApiError::bad_request(k.to_string()),
            },
            // The operator's policy: the token was good, the identity is not allowed here.
            IssueError::Policy { refusal, .. } => ApiError {
                status: StatusCode::FORBIDDEN,
                code: Code::PermissionDenied,
                message: refusal.to_string(),
                retry_after: None,
            },
            IssueError::Ca(CaError::Template(m)) => ApiError::bad_request(m.to_string()),
            IssueError::Ca(CaError::ChainExpired { .. } | CaError::ChainNotYetValid { .. }) => {
                ApiError::unavailable(MSG_CA_CHAIN)
            }
            // A key in an HSM or a KMS that is down or slow: nothing was signed, retry.
            IssueError::Ca(CaError::Signer(s)) if s.is_transient() => ApiError {
                retry_after: Some(1),
                ..ApiError::unavailable(MSG_CA_BACKEND)
            },
            IssueError::Ca(_) => ApiError::internal(MSG_CA_BACKEND),
            IssueError::Ct(c) if c.is_transient() => ApiError {
                retry_after: Some(1),
                ..ApiError::unavailable(MSG_CT)
            },
            IssueError::Ct(_) => ApiError::internal(MSG_CT),
            IssueError::RateLimited { retry_after, .. } => ApiError::too_many_requests(
                format!(
                    "too many certificate requests for this identity; retry after {} seconds",
                    crate::ratelimit::retry_after_secs(*retry_after)
                ),
                *retry_after,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::signer::SignerError;

    #[test]
    fn a_signer_that_is_down_is_a_503_and_a_broken_one_a_500() {
        for (e, status, retry) in [
            (SignerError::Timeout, 503, Some(1)),
            (
                SignerError::Unavailable("KMS throttled".into()),
                503,
                Some(1),
            ),
            (SignerError::Failed, 500, None),
            (SignerError::BadSignature("short".into()), 500, None),
        ] {
            let api = ApiError::from(&IssueError::Ca(CaError::Signer(e.clone())));
            assert_eq!(api.status.as_u16(), status, "{e}");
            assert_eq!(api.retry_after, retry, "{e}");
            // The body never carries the backend's own words.
            assert_eq!(api.message, MSG_CA_BACKEND, "{e}");
        }
    }
}
