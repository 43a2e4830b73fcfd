//! `user-engine diagnose`: runs the tenant diagnostics as an operator, words the reports
//! for a person (a table, coloured at a terminal) or a program (`--json`), and maps them
//! to the exit status.
//!
//! The binary only parses flags, opens the store and prints; the work sits here so the
//! tests run exactly what the command runs, without spawning the binary.

use diagnostics::{CheckStatus, Options, Report, Status};
use domain::ids::TenantId;
use domain::usecases::Engine;

/// Exit status when the diagnosis itself could not run (unknown tenant, store down);
/// 0, 1 and 2 belong to the readiness statuses.
pub const EXIT_ERROR: u8 = 3;

/// Which tenants to diagnose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Tenant(TenantId),
    All,
}

/// The exit status of one readiness: 0 ready, 1 degraded, 2 not ready.
pub fn status_exit_code(status: Status) -> u8 {
    match status {
        Status::Ready => 0,
        Status::Degraded => 1,
        Status::NotReady => 2,
    }
}

/// The exit status of a run: that of its worst report (0 when there is no tenant).
pub fn exit_code(reports: &[Report]) -> u8 {
    reports
        .iter()
        .map(|report| report.status)
        .max()
        .map_or(0, status_exit_code)
}

/// Diagnoses one tenant, or every tenant in id order.
///
/// # Errors
/// A message for the operator when the tenant does not exist or the store fails.
pub async fn run(
    engine: &Engine,
    target: &Target,
    options: &Options,
) -> Result<Vec<Report>, String> {
    let request_id = format!("diagnose-{}", uuid::Uuid::now_v7());
    let tenants = match target {
        Target::Tenant(tenant) => vec![tenant.clone()],
        Target::All => engine
            .all_tenant_ids()
            .await
            .map_err(|error| format!("cannot list the tenants: {error}"))?,
    };
    let mut reports = Vec::with_capacity(tenants.len());
    for tenant in &tenants {
        let report = diagnostics::diagnose_as_operator(engine, tenant, &request_id, options)
            .await
            .map_err(|error| match error {
                domain::Error::TenantNotFound => {
                    format!("no tenant {tenant}; `user-engine diagnose --all` lists every tenant")
                }
                error => format!("diagnosing tenant {tenant} failed: {error}"),
            })?;
        reports.push(report);
    }
    Ok(reports)
}

/// Everything the command prints on stdout.
pub fn render(reports: &[Report], target: &Target, json: bool, colour: bool) -> String {
    match (json, target) {
        (true, Target::Tenant(_)) => match reports {
            [report] => pretty(&report.to_json()),
            _ => pretty(&serde_json::Value::Array(
                reports.iter().map(Report::to_json).collect(),
            )),
        },
        (true, Target::All) => {
            let summary = Summary::of(reports);
            pretty(&serde_json::json!({
                "tenants": reports.iter().map(Report::to_json).collect::<Vec<_>>(),
                "summary": {
                    "tenants": reports.len(),
                    "ready": summary.ready,
                    "degraded": summary.degraded,
                    "not_ready": summary.not_ready,
                },
            }))
        }
        (false, target) => {
            let mut text = reports
                .iter()
                .map(|report| table(report, colour))
                .collect::<Vec<_>>()
                .join("\n");
            if *target == Target::All {
                if !text.is_empty() {
                    text.push('\n');
                }
                text.push_str(&Summary::of(reports).line(reports, colour));
                text.push('\n');
            }
            text
        }
    }
}

fn pretty(value: &serde_json::Value) -> String {
    // Serialising a `Value` cannot fail; the fallback keeps the lint wall happy.
    let mut text = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    text.push('\n');
    text
}

/// ANSI colours, only when the output is a terminal.
fn paint(text: &str, code: &str, colour: bool) -> String {
    if colour {
        format!("\u{1b}[{code}m{text}\u{1b}[0m")
    } else {
        text.to_owned()
    }
}

fn check_colour(status: CheckStatus) -> &'static str {
    match status {
        CheckStatus::Pass => "32",
        CheckStatus::Warn => "33",
        CheckStatus::Fail => "31",
    }
}

fn status_colour(status: Status) -> &'static str {
    match status {
        Status::Ready => "1;32",
        Status::Degraded => "1;33",
        Status::NotReady => "1;31",
    }
}

/// One tenant's report as a table: a heading with the overall status, one row per
/// check, and the remedy under each check that did not pass.
pub fn table(report: &Report, colour: bool) -> String {
    let width = report
        .checks
        .iter()
        .map(|check| check.id.len())
        .chain(std::iter::once("CHECK".len()))
        .max()
        .unwrap_or(0);
    let count = |status| {
        report
            .checks
            .iter()
            .filter(|check| check.status == status)
            .count()
    };
    let mut text = format!(
        "tenant {}: {} ({} pass, {} warn, {} fail)\n",
        report.tenant,
        paint(
            &report.status.as_str().to_uppercase().replace('_', " "),
            status_colour(report.status),
            colour
        ),
        count(CheckStatus::Pass),
        count(CheckStatus::Warn),
        count(CheckStatus::Fail),
    );
    text.push_str(&format!("  {:<6}  {:<width$}  DETAIL\n", "STATUS", "CHECK"));
    for check in &report.checks {
        // Padded before painting: escape codes would otherwise count as width.
        let status = format!("{:<6}", check.status.as_str());
        text.push_str(&format!(
            "  {}  {:<width$}  {}\n",
            paint(&status, check_colour(check.status), colour),
            check.id,
            check.detail
        ));
        if let Some(remedy) = &check.remedy {
            text.push_str(&format!(
                "  {:<6}  {:<width$}  {} {remedy}\n",
                "",
                "",
                paint("fix:", "1", colour)
            ));
        }
    }
    text
}

