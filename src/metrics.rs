//! Prometheus metrics. Each component's metrics are declared here in one place so their
//! names and label sets stay designed; every label comes from a closed set (configured
//! issuer URLs or patterns, fixed reason codes, fixed operation names).
//!
//! Fulcio's names are kept (`fulcio_new_certs`, `fulcio_api_latency`,
//! `http_requests_total`) so existing dashboards and alerts work unchanged.

use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};
use std::sync::LazyLock;

pub(crate) static REGISTRY: LazyLock<Registry> = LazyLock::new(|| {
    let r = Registry::new();
    #[cfg(target_os = "linux")]
    {
        let pc = prometheus::process_collector::ProcessCollector::for_self();
        let _ = r.register(Box::new(pc));
    }
    r
});

fn register<C: prometheus::core::Collector + Clone + 'static>(c: C) -> C {
    // Registration only fails on a duplicate name, which is a programming error caught by
    // the metrics test; the metric still works unregistered.
    let _ = REGISTRY.register(Box::new(c.clone()));
    c
}

fn counter_vec(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    register(IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric definition"))
}

fn histogram_vec(name: &str, help: &str, labels: &[&str], buckets: Vec<f64>) -> HistogramVec {
    register(
        HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels)
            .expect("valid metric definition"),
    )
}

fn latency_buckets() -> Vec<f64> {
    vec![
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ]
}

// ---- Fulcio-compatible -------------------------------------------------------------------

pub(crate) static NEW_CERTS: LazyLock<IntCounter> = LazyLock::new(|| {
    register(
        IntCounter::new("fulcio_new_certs", "Number of certificates issued")
            .expect("valid metric definition"),
    )
});

pub(crate) static API_LATENCY: LazyLock<HistogramVec> = LazyLock::new(|| {
    histogram_vec(
        "fulcio_api_latency",
        "API latency in seconds, by HTTP status code and lower-case method",
        &["code", "method"],
        prometheus::DEFAULT_BUCKETS.to_vec(),
    )
});

pub(crate) static HTTP_REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "http_requests_total",
        "HTTP requests by status code and lower-case method",
        &["code", "method"],
    )
});

pub(crate) static BUILD_INFO: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register(
        IntGaugeVec::new(
            Opts::new("brevis_build_info", "Build metadata (always 1)"),
            &["version", "rustc"],
        )
        .expect("valid metric definition"),
    )
});

// ---- Issuance ----------------------------------------------------------------------------

pub(crate) static CERTS_ISSUED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "brevis_certificates_issued_total",
        "Certificates issued, by configured issuer (URL or meta pattern) and issuer type",
        &["issuer", "type"],
    )
});

pub(crate) static REJECTIONS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "brevis_rejections_total",
        "Signing requests refused, by reason code",
        &["reason"],
    )
});

pub(crate) static SIGNER_DURATION: LazyLock<HistogramVec> = LazyLock::new(|| {
    histogram_vec(
        "brevis_signer_duration_seconds",
        "Time spent in the CA signer, by operation (precertificate, certificate)",
        &["operation"],
        vec![
            0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.1, 1.0,
        ],
    )
});

pub(crate) static SIGNER_OPERATIONS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "brevis_signer_operations_total",
        "Signatures by key role (ca, ctlog), backend (memory, pkcs11, awskms) and outcome (ok, error, timeout)",
        &["key", "backend", "outcome"],
    )
});

pub(crate) static SIGNER_LATENCY: LazyLock<HistogramVec> = LazyLock::new(|| {
    histogram_vec(
        "brevis_signer_latency_seconds",
        "Time one signing call took, by key role and backend (a batch of SCTs counts as one call)",
        &["key", "backend"],
        vec![
            0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
            0.5, 1.0, 2.5, 5.0,
        ],
    )
});

pub(crate) static CA_SELF_TESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "brevis_ca_self_tests_total",
        "Signatures the CA key made to test itself (readiness, at most one per 5 s), by outcome",
        &["outcome"],
    )
});

// ---- gRPC (go-grpc-prometheus names, as Fulcio exports them) -------------------------

/// Labels of the gRPC metrics: type, service and method come from a closed list.
const GRPC_LABELS: [&str; 3] = ["grpc_type", "grpc_service", "grpc_method"];

pub(crate) static GRPC_STARTED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "grpc_server_started_total",
        "Total number of RPCs started on the server",
        &GRPC_LABELS,
    )
});

pub(crate) static GRPC_HANDLED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "grpc_server_handled_total",
        "Total number of RPCs completed on the server, regardless of success or failure",
        &["grpc_type", "grpc_service", "grpc_method", "grpc_code"],
    )
});

pub(crate) static GRPC_HANDLING_SECONDS: LazyLock<HistogramVec> = LazyLock::new(|| {
    histogram_vec(
        "grpc_server_handling_seconds",
        "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server",
        &GRPC_LABELS,
        vec![
            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ],
    )
});

