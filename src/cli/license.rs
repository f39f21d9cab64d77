//! `immuta-gitops license status`: seats, active users and expiry of the tenant's licenses.
//!
//! Arguments, reads and printing only: the licenses come from `live::inventory`, the usage from
//! `live::license_usage`, and the warnings from the one license rule,
//! `plan::license_status_warnings` (the rule plans show too).

use std::io::Write;
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::Context;
use owo_colors::OwoColorize;

use super::tenant::{self, TenantArgs};
use super::{EXIT_OK, validate::Report as Format};
use crate::live::{self, Licenses};
use crate::plan::{days_until, license_status_warnings};

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

pub fn run(args: &LicenseArgs) -> anyhow::Result<ExitCode> {
    let LicenseCommand::Status { format, tenant: tenant_args } = &args.command;
    super::runtime()?.block_on(async {
        let tenant = tenant::connect(tenant_args, None).await?;
        if let Some(banner) = tenant.banner(&tenant_args.state_dir) {
            super::print_banner(&banner, *format == Format::Text);
        }
        let inv = live::inventory(&tenant.client, Licenses::Required)
            .await
            .context("cannot read the tenant's licenses")?;
        let usage =
            live::license_usage(&tenant.client).await.context("cannot read the license usage")?;
        let now = SystemTime::now();
        let warnings: Vec<String> =
            license_status_warnings(&inv, now).into_iter().map(|w| w.message).collect();
        let licenses = inv.licenses.unwrap_or_default();
        let (active, seats) =
            inv.license_status.as_ref().map_or((0, 0), |s| (s.active_users, s.seats));
        let percent = if seats > 0 { active * 100 / seats } else { 0 };
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
                    "usage": usage.summary,
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
                    let id = l.id.map_or_else(|| "(no id)".to_owned(), |id| id.to_string());
                    out.push_str(&format!("  license {id}: {seats}, {expiry}\n"));
                }
                let activity = |c: &crate::live::UserCount| match (c.active, c.inactive) {
                    (Some(a), Some(i)) => format!(" ({a} active, {i} inactive)"),
                    (Some(a), None) => format!(" ({a} active)"),
                    _ => String::new(),
                };
                out.push_str(&format!(
                    "  users: {} data consumers{}, {} policy owners{}\n",
                    usage.data_consumers.total,
                    activity(&usage.data_consumers),
                    usage.policy_owners.total,
                    activity(&usage.policy_owners),
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

#[cfg(test)]
mod tests {
    use clap::{Args, Command};

    use super::LicenseArgs;
    use crate::plan::{EXPIRY_WARNING_DAYS, SEATS_WARNING_PERCENT};

    #[test]
    fn the_help_names_the_thresholds_of_the_one_license_rule() {
        let cmd = LicenseArgs::augment_args(Command::new("license"));
        let status = cmd.find_subcommand("status").expect("a status subcommand");
        let about = status.get_about().map(ToString::to_string).unwrap_or_default();
        assert!(about.contains(&format!("under {EXPIRY_WARNING_DAYS} days")), "{about}");
        assert!(about.contains(&format!("above {SEATS_WARNING_PERCENT}% of seats")), "{about}");
    }
}