/// How many tenants are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub ready: usize,
    pub degraded: usize,
    pub not_ready: usize,
}

impl Summary {
    pub fn of(reports: &[Report]) -> Self {
        reports.iter().fold(Self::default(), |mut summary, report| {
            match report.status {
                Status::Ready => summary.ready += 1,
                Status::Degraded => summary.degraded += 1,
                Status::NotReady => summary.not_ready += 1,
            }
            summary
        })
    }

    /// `3 tenants: 1 ready, 1 degraded (globex), 1 not ready (initech)`.
    pub fn line(&self, reports: &[Report], colour: bool) -> String {
        let named = |status: Status| {
            let names: Vec<&str> = reports
                .iter()
                .filter(|report| report.status == status)
                .map(|report| report.tenant.as_str())
                .collect();
            if names.is_empty() || status == Status::Ready {
                String::new()
            } else {
                format!(" ({})", names.join(", "))
            }
        };
        let tenants = if reports.len() == 1 {
            "1 tenant".to_owned()
        } else {
            format!("{} tenants", reports.len())
        };
        format!(
            "{tenants}: {}, {}{}, {}{}",
            paint(
                &format!("{} ready", self.ready),
                status_colour(Status::Ready),
                colour
            ),
            paint(
                &format!("{} degraded", self.degraded),
                status_colour(Status::Degraded),
                colour
            ),
            named(Status::Degraded),
            paint(
                &format!("{} not ready", self.not_ready),
                status_colour(Status::NotReady),
                colour
            ),
            named(Status::NotReady),
        )
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "tests: a failed lookup is a failed test"
)]
mod tests {
    use diagnostics::{ids, Check};

    use super::*;

    fn report(tenant: &str, statuses: &[CheckStatus]) -> Report {
        let checks: Vec<Check> = statuses
            .iter()
            .zip(ids::ALL)
            .map(|(status, id)| Check {
                id,
                status: *status,
                detail: format!("{id} detail"),
                remedy: (*status != CheckStatus::Pass).then(|| format!("fix {id}")),
            })
            .collect();
        Report {
            tenant: tenant.to_owned(),
            status: Status::of(&checks),
            checks,
        }
    }

    #[test]
    fn the_exit_code_is_0_ready_1_degraded_2_not_ready_for_the_worst_tenant() {
        let ready = report("acme", &[CheckStatus::Pass]);
        let degraded = report("globex", &[CheckStatus::Pass, CheckStatus::Warn]);
        let not_ready = report("initech", &[CheckStatus::Fail, CheckStatus::Warn]);
        assert_eq!(exit_code(std::slice::from_ref(&ready)), 0);
        assert_eq!(exit_code(std::slice::from_ref(&degraded)), 1);
        assert_eq!(exit_code(std::slice::from_ref(&not_ready)), 2);
        assert_eq!(exit_code(&[ready.clone(), not_ready, degraded]), 2);
        assert_eq!(exit_code(&[]), 0);
        assert_ne!(EXIT_ERROR, 0);
        assert!(![0, 1, 2].contains(&EXIT_ERROR));
    }

    #[test]
    fn the_table_lists_every_check_and_each_remedy_under_its_check() {
        let text = table(
            &report("acme", &[CheckStatus::Pass, CheckStatus::Warn]),
            false,
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "tenant acme: DEGRADED (1 pass, 1 warn, 0 fail)");
        assert!(lines[1].contains("STATUS") && lines[1].contains("CHECK"));
        assert!(lines[2].contains("pass") && lines[2].contains("tenant.active detail"));
        assert!(lines[3].contains("warn") && lines[3].contains("admins.present"));
        assert!(lines[4].trim_start().starts_with("fix: fix admins.present"));
        assert!(!text.contains('\u{1b}'));
    }

    #[test]
    fn colour_is_only_added_when_asked_and_keeps_the_columns() {
        let plain = table(&report("acme", &[CheckStatus::Fail]), false);
        let coloured = table(&report("acme", &[CheckStatus::Fail]), true);
        assert!(coloured.contains("\u{1b}[31mfail  \u{1b}[0m"));
        let strip = |text: &str| {
            let mut out = String::new();
            let mut chars = text.chars();
            while let Some(c) = chars.next() {
                if c == '\u{1b}' {
                    for c in chars.by_ref() {
                        if c == 'm' {
                            break;
                        }
                    }
                } else {
                    out.push(c);
                }
            }
            out
        };
        assert_eq!(strip(&coloured), plain);
    }

    #[test]
    fn all_ends_with_a_summary_and_json_carries_it_too() {
        let reports = vec![
            report("acme", &[CheckStatus::Pass]),
            report("globex", &[CheckStatus::Warn]),
            report("initech", &[CheckStatus::Fail]),
        ];
        let text = render(&reports, &Target::All, false, false);
        assert_eq!(
            text.lines().last(),
            Some("3 tenants: 1 ready, 1 degraded (globex), 1 not ready (initech)")
        );
        let json: serde_json::Value =
            serde_json::from_str(&render(&reports, &Target::All, true, false)).unwrap();
        assert_eq!(json["tenants"].as_array().unwrap().len(), 3);
        assert_eq!(json["summary"]["not_ready"], 1);
        assert_eq!(json["tenants"][1]["status"], "degraded");

        let one = render(
            &reports[..1],
            &Target::Tenant(TenantId::parse("acme").unwrap()),
            true,
            false,
        );
        let json: serde_json::Value = serde_json::from_str(&one).unwrap();
        assert_eq!(json["tenant"], "acme");
        assert_eq!(json["status"], "ready");
    }
}