pub(crate) static CA_SWITCHES: LazyLock<IntCounter> = LazyLock::new(|| {
    register(
        IntCounter::new(
            "brevis_ca_switches_total",
            "Times issuance moved to a staged CA (--next-ca-chain at --ca-switch-at)",
        )
        .expect("valid metric definition"),
    )
});

pub(crate) static ISSUANCE_PHASE: LazyLock<HistogramVec> = LazyLock::new(|| {
    histogram_vec(
        "brevis_issuance_phase_duration_seconds",
        "Time spent in each phase of an issuance (authenticate, identify, prove, prepare, log, issue)",
        &["phase"],
        latency_buckets(),
    )
});

// ---- OIDC --------------------------------------------------------------------------------

pub(crate) static OIDC_FETCHES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "brevis_oidc_fetches_total",
        "OIDC discovery and JWKS fetches, by configured issuer, document and outcome",
        &["issuer", "document", "outcome"],
    )
});

pub(crate) static OIDC_FETCH_DURATION: LazyLock<HistogramVec> = LazyLock::new(|| {
    histogram_vec(
        "brevis_oidc_fetch_duration_seconds",
        "Latency of OIDC discovery and JWKS fetches",
        &["issuer", "document"],
        latency_buckets(),
    )
});

// ---- CT submission -----------------------------------------------------------------------

pub(crate) static CT_SUBMISSIONS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "brevis_ct_submissions_total",
        "Submissions to the CT log, by log (embedded or remote) and outcome",
        &["log", "outcome"],
    )
});

pub(crate) static CT_SUBMISSION_DURATION: LazyLock<HistogramVec> = LazyLock::new(|| {
    histogram_vec(
        "brevis_ct_submission_duration_seconds",
        "Latency of CT log submissions, SCT verification included",
        &["log"],
        latency_buckets(),
    )
});

// ---- Embedded CT log ---------------------------------------------------------------------

pub(crate) static CTLOG_TREE_SIZE: LazyLock<IntGauge> = LazyLock::new(|| {
    register(
        IntGauge::new(
            "brevis_ctlog_tree_size",
            "Entries in the embedded CT log's tree",
        )
        .expect("valid metric definition"),
    )
});

pub(crate) static CTLOG_CHECKPOINT_TIMESTAMP: LazyLock<Gauge> = LazyLock::new(|| {
    register(
        Gauge::new(
            "brevis_ctlog_checkpoint_timestamp_seconds",
            "Unix time of the latest signed checkpoint (alert on time() minus this)",
        )
        .expect("valid metric definition"),
    )
});

pub(crate) static CTLOG_BATCH_SIZE: LazyLock<Histogram> = LazyLock::new(|| {
    register(
        Histogram::with_opts(
            HistogramOpts::new("brevis_ctlog_batch_size", "Entries per committed batch").buckets(
                vec![
                    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 4096.0,
                ],
            ),
        )
        .expect("valid metric definition"),
    )
});

pub(crate) static CTLOG_COMMIT_DURATION: LazyLock<Histogram> = LazyLock::new(|| {
    register(
        Histogram::with_opts(
            HistogramOpts::new(
                "brevis_ctlog_commit_duration_seconds",
                "Time to sequence, sign and durably commit one batch",
            )
            .buckets(latency_buckets()),
        )
        .expect("valid metric definition"),
    )
});

pub(crate) static CTLOG_COMMIT_FAILURES: LazyLock<IntCounter> = LazyLock::new(|| {
    register(
        IntCounter::new(
            "brevis_ctlog_commit_failures_total",
            "Batches whose commit failed (no SCT was issued for them)",
        )
        .expect("valid metric definition"),
    )
});

pub(crate) static CTLOG_SUBMISSIONS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "brevis_ctlog_submissions_total",
        "Submissions received by the embedded log, by entry type and outcome",
        &["entry_type", "outcome"],
    )
});

pub(crate) static CTLOG_REJECTIONS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "brevis_ctlog_rejections_total",
        "Submissions the embedded log refused, by entry type and reason",
        &["entry_type", "reason"],
    )
});

pub(crate) static CTLOG_HTTP_REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "brevis_ctlog_http_requests_total",
        "Requests to the CT log's listener, by route pattern (unmatched for unknown paths), lower-case method (other for non-standard ones) and status code",
        &["route", "method", "code"],
    )
});

// ---- Configuration -----------------------------------------------------------------------

pub(crate) static CONFIG_RELOADS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "brevis_config_reloads_total",
        "Reloads of the identity config, CA files and TLS certificate, by component and outcome (success, failure)",
        &["component", "outcome"],
    )
});

