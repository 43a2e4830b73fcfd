//! Prometheus metrics: requests by route and status, latency histograms, decisions by
//! reason, login failures, and the outbox relay (published, failures, backlog, lag).

use prometheus::{
    Encoder, Gauge, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};

/// The service's metrics, in a registry of their own.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    decisions: IntCounterVec,
    login_failures: IntCounter,
    relay_published: IntCounter,
    relay_failures: IntCounter,
    relay_backlog: IntGauge,
    relay_lag: Gauge,
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
        Ok(Self {
            registry,
            requests,
            latency,
            decisions,
            login_failures,
            relay_published,
            relay_failures,
            relay_backlog,
            relay_lag,
        })
    }

    pub fn request(&self, route: &str, method: &str, status: u16, seconds: f64) {
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

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buffer);
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
}
