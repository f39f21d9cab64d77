//! `immuta-gitops license status`: seats, active users and expiry of the tenant's licenses.

use std::io::Write;
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::Context;
use owo_colors::OwoColorize;
use serde_json::Value;

use super::tenant::{self, TenantArgs};
use super::{EXIT_OK, validate::Format};
use crate::live::{self, Licenses, Request};
use crate::plan::days_until;

/// Arguments of `license`.
#[derive(Debug, clap::Args)]
pub struct LicenseArgs {
    #[command(subcommand)]
    command: LicenseCommand,
}

#[derive(Debug, clap::Subcommand)]
enum LicenseCommand {
    /// Show seats, active users and expiry; warn under 30 days or above 90% of seats.
    Status {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        #[command(flatten)]
        tenant: TenantArgs,
    },
}

/// Days before expiry below which a license is flagged.
pub const EXPIRY_WARNING_DAYS: i64 = 30;
/// Share of seats (percent) above which seats are flagged.
pub const SEATS_WARNING_PERCENT: i64 = 90;

pub fn run(args: &LicenseArgs) -> anyhow::Result<ExitCode> {
    let LicenseCommand::Status { format, tenant: tenant_args } = &args.command;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(async {
        let tenant = tenant::connect(tenant_args, None).await?;
        if let Some(banner) = tenant.banner(&tenant_args.state_dir) {
            if *format == Format::Text {
                writeln!(anstream::stdout(), "{banner}\n")?;
            } else {
                writeln!(anstream::stderr(), "{banner}")?;
            }
        }
        let inv = live::inventory(&tenant.client, Licenses::Required)
            .await
            .context("cannot read the tenant's licenses")?;
        let usage = tenant
            .client
            .send_ok(
                &Request::get("/admin/license/usage", "/admin/license/usage")
                    .query("offset", 0)
                    .query("size", 10)
                    .admin(),
            )
            .await
            .context("cannot read the license usage")?;
        let now = SystemTime::now();
        let licenses = inv.licenses.unwrap_or_default();
        let mut warnings = Vec::new();
        for l in &licenses {
            if let Some(days) = l.expires.as_deref().and_then(|e| days_until(e, now))
                && days < EXPIRY_WARNING_DAYS
            {
                warnings.push(if days < 0 {
                    format!("license {} expired {} days ago", l.id, -days)
                } else {
                    format!("license {} expires in {days} days", l.id)
                });
            }
        }
        if licenses.is_empty() {
            warnings.push("the tenant has no license".to_owned());
        }
        let (active, seats) =
            inv.license_status.as_ref().map_or((0, 0), |s| (s.active_users, s.seats));
        let percent = if seats > 0 { active * 100 / seats } else { 0 };
        if seats > 0 && active * 100 > seats * SEATS_WARNING_PERCENT {
            warnings.push(format!("{active} of {seats} seats are used ({percent}%)"));
        }
        let summary = usage.get("summary").cloned().unwrap_or(Value::Null);
        let text = match format {
            Format::Json => {
                let report = serde_json::json!({
                    "format_version": 1,
                    "tenant": tenant.label,
                    "seats": seats,
                    "active_users": active,
                    "seats_used_percent": percent,
                    "licenses": licenses.iter().map(|l| serde_json::json!({
                        "id": l.id,
                        "seats": l.seats,
                        "expires": l.expires,
                        "days_to_expiry": l.expires.as_deref().and_then(|e| days_until(e, now)),
                    })).collect::<Vec<_>>(),
                    "usage": summary,
                    "warnings": warnings,
                });
                format!("{}\n", serde_json::to_string_pretty(&report)?)
            }
            Format::Text => {
                let mut out = format!("License status of {}\n", tenant.label);
                out.push_str(&format!("  seats: {seats}, active users: {active} ({percent}%)\n"));
                for l in &licenses {
                    let expiry = match l.expires.as_deref() {
                        Some(e) => match days_until(e, now) {
                            Some(d) => format!("expires {} ({d} days)", e.get(..10).unwrap_or(e)),
                            None => format!("expires {e}"),
                        },
                        None => "no expiry".to_owned(),
                    };
                    let seats = l.seats.map_or("? seats".to_owned(), |s| format!("{s} seats"));
                    out.push_str(&format!("  license {}: {seats}, {expiry}\n", l.id));
                }
                let count = |k: &str, f: &str| {
                    summary.get(k).and_then(|v| v.get(f)).and_then(Value::as_i64).unwrap_or(0)
                };
                out.push_str(&format!(
                    "  users: {} data consumers ({} active), {} policy owners ({} active)\n",
                    count("dataConsumers", "totalCount"),
                    count("dataConsumers", "activeCount"),
                    count("policyOwners", "totalCount"),
                    count("policyOwners", "activeCount"),
                ));
                for w in &warnings {
                    out.push_str(&format!("{} {w}\n", "warning:".yellow().bold()));
                }
                out
            }
        };
        anstream::stdout().lock().write_all(text.as_bytes())?;
        Ok(ExitCode::from(EXIT_OK))
    })
}
