//! Project reach, purposes and settings, before and after (rules P1, P2).

use super::*;

impl Cx<'_> {
    /// Project reach, purposes and settings (rules P1, P2).
    pub(super) fn projects(&mut self, before: &World, keys: &BTreeSet<&str>) {
        for key in keys {
            let b = before.projects.get(*key);
            let a = self.after.projects.get(*key);
            let none = Project {
                key: (*key).to_owned(),
                datasources: BTreeSet::new(),
                purposes: BTreeSet::new(),
                join: Access { kind: "manual".into(), ..Access::default() },
                masked_joins: false,
                equalization: true,
            };
            let (pb, pa) = (b.map_or(&none, |p| p.as_ref()), a.map_or(&none, |p| p.as_ref()));
            let subject = Subject::Project { key: Arc::from(*key) };
            let join = a.map(|p| p.join.describe());
            for ds in pa.datasources.difference(&pb.datasources) {
                let t = Template::new(FindingKind::ProjectReachAdded, Direction::Widening)
                    .policy(key)
                    .now(format!("members join: {}", join.as_deref().unwrap_or("-")))
                    .sure(false, PROJECT);
                let subject = self.data_source(ds);
                self.findings.add(&t, subject);
            }
            for ds in pb.datasources.difference(&pa.datasources) {
                let t = Template::new(FindingKind::ProjectReachRemoved, Direction::Narrowing)
                    .policy(key)
                    .sure(false, PROJECT);
                let subject = self.data_source(ds);
                self.findings.add(&t, subject);
            }
            for (purposes, kind, direction) in [
                (
                    pa.purposes.difference(&pb.purposes).collect::<Vec<_>>(),
                    FindingKind::PurposeExceptionAdded,
                    Direction::Widening,
                ),
                (
                    pb.purposes.difference(&pa.purposes).collect::<Vec<_>>(),
                    FindingKind::PurposeExceptionRemoved,
                    Direction::Narrowing,
                ),
            ] {
                for purpose in purposes {
                    let (policies, level) = self.excepting(purpose);
                    if policies.is_empty() {
                        continue;
                    }
                    let what = format!(
                        "policies {} except from masking or row rules",
                        codes(policies.iter().map(String::as_str))
                    );
                    let mut t = Template::new(kind, direction)
                        .policy(key)
                        .who(format!("purpose `{purpose}`"))
                        .sure(level == Level::Certain, HIERARCHY);
                    t = if direction == Direction::Widening { t.now(what) } else { t.was(what) };
                    self.findings.add(&t, subject.clone());
                }
            }
            if b.is_some() && a.is_some() {
                for (direction, now) in access_changes(&pb.join, &pa.join, "join") {
                    let kind = match direction {
                        Direction::Widening => FindingKind::ProjectJoinWidened,
                        Direction::Narrowing => FindingKind::ProjectJoinNarrowed,
                    };
                    let reach = if pa.datasources.is_empty() && pa.purposes.is_empty() {
                        String::new()
                    } else {
                        format!(
                            "; it reaches {}",
                            pa.datasources
                                .iter()
                                .map(|d| format!("data source `{d}`"))
                                .chain(pa.purposes.iter().map(|p| format!("purpose `{p}`")))
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    };
                    let t = Template::new(kind, direction)
                        .policy(key)
                        .was(pb.join.describe())
                        .now(format!("{now}{reach}"));
                    self.findings.add(&t, subject.clone());
                }
            }
            let settings = [
                (
                    pb.masked_joins,
                    pa.masked_joins,
                    "members may join masked columns (`allowMaskedJoins: true`)",
                    "members may no longer join masked columns",
                    true,
                ),
                (
                    !pb.equalization,
                    !pa.equalization,
                    "equalization is off: members stop being reduced to a common view",
                    "equalization is on: members see a common view",
                    false,
                ),
            ];
            if a.is_some() {
                for (was, now, widened, narrowed, certain) in settings {
                    if was == now {
                        continue;
                    }
                    let t = if now {
                        Template::new(FindingKind::ProjectSettingWidened, Direction::Widening)
                            .now(widened)
                            .sure(
                                certain,
                                "equalization's effect is documented in a sentence only (rule P1)",
                            )
                    } else {
                        Template::new(FindingKind::ProjectSettingNarrowed, Direction::Narrowing)
                            .now(narrowed)
                    };
                    self.findings.add(&t.policy(key), subject.clone());
                }
            }
        }
    }

    /// A data-source subject by name (connection and table when a parsed table has it).
    fn data_source(&mut self, name: &str) -> Subject {
        let after = self.after;
        let names =
            self.names.get_or_insert_with(|| after.tables().map(|t| (t.name(), t)).collect());
        match names.get(name) {
            Some(t) => table_subject(t),
            None => Subject::DataSource {
                source: Arc::new(DataSourceRef {
                    data_source: name.to_owned(),
                    connection: Arc::from(""),
                    table: String::new(),
                }),
            },
        }
    }

    /// The after-side policies whose exceptions a project acting under `purpose` meets, and
    /// how surely (rule P2).
    fn excepting(&mut self, purpose: &str) -> (BTreeSet<String>, Level) {
        let after = self.after;
        let list = self.purposes.get_or_insert_with(|| {
            let mut v: Vec<(String, String)> = after
                .policies
                .values()
                .filter(|p| !p.staged)
                .flat_map(|p| {
                    p.rules
                        .iter()
                        .filter_map(|r| r.audience.exceptions.as_ref())
                        .flat_map(|e| e.purposes.iter())
                        .map(|x| (x.clone(), p.key.clone()))
                        .collect::<Vec<_>>()
                })
                .collect();
            v.sort();
            v.dedup();
            v
        });
        let mut policies = BTreeSet::new();
        let mut level = Level::No;
        for (named, key) in list.iter() {
            let l = crate::plan::impact::matching::purpose_meets(named, purpose);
            if l.possible() {
                policies.insert(key.clone());
                level = level.or(l);
            }
        }
        (policies, level)
    }
}
