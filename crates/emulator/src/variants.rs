//! Tenant variants: where Immuta's docs, its Swagger and the public clients show more than one
//! behaviour for the same thing, the emulator can play each of them.
//!
//! The emulator is a witness, not the judge. By default it plays the behaviour a real tenant
//! is most likely to show (background creation of data sources, the acknowledgement error,
//! nested purpose listings, integer license fields); every other documented behaviour is a
//! variant, chosen with [`EmulatorConfig::variants`](crate::EmulatorConfig::variants),
//! `immuta-gitops emulator --variant DIMENSION=VALUE`, or `PUT /_emulator/variants`. Each value
//! names its source. [`Variants::each`] lists every value that differs from the default, so a
//! test suite can run against all of them.
//!
//! Sources, cited as `repo@commit:path:line`: **TF** `immuta/terraform-provider-immuta@a382f91`,
//! **Swagger** its `immuta_api_swagger.json@b9218c6` (Immuta's own 2023 Swagger), **FH**
//! `flatironhealth/fh-immuta-utils@1ea3bf8`, **TAP** `immuta/tap-immuta@4b0789b`, **MCP**
//! `sandeepmohan/immuta-mcp@8028df4`; docs by URL.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Declares one dimension: an enum of values, each with its wire name, what it does and its
/// source; the first value is the default.
macro_rules! dimension {
    (
        $(#[$doc:meta])*
        $name:ident, $key:literal {
            $( $(#[$vdoc:meta])* $variant:ident = $wire:literal, $what:literal, $source:literal; )+
        }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $( $(#[$vdoc])* #[serde(rename = $wire)] $variant, )+
        }

        impl $name {
            /// Every value, the default first.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The dimension's name in `--variant NAME=VALUE`.
            pub const KEY: &'static str = $key;

            /// The value's wire name.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire,)+ }
            }

            /// What the tenant does.
            pub fn describe(self) -> &'static str {
                match self { $($name::$variant => $what,)+ }
            }

            /// Where the behaviour is documented or observed.
            pub fn source(self) -> &'static str {
                match self { $($name::$variant => $source,)+ }
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::ALL[0]
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                Self::ALL.iter().copied().find(|v| v.as_str() == s).ok_or_else(|| {
                    let known: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
                    format!("unknown {} {s:?} (expected {})", $key, known.join(", "))
                })
            }
        }
    };
}

dimension! {
    /// How V1 listings wrap their items.
    Envelope, "envelope" {
        /// Each listing's documented shape.
        Documented = "documented",
            "`/project` and `/dataSource` answer `{hits, facets, count}`, `/governance/purpose` `{purposes, count}`, `/policy/global` a bare array",
            "Swagger:624-760,9454-9530 (Model30, Model11), :11250 (Model57), :11278 (Model59); TF@a382f91:immuta/resource_project.go:519-523";
        /// `{hits, count}`, no facets.
        HitsCount = "hits-count",
            "`/project` and `/dataSource` answer `{hits, count}` without `facets`",
            "https://documentation.immuta.com/2.8/integration/api-reference-guides/Projects/ ; TAP@4b0789b:tap_immuta/streams.py:12-35";
        /// `{hits}` and no count, on every listing.
        Hits = "hits",
            "every listing answers `{hits}` without a count",
            "MCP@8028df4:immuta_queries.py:127-149; FH@1ea3bf8:fh_immuta_utils/paginator.py:16-35";
        /// `{projects, count}` on `/project`.
        Projects = "projects",
            "`/project` answers `{projects, count}` (declared by Terraform, never called by it)",
            "TF@a382f91:immuta/resource_project.go:440-443,514-517";
        /// `{dataSources}` on `/dataSource`.
        DataSources = "data-sources",
            "`/dataSource` answers `{dataSources}` without a count",
            "MCP@8028df4:immuta_queries.py:127-149 (\"envelope shapes seen in self-managed 2026.x\")";
        /// `{results}` everywhere.
        Results = "results",
            "every listing answers `{results}` without a count",
            "MCP@8028df4:immuta_queries.py:127-149";
        /// `{data}` everywhere.
        Data = "data",
            "every listing answers `{data}` without a count",
            "MCP@8028df4:immuta_queries.py:127-149 (the `/domain*` endpoints)";
        /// Bare arrays everywhere.
        Array = "array",
            "every listing answers a bare array",
            "MCP@8028df4:immuta_queries.py:127-149; TAP@4b0789b:tap_immuta/streams.py:91-96";
    }
}

dimension! {
    /// How V1 listings page.
    Paging, "paging" {
        /// `size` and `offset` honoured.
        Honoured = "honoured",
            "`size` and `offset` are honoured on every listing (defaults: `/project` 10, `/governance/purpose` 50, none elsewhere)",
            "Swagger:639,1815,2052-2062";
        /// `/policy/global` ignores paging.
        IgnoredByPolicies = "ignored-by-policies",
            "`/policy/global` ignores `size` and `offset` and answers every policy",
            "no client pages it: FH@1ea3bf8:fh_immuta_utils/client.py:454-462; TAP@4b0789b:tap_immuta/streams.py:91-96; MCP@8028df4:immuta_queries.py:683; issue 11";
        /// Every listing ignores paging.
        Ignored = "ignored",
            "every listing ignores `size` and `offset` and answers everything",
            "inferred from the clients that never page (TF everywhere, MD-conv, TAP for most listings)";
        /// Pages capped at 50 items.
        Capped = "capped",
            "no page holds more than 50 items, whatever `size` asks",
            "inferred from the declared defaults (Swagger:639,1815); issue 11 \"page caps\"";
    }
}

dimension! {
    /// How `GET /governance/purpose` shows subpurposes.
    Purposes, "purposes" {
        /// Roots only, subpurposes nested as objects without ids.
        Nested = "nested",
            "root purposes only; subpurposes nested as `{name, description, acknowledgement}` objects without an `id`",
            "TF@a382f91:immuta/resource_purpose.go:286-289,303-324 (PurposeResponse.Subpurposes []Purpose)";
        /// Roots only, subpurposes nested as objects with ids.
        NestedIds = "nested-ids",
            "root purposes only; subpurposes nested as objects with an `id`",
            "https://documentation.immuta.com/2024.2/~gitbook/pdf?only=yes&page=rFktDkN5pEEKnLn358fS (\"subpurposes array\")";
        /// Roots only, subpurposes as names.
        Names = "names",
            "root purposes only; subpurposes as their full names",
            "Swagger:9751-9756,9813 (Model21 `subpurposes: [string]`)";
        /// Every purpose a row.
        Flat = "flat",
            "every purpose and subpurpose a row of its own, with `parent` and its children's names",
            "inferred (V1 purposes are rows with ids; the emulator's first behaviour)";
    }
}

dimension! {
    /// When `POST /api/v2/data` creates data sources.
    Creation, "creation" {
        /// In the background, `wait` honoured.
        Background = "background",
            "the answer comes at once (`wait` 0, the default) and the data sources appear after the creation delay; `wait` N holds the answer up to N s, below 0 until they exist",
            "https://documentation.immuta.com/saas/developer-guides/api-intro/immuta-v2-api/data-source (\"wait ... Anything less than 0 will wait indefinitely\", default 0)";
        /// Before the answer.
        Synchronous = "synchronous",
            "every data source exists before the answer, whatever `wait` says",
            "the emulator's first behaviour (a tenant that creates faster than it answers)";
    }
}

dimension! {
    /// Whether project posts ask for the purposes to be acknowledged.
    Acknowledgement, "acknowledgement" {
        /// Real posts are refused until acknowledged.
        Required = "required",
            "a project post naming purposes its owner has not acknowledged answers 400 \"You must first acknowledge ...\" (a new project is created without them); `POST /project/{id}/members/{subscriptionId}/acknowledge` acknowledges",
            "TF@a382f91:immuta/resource_project.go:160-211,343-394,470-476; Swagger:8258-8290,20049-20080";
        /// Dry runs are refused too.
        RequiredInDryRuns = "required-in-dry-runs",
            "as `required`, and dry runs answer the same error",
            "inferred: no source shows what a dry run answers";
        /// Never asked.
        None = "none",
            "projects are never refused for acknowledgement",
            "the emulator's first behaviour";
    }
}

dimension! {
    /// Which credentials the tenant takes.
    Auth, "auth" {
        /// API keys and tokens.
        Key = "key",
            "the API key is taken as `Authorization: Bearer <key>` or raw, and so are exchanged tokens",
            "TF@a382f91:client/client.go:33; MCP@8028df4:immuta_queries.py:76; TAP@4b0789b:tap_immuta/client.py:10-14";
        /// Tokens only, 401 otherwise.
        TokensOnly = "tokens-only",
            "only tokens from `POST /bim/apikey/authenticate` are taken; the key itself is refused with 401",
            "https://documentation.immuta.com/2021.2/policy-as-code/v1-api/authentication/ (Bearer is for tokens)";
        /// Tokens only, 500 otherwise.
        TokensOnly500 = "tokens-only-500",
            "as `tokens-only`, refusing with 500 instead of 401",
            "FH@1ea3bf8:fh_immuta_utils/authenticate.py:134-152 (handle_500: \"some of the API endpoints don't handle OAuth correctly\")";
    }
}

dimension! {
    /// The field `POST /admin/license` reads the key from.
    LicenseKey, "license-key" {
        /// Either spelling.
        Either = "either",
            "`licenseKey` or `licensekey`",
            "the docs show both: https://documentation.immuta.com/SaaS/developer-guides/api-intro/immuta-v1-api/configure-your-instance-of-immuta/admin";
        /// `licensekey` only.
        Lower = "lower",
            "only `licensekey` (the docs' example body)",
            "https://documentation.immuta.com/SaaS/developer-guides/api-intro/immuta-v1-api/configure-your-instance-of-immuta/admin (example)";
        /// `licenseKey` only.
        Camel = "camel",
            "only `licenseKey` (the docs' parameter table)",
            "https://documentation.immuta.com/saas/developer-guides/api-intro/immuta-v1-api/configure-your-instance-of-immuta/admin (\"Body parameters\")";
    }
}

dimension! {
    /// The shapes of the license answers.
    Licenses, "licenses" {
        /// As the docs show them.
        Documented = "documented",
            "licenses carry an `id`; `licenseStatus` answers integers (`hardSeats` too); the usage summary has `inactiveCount`; a deleted license says `hardDelete`",
            "https://documentation.immuta.com/saas/~/changes/l3NnvynMHxi6VvqRtJhK/developer-guides/api-intro/immuta-v1-api/configure-your-instance-of-immuta/admin; audit H (seeds L23, L25, latest)";
        /// As the Swagger declares them.
        Swagger = "swagger",
            "licenses carry no `id` (in the POST answer and the listing); `licenseSeats` and `hardSeats` are \"Unlimited\"",
            "Swagger:10707-10780 (Model39), :14946-15010 (Model171), :11993-12040 (Model83 x-alternatives)";
    }
}

dimension! {
    /// How data is registered.
    Registration, "registration" {
        /// V2 data sources.
        DataSources = "data-sources",
            "data sources are registered with `POST /api/v2/data`; there is no connections API",
            "https://documentation.immuta.com/saas/developer-guides/api-intro/immuta-v2-api/data-source";
        /// Connections.
        Connections = "connections",
            "the tenant registers connections: `GET /data/connection/{key}` answers registered keys, and `POST /api/v2/data` is refused as deprecated",
            "https://documentation.immuta.com/saas/configuration/integrations/data-and-integrations/registering-a-connection/reference-guides/upgrading-to-connections/api-changes";
    }
}

dimension! {
    /// The tenant's clock, as its `Date` header tells it.
    Clock, "clock" {
        /// Right.
        Exact = "exact",
            "the `Date` header is the time",
            "RFC 9110 §6.6.1";
        /// Ten minutes ahead.
        Skewed = "skewed",
            "the `Date` header is ten minutes ahead",
            "inferred (a tenant whose clock drifted)";
    }
}

/// How far the `skewed` clock is ahead.
pub const CLOCK_SKEW: Duration = Duration::from_secs(600);

/// Largest page the `capped` paging variant answers.
pub const PAGE_CAP: usize = 50;

/// The tenant's behaviour on every dimension. `Default` is the most realistic tenant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Variants {
    /// Listing envelopes.
    pub envelope: Envelope,
    /// Listing pages.
    pub paging: Paging,
    /// Purpose listings.
    pub purposes: Purposes,
    /// Data-source creation.
    pub creation: Creation,
    /// Project acknowledgement.
    pub acknowledgement: Acknowledgement,
    /// Credentials.
    pub auth: Auth,
    /// License key field.
    pub license_key: LicenseKey,
    /// License answers.
    pub licenses: Licenses,
    /// Registration.
    pub registration: Registration,
    /// Clock.
    pub clock: Clock,
}

