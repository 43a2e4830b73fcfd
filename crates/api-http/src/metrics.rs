//! Prometheus metrics: requests by route and status, latency histograms, decisions by
//! reason, login failures, the outbox relay (published, failures, backlog, lag), the
//! database connection pool, the build, and the process (`process_*`, on Linux).
//!
//! Every label takes its value from a fixed set (SPEC §7: bounded), so no request can
//! add a time series: `route` is a route template or `unmatched`, `method` one of
//! [`KNOWN_METHODS`] or `other`, `status` a status code, `reason` a decision reason.

use prometheus::{
    Encoder, Gauge, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};

/// The methods the `method` label names; any other is counted as `other`.
pub const KNOWN_METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// The `method` label of a request: the method if it is one of [`KNOWN_METHODS`],
/// `other` for any other (a client may send any token as a method).
pub fn method_label(method: &str) -> &'static str {
    KNOWN_METHODS
        .iter()
        .find(|known| **known == method)
        .copied()
        .unwrap_or("other")
}

/// The service's metrics, in a registry of their own (names prefixed `user_engine_`),
/// and the process's in another (the conventional unprefixed `process_*` names).
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    process: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    decisions: IntCounterVec,
    login_failures: IntCounter,
    relay_published: IntCounter,
    relay_failures: IntCounter,
    relay_backlog: IntGauge,
    relay_lag: Gauge,
    mail_sent: IntCounter,
    mail_retried: IntCounter,
    mail_failed: IntGauge,
    mail_backlog: IntGauge,
    mail_lag: Gauge,
    webhook_deliveries: IntCounterVec,
    pool_connections: IntGaugeVec,
    pool_max: IntGauge,
}