pub(crate) static CONFIG_LAST_RELOAD: LazyLock<GaugeVec> = LazyLock::new(|| {
    register(
        GaugeVec::new(
            Opts::new(
                "brevis_config_last_reload_success_timestamp_seconds",
                "Unix time of the last successful reload, by component",
            ),
            &["component"],
        )
        .expect("valid metric definition"),
    )
});

/// When something brevis depends on stops being valid, by object: `ca_chain` (the
/// earliest notAfter of the issuing chain), `tls_certificate` (the API listener's).
pub(crate) static EXPIRY: LazyLock<GaugeVec> = LazyLock::new(|| {
    register(
        GaugeVec::new(
            Opts::new(
                "brevis_expiry_timestamp_seconds",
                "Unix time at which a certificate brevis depends on expires, by object (ca_chain, tls_certificate); alert on this minus time()",
            ),
            &["object"],
        )
        .expect("valid metric definition"),
    )
});

// ---- Serving -----------------------------------------------------------------------------

pub(crate) static READY: LazyLock<IntGauge> = LazyLock::new(|| {
    register(
        IntGauge::new(
            "brevis_ready",
            "1 while /readyz answers 200, 0 while it answers 503 (updated on each probe and on shutdown)",
        )
        .expect("valid metric definition"),
    )
});

pub(crate) static CTLOG_PENDING: LazyLock<IntGauge> = LazyLock::new(|| {
    register(
        IntGauge::new(
            "brevis_ctlog_pending_submissions",
            "Submissions waiting in the embedded log's queue for their batch to commit",
        )
        .expect("valid metric definition"),
    )
});

pub(crate) static CTLOG_UNINDEXED: LazyLock<IntGauge> = LazyLock::new(|| {
    register(
        IntGauge::new(
            "brevis_ctlog_unindexed_entries",
            "Entries of the embedded log found by hash from memory, not yet in its lookup table",
        )
        .expect("valid metric definition"),
    )
});

/// `brevis_ctlog_lookup_write_failures_total`: failed writes of the embedded log's lookup rows
/// after a commit (no SCT is affected; retried after the next batch).
pub static CTLOG_LOOKUP_WRITE_FAILURES: LazyLock<IntCounter> = LazyLock::new(|| {
    register(
        IntCounter::new(
            "brevis_ctlog_lookup_write_failures_total",
            "Failed writes of the embedded log's lookup table (retried after the next batch)",
        )
        .expect("valid metric definition"),
    )
});

/// Touches every metric so it appears in the exposition before its first event.
pub(crate) fn init() {
    LazyLock::force(&NEW_CERTS);
    LazyLock::force(&API_LATENCY);
    LazyLock::force(&HTTP_REQUESTS);
    BUILD_INFO
        .with_label_values(&[
            env!("CARGO_PKG_VERSION"),
            option_env!("BREVIS_RUSTC").unwrap_or("unknown"),
        ])
        .set(1);
    LazyLock::force(&CERTS_ISSUED);
    LazyLock::force(&REJECTIONS);
    LazyLock::force(&SIGNER_DURATION);
    LazyLock::force(&CA_SELF_TESTS);
    LazyLock::force(&CA_SWITCHES);
    LazyLock::force(&GRPC_STARTED);
    LazyLock::force(&GRPC_HANDLED);
    LazyLock::force(&GRPC_HANDLING_SECONDS);
    LazyLock::force(&SIGNER_OPERATIONS);
    LazyLock::force(&SIGNER_LATENCY);
    LazyLock::force(&ISSUANCE_PHASE);
    LazyLock::force(&OIDC_FETCHES);
    LazyLock::force(&OIDC_FETCH_DURATION);
    LazyLock::force(&CT_SUBMISSIONS);
    LazyLock::force(&CT_SUBMISSION_DURATION);
    LazyLock::force(&CTLOG_TREE_SIZE);
    LazyLock::force(&CTLOG_CHECKPOINT_TIMESTAMP);
    LazyLock::force(&CTLOG_BATCH_SIZE);
    LazyLock::force(&CTLOG_COMMIT_DURATION);
    LazyLock::force(&CTLOG_COMMIT_FAILURES);
    LazyLock::force(&CTLOG_SUBMISSIONS);
    LazyLock::force(&CTLOG_HTTP_REQUESTS);
    LazyLock::force(&CTLOG_REJECTIONS);
    LazyLock::force(&CTLOG_UNINDEXED);
    LazyLock::force(&CTLOG_LOOKUP_WRITE_FAILURES);
    for component in ["identity_config", "ca", "tls"] {
        for outcome in ["success", "failure"] {
            CONFIG_RELOADS.with_label_values(&[component, outcome]);
        }
    }
    LazyLock::force(&CONFIG_LAST_RELOAD);
    LazyLock::force(&EXPIRY);
    LazyLock::force(&READY);
    LazyLock::force(&CTLOG_PENDING);
}