/// One dimension's name and values, for listings and `--help`.
pub struct Dimension {
    /// `--variant` name.
    pub key: &'static str,
    /// `(value, what it does, source)`, the default first.
    pub values: Vec<(&'static str, &'static str, &'static str)>,
}

fn dimension<T: Copy>(
    key: &'static str,
    all: &[T],
    parts: impl Fn(T) -> (&'static str, &'static str, &'static str),
) -> Dimension {
    Dimension { key, values: all.iter().map(|v| parts(*v)).collect() }
}

impl Variants {
    /// Every dimension with its values.
    pub fn dimensions() -> Vec<Dimension> {
        macro_rules! d {
            ($t:ty) => {
                dimension(<$t>::KEY, <$t>::ALL, |v: $t| (v.as_str(), v.describe(), v.source()))
            };
        }
        vec![
            d!(Envelope),
            d!(Paging),
            d!(Purposes),
            d!(Creation),
            d!(Acknowledgement),
            d!(Auth),
            d!(LicenseKey),
            d!(Licenses),
            d!(Registration),
            d!(Clock),
        ]
    }

    /// Sets one dimension from `NAME=VALUE`.
    pub fn set(&mut self, setting: &str) -> Result<(), String> {
        let (key, value) = setting
            .split_once('=')
            .ok_or_else(|| format!("expected DIMENSION=VALUE, got {setting:?}"))?;
        let (key, value) = (key.trim(), value.trim());
        match key {
            Envelope::KEY => self.envelope = value.parse()?,
            Paging::KEY => self.paging = value.parse()?,
            Purposes::KEY => self.purposes = value.parse()?,
            Creation::KEY => self.creation = value.parse()?,
            Acknowledgement::KEY => self.acknowledgement = value.parse()?,
            Auth::KEY => self.auth = value.parse()?,
            LicenseKey::KEY => self.license_key = value.parse()?,
            Licenses::KEY => self.licenses = value.parse()?,
            Registration::KEY => self.registration = value.parse()?,
            Clock::KEY => self.clock = value.parse()?,
            other => {
                let known: Vec<&str> = Variants::dimensions().iter().map(|d| d.key).collect();
                return Err(format!(
                    "unknown variant dimension {other:?} (expected {})",
                    known.join(", ")
                ));
            }
        }
        Ok(())
    }

    /// The default tenant with every `NAME=VALUE` of `settings` applied.
    pub fn parse<'a>(settings: impl IntoIterator<Item = &'a str>) -> Result<Variants, String> {
        let mut variants = Variants::default();
        for s in settings {
            variants.set(s)?;
        }
        Ok(variants)
    }

    /// Every value that differs from the default, each alone on a default tenant, labelled
    /// `NAME=VALUE`: what a test suite runs against to cover every variant.
    pub fn each() -> Vec<(String, Variants)> {
        let mut out = Vec::new();
        for d in Variants::dimensions() {
            for (value, _, _) in d.values.iter().skip(1) {
                let label = format!("{}={value}", d.key);
                if let Ok(v) = Variants::parse([label.as_str()]) {
                    out.push((label, v));
                }
            }
        }
        out
    }

    /// The values that differ from the default, as `NAME=VALUE` (empty for the default).
    pub fn label(&self) -> String {
        let current = [
            (Envelope::KEY, self.envelope.as_str(), Envelope::default().as_str()),
            (Paging::KEY, self.paging.as_str(), Paging::default().as_str()),
            (Purposes::KEY, self.purposes.as_str(), Purposes::default().as_str()),
            (Creation::KEY, self.creation.as_str(), Creation::default().as_str()),
            (
                Acknowledgement::KEY,
                self.acknowledgement.as_str(),
                Acknowledgement::default().as_str(),
            ),
            (Auth::KEY, self.auth.as_str(), Auth::default().as_str()),
            (LicenseKey::KEY, self.license_key.as_str(), LicenseKey::default().as_str()),
            (Licenses::KEY, self.licenses.as_str(), Licenses::default().as_str()),
            (Registration::KEY, self.registration.as_str(), Registration::default().as_str()),
            (Clock::KEY, self.clock.as_str(), Clock::default().as_str()),
        ];
        current
            .iter()
            .filter(|(_, v, d)| v != d)
            .map(|(k, v, _)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_parse_and_list_every_non_default_value() {
        let v = Variants::parse(["paging=capped", "purposes=flat"]).unwrap();
        assert_eq!(v.paging, Paging::Capped);
        assert_eq!(v.purposes, Purposes::Flat);
        assert_eq!(v.label(), "paging=capped,purposes=flat");
        assert!(Variants::parse(["paging=sometimes"]).unwrap_err().contains("expected honoured"));
        assert!(Variants::parse(["colour=red"]).unwrap_err().contains("unknown variant dimension"));
        assert!(Variants::parse(["paging"]).is_err());
        let each = Variants::each();
        let values: usize = Variants::dimensions().iter().map(|d| d.values.len() - 1).sum();
        assert_eq!(each.len(), values);
        assert!(each.iter().all(|(label, v)| &v.label() == label));
        for d in Variants::dimensions() {
            for (_, what, source) in &d.values {
                assert!(!what.is_empty() && !source.is_empty(), "{}", d.key);
            }
        }
    }

    #[test]
    fn variants_are_json_in_the_control() {
        let v: Variants = serde_json::from_str(r#"{"paging": "ignored-by-policies"}"#).unwrap();
        assert_eq!(v.paging, Paging::IgnoredByPolicies);
        assert_eq!(serde_json::to_value(Variants::default()).unwrap()["licenseKey"], "either");
        assert!(serde_json::from_str::<Variants>(r#"{"nope": 1}"#).is_err());
    }
}