impl Metrics {
    /// # Errors
    /// When a metric cannot be registered (a programming error: duplicate names).
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("user_engine".to_owned()), None)?;
        let requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by route, method and status",
            ),
            &["route", "method", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request latency by route",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ]),
            &["route", "method"],
        )?;
        let decisions = IntCounterVec::new(
            Opts::new("authz_decisions_total", "Authorize API decisions by reason"),
            &["reason"],
        )?;
        let login_failures = IntCounter::new("login_failures_total", "Refused logins")?;
        let relay_published =
            IntCounter::new("relay_published_total", "Outbox events published to NATS")?;
        let relay_failures = IntCounter::new(
            "relay_failures_total",
            "Relay passes that failed and were retried",
        )?;
        let relay_backlog = IntGauge::new("relay_backlog", "Outbox events not yet published")?;
        let relay_lag = Gauge::new(
            "relay_lag_seconds",
            "Age of the oldest unpublished outbox event (0 when none)",
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(decisions.clone()))?;
        registry.register(Box::new(login_failures.clone()))?;
        registry.register(Box::new(relay_published.clone()))?;
        registry.register(Box::new(relay_failures.clone()))?;
        registry.register(Box::new(relay_backlog.clone()))?;
        registry.register(Box::new(relay_lag.clone()))?;
        let mail_sent = IntCounter::new("mail_sent_total", "Mails the SMTP server accepted")?;
        let mail_retried = IntCounter::new(
            "mail_retried_total",
            "Mail attempts that failed and will be retried",
        )?;
        let mail_failed = IntGauge::new(
            "mail_failed",
            "Mails given up after failing for the give-up time (kept with their last error)",
        )?;
        let mail_backlog = IntGauge::new("mail_backlog", "Mails queued and not yet sent")?;
        let mail_lag = Gauge::new(
            "mail_lag_seconds",
            "Age of the oldest mail waiting to be sent (0 when none)",
        )?;
        registry.register(Box::new(mail_sent.clone()))?;
        registry.register(Box::new(mail_retried.clone()))?;
        registry.register(Box::new(mail_failed.clone()))?;
        registry.register(Box::new(mail_backlog.clone()))?;
        registry.register(Box::new(mail_lag.clone()))?;
        let webhook_deliveries = IntCounterVec::new(
            Opts::new(
                "webhook_deliveries_total",
                "Webhook delivery attempts by outcome: delivered, retrying, failed (given up)",
            ),
            &["outcome"],
        )?;
        registry.register(Box::new(webhook_deliveries.clone()))?;
        let pool_connections = IntGaugeVec::new(
            Opts::new(
                "db_pool_connections",
                "Open database connections, idle or in use",
            ),
            &["state"],
        )?;
        let pool_max = IntGauge::new(
            "db_pool_max_connections",
            "The most connections the database pool opens",
        )?;
        registry.register(Box::new(pool_connections.clone()))?;
        registry.register(Box::new(pool_max.clone()))?;
        let build_info = IntGaugeVec::new(
            Opts::new("build_info", "Always 1; the version label names the build"),
            &["version"],
        )?;
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        registry.register(Box::new(build_info))?;
        let process = Registry::new();
        #[cfg(target_os = "linux")]
        process.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        Ok(Self {
            registry,
            process,
            requests,
            latency,
            decisions,
            login_failures,
            relay_published,
            relay_failures,
            relay_backlog,
            relay_lag,
            mail_sent,
            mail_retried,
            mail_failed,
            mail_backlog,
            mail_lag,
            webhook_deliveries,
            pool_connections,
            pool_max,
        })
    }

    /// One request answered. `method` is a label from [`method_label`].
    pub fn request(&self, route: &str, method: &'static str, status: u16, seconds: f64) {
        self.requests
            .with_label_values(&[route, method, &status.to_string()])
            .inc();
        self.latency
            .with_label_values(&[route, method])
            .observe(seconds);
    }

    pub fn decision(&self, reason: &str) {
        self.decisions.with_label_values(&[reason]).inc();
    }

    pub fn login_failure(&self) {
        self.login_failures.inc();
    }

    /// One relay pass: how many events it published, or that it failed.
    pub fn relay_pass(&self, published: Result<usize, ()>) {
        match published {
            Ok(count) => self
                .relay_published
                .inc_by(u64::try_from(count).unwrap_or(u64::MAX)),
            Err(()) => self.relay_failures.inc(),
        }
    }

    /// The outbox as the relay last saw it.
    pub fn relay_backlog(&self, unpublished: u64, oldest_age_seconds: f64) {
        self.relay_backlog
            .set(i64::try_from(unpublished).unwrap_or(i64::MAX));
        self.relay_lag.set(oldest_age_seconds);
    }

    /// One mail pass: how many mails were sent and how many will be retried.
    pub fn mail_pass(&self, sent: usize, retried: usize) {
        self.mail_sent
            .inc_by(u64::try_from(sent).unwrap_or(u64::MAX));
        self.mail_retried
            .inc_by(u64::try_from(retried).unwrap_or(u64::MAX));
    }

    /// The mail queue as the worker last saw it.
    pub fn mail_queue(&self, waiting: u64, oldest_age_seconds: f64, failed: u64) {
        self.mail_backlog
            .set(i64::try_from(waiting).unwrap_or(i64::MAX));
        self.mail_lag.set(oldest_age_seconds);
        self.mail_failed
            .set(i64::try_from(failed).unwrap_or(i64::MAX));
    }

    /// One webhook pass: attempts by outcome.
    pub fn webhook_pass(&self, delivered: usize, retrying: usize, failed: usize) {
        for (outcome, count) in [
            ("delivered", delivered),
            ("retrying", retrying),
            ("failed", failed),
        ] {
            if count > 0 {
                self.webhook_deliveries
                    .with_label_values(&[outcome])
                    .inc_by(u64::try_from(count).unwrap_or(u64::MAX));
            }
        }
    }

    /// The database pool as it is now (left as it was when the store reports none).
    pub fn pool(&self, stats: Option<crate::app::PoolStats>) {
        if let Some(stats) = stats {
            let in_use = stats.open.saturating_sub(stats.idle);
            self.pool_connections
                .with_label_values(&["idle"])
                .set(i64::from(stats.idle));
            self.pool_connections
                .with_label_values(&["in_use"])
                .set(i64::from(in_use));
            self.pool_max.set(i64::from(stats.max));
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        let mut families = self.registry.gather();
        families.extend(self.process.gather());
        let _ = TextEncoder::new().encode(&families, &mut buffer);
        String::from_utf8(buffer).unwrap_or_default()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn relay_passes_and_the_backlog_show_in_the_exposition() {
        let metrics = Metrics::new().expect("metrics");
        metrics.relay_pass(Ok(3));
        metrics.relay_pass(Ok(2));
        metrics.relay_pass(Err(()));
        metrics.relay_backlog(7, 12.5);
        let text = metrics.render();
        assert!(
            text.contains("user_engine_relay_published_total 5"),
            "{text}"
        );
        assert!(
            text.contains("user_engine_relay_failures_total 1"),
            "{text}"
        );
        assert!(text.contains("user_engine_relay_backlog 7"), "{text}");
        assert!(
            text.contains("user_engine_relay_lag_seconds 12.5"),
            "{text}"
        );
    }

    #[test]
    fn the_pool_shows_idle_and_in_use_connections_and_its_bound() {
        let metrics = Metrics::new().expect("metrics");
        metrics.pool(Some(crate::app::PoolStats {
            open: 5,
            idle: 2,
            max: 16,
        }));
        let text = metrics.render();
        for line in [
            "user_engine_db_pool_connections{state=\"idle\"} 2",
            "user_engine_db_pool_connections{state=\"in_use\"} 3",
            "user_engine_db_pool_max_connections 16",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
    }

    #[test]
    fn only_known_methods_name_themselves_in_the_method_label() {
        for method in KNOWN_METHODS {
            assert_eq!(method_label(method), method);
        }
        for method in ["get", "FOO", "PROPFIND", "CONNECT", "TRACE", ""] {
            assert_eq!(method_label(method), "other", "{method:?}");
        }
    }

    #[test]
    fn the_build_and_the_process_show_in_the_exposition() {
        let text = Metrics::new().expect("metrics").render();
        let version = env!("CARGO_PKG_VERSION");
        assert!(
            text.contains(&format!(
                "user_engine_build_info{{version=\"{version}\"}} 1"
            )),
            "{text}"
        );
        #[cfg(target_os = "linux")]
        for name in [
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_open_fds",
        ] {
            assert!(
                text.lines()
                    .any(|line| line.starts_with(&format!("{name} "))),
                "{name} missing: {text}"
            );
        }
    }
}