/// Text exposition of every registered metric.
pub(crate) fn render() -> String {
    let mut buf = Vec::new();
    let _ = TextEncoder::new().encode(&REGISTRY.gather(), &mut buf);
    String::from_utf8(buf).unwrap_or_default()
}

// ---- brevis monitor ----------------------------------------------------------------------

fn monitor_gauge(name: &str, help: &str) -> IntGauge {
    register(IntGauge::new(name, help).expect("valid metric definition"))
}

fn monitor_fgauge(name: &str, help: &str) -> Gauge {
    register(Gauge::new(name, help).expect("valid metric definition"))
}

/// Entries the monitor read and examined.
pub(crate) static MONITOR_SCANNED: LazyLock<IntCounter> = LazyLock::new(|| {
    register(
        IntCounter::new(
            "brevis_monitor_entries_scanned_total",
            "Log entries the monitor read and examined",
        )
        .expect("valid metric definition"),
    )
});

/// Matches by watch name (names come from the watch file).
pub(crate) static MONITOR_MATCHES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "brevis_monitor_matches_total",
        "Entries that matched a watch, by watch name",
        &["watch"],
    )
});

/// Entries whose certificate could not be read.
pub(crate) static MONITOR_UNPARSED: LazyLock<IntCounter> = LazyLock::new(|| {
    register(
        IntCounter::new(
            "brevis_monitor_unparsed_total",
            "Log entries the monitor could not parse (each is an `unparsed` event)",
        )
        .expect("valid metric definition"),
    )
});

/// Consistency checks by outcome: consistent, inconsistent, error.
pub(crate) static MONITOR_CONSISTENCY: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "brevis_monitor_consistency_checks_total",
        "Checks of a new tree head against the stored one, by outcome (consistent, inconsistent, error)",
        &["outcome"],
    )
});

/// Webhook delivery attempts by outcome.
pub(crate) static MONITOR_WEBHOOK: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "brevis_monitor_webhook_deliveries_total",
        "Webhook deliveries by outcome (delivered, failed_attempt)",
        &["outcome"],
    )
});

/// The latest verified tree size.
pub(crate) static MONITOR_TREE_SIZE: LazyLock<IntGauge> = LazyLock::new(|| {
    monitor_gauge(
        "brevis_monitor_tree_size",
        "Tree size of the latest verified tree head",
    )
});

/// Age of the latest tree head.
pub(crate) static MONITOR_CHECKPOINT_AGE: LazyLock<Gauge> = LazyLock::new(|| {
    monitor_fgauge(
        "brevis_monitor_checkpoint_age_seconds",
        "Age of the log's latest tree head when it was fetched",
    )
});

/// Entries behind the log.
pub(crate) static MONITOR_LAG: LazyLock<IntGauge> = LazyLock::new(|| {
    monitor_gauge(
        "brevis_monitor_lag_entries",
        "Entries of the latest tree head the monitor has not read yet",
    )
});

/// Inconsistencies recorded in the state.
pub(crate) static MONITOR_INCONSISTENCIES: LazyLock<IntGauge> = LazyLock::new(|| {
    monitor_gauge(
        "brevis_monitor_inconsistencies",
        "Inconsistencies recorded in the monitor's state (never cleared by the monitor)",
    )
});

/// When a cycle last finished with the log fully verified.
pub(crate) static MONITOR_LAST_SUCCESS: LazyLock<Gauge> = LazyLock::new(|| {
    monitor_fgauge(
        "brevis_monitor_last_success_timestamp_seconds",
        "Unix time of the last cycle that verified the log up to its latest tree head",
    )
});

/// Touches every monitor metric so it appears before its first event.
pub(crate) fn init_monitor() {
    LazyLock::force(&MONITOR_SCANNED);
    LazyLock::force(&MONITOR_UNPARSED);
    for o in ["consistent", "inconsistent", "error"] {
        MONITOR_CONSISTENCY.with_label_values(&[o]);
    }
    for o in ["delivered", "failed_attempt"] {
        MONITOR_WEBHOOK.with_label_values(&[o]);
    }
    LazyLock::force(&MONITOR_TREE_SIZE);
    LazyLock::force(&MONITOR_CHECKPOINT_AGE);
    LazyLock::force(&MONITOR_LAG);
    LazyLock::force(&MONITOR_INCONSISTENCIES);
    LazyLock::force(&MONITOR_LAST_SUCCESS);
}

/// Entries of the log not yet in its search index.
pub(crate) static CTLOG_SEARCH_LAG: LazyLock<IntGauge> = LazyLock::new(|| {
    register(
        IntGauge::new(
            "brevis_ctlog_search_index_lag_entries",
            "Committed entries of the log not yet in its search index (the explorer's searches)",
        )
        .expect("valid metric definition"),
    )
});
