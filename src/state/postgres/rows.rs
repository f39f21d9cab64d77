//! The state as rows: reading a state, creating it, recording one object (its row and its
//! journal row in one transaction), trimming the journal, and replacing a whole state.

use super::schema::schema_version;
use super::*;
use crate::state::Payload;

pub(super) fn kind_of(text: &str) -> Option<Kind> {
    Kind::ALL.into_iter().find(|k| k.as_str() == text)
}

impl PgStore {
    pub(super) async fn load_state(&self) -> store::Result<Option<State>> {
        let inner = &self.inner;
        let guard = inner.conn().await?;
        let Some(conn) = guard.as_ref() else { return Ok(None) };
        let (tenant, name) = (&inner.tenant, &inner.name);
        let state = inner
            .timed("reading the state", async {
                if schema_version(&conn.client, inner).await?.is_none() {
                    return Ok(None); // no schema: nothing was ever applied here
                }
                let head = conn
                    .client
                    .query_opt(
                        "SELECT version, serial, revision, key_id, salt, safety FROM immuta_gitops_states \
                         WHERE tenant = $1 AND name = $2",
                        &[tenant, name],
                    )
                    .await
                    .map_err(inner.db("reading the state"))?;
                let Some(head) = head else { return Ok(None) };
                let version: i32 = head.get(0);
                if u32::try_from(version).map_or(true, |v| v > STATE_VERSION) {
                    return Err(Error::Corrupt {
                        url: inner.shown.clone(),
                        message: format!(
                            "the state has format version {version}; this immuta-gitops \
                             understands {STATE_VERSION}: upgrade immuta-gitops"
                        ),
                    });
                }
                let rows = conn
                    .client
                    .query(
                        "SELECT kind, key, id, digest, payload, prune, revision, applied_at, names \
                         FROM immuta_gitops_objects WHERE tenant = $1 AND name = $2",
                        &[tenant, name],
                    )
                    .await
                    .map_err(inner.db("reading the state"))?;
                let mut objects = Vec::with_capacity(rows.len());
                for row in &rows {
                    let kind: &str = row.get(0);
                    let key: String = row.get(1);
                    let corrupt = |message: String| Error::Corrupt {
                        url: inner.shown.clone(),
                        message: format!("object {kind} {key:?}: {message}"),
                    };
                    let Some(kind_value) = kind_of(kind) else {
                        return Err(corrupt("unknown kind".into()));
                    };
                    let payload: &str = row.get(4);
                    let payload =
                        Payload::from_json(payload).map_err(|e| corrupt(e.to_string()))?;
                    objects.push(Entry {
                        kind: kind_value,
                        key,
                        id: row.get(2),
                        digest: row.get(3),
                        payload,
                        prune: row.get(5),
                        revision: row.get(6),
                        applied_at: row.get(7),
                        names: row.get(8),
                    });
                }
                objects.sort_by(|a, b| (a.kind, &a.key).cmp(&(b.kind, &b.key)));
                Ok(Some(State {
                    version: STATE_VERSION,
                    tenant: tenant.clone(),
                    salt: head.get(4),
                    key_id: head.get(3),
                    serial: u64::try_from(head.get::<_, i64>(1)).unwrap_or(0),
                    revision: head.get(2),
                    objects,
                    safety: head
                        .get::<_, Option<String>>(5)
                        .map(|text| {
                            serde_json::from_str(&text).map_err(|e| Error::Corrupt {
                                url: inner.shown.clone(),
                                message: format!("the recorded safety settings are unreadable: {e}"),
                            })
                        })
                        .transpose()?,
                }))
            })
            .await?;
        Ok(state)
    }

    /// The conn of a writer: the lock must be held by this session.
    pub(super) async fn writer(&self) -> store::Result<tokio::sync::MutexGuard<'_, Option<Conn>>> {
        let inner = &self.inner;
        if !inner.locked.load(Ordering::SeqCst) {
            return Err(Error::NotLocked { url: inner.shown.clone() }.into());
        }
        inner.conn().await
    }

    pub(super) async fn create_state(&self, state: &State) -> store::Result<()> {
        let inner = &self.inner;
        let mut guard = self.writer().await?;
        let Some(conn) = guard.as_mut() else { return Ok(()) };
        inner
            .timed("creating the state", async {
                let tx = conn.client.transaction().await.map_err(inner.db("creating the state"))?;
                write_head(&tx, inner, state).await?;
                journal(&tx, inner, "create", None, None, Some(&state.tenant)).await?;
                tx.commit().await.map_err(inner.db("creating the state"))
            })
            .await?;
        Ok(())
    }

    pub(super) async fn record_one(&self, record: &Record) -> store::Result<()> {
        let inner = &self.inner;
        let mut guard = self.writer().await?;
        let Some(conn) = guard.as_mut() else { return Ok(()) };
        let (tenant, name) = (&inner.tenant, &inner.name);
        inner
            .timed("recording progress", async {
                let what = "recording progress";
                let tx = conn.client.transaction().await.map_err(inner.db(what))?;
                match record {
                    Record::Upsert { entry } => {
                        insert_objects(&tx, inner, std::slice::from_ref(entry)).await?;
                        let kind = entry.kind.as_str();
                        journal(
                            &tx,
                            inner,
                            "upsert",
                            Some(kind),
                            Some(&entry.key),
                            Some(&entry.digest),
                        )
                        .await?;
                    }
                    Record::Remove { kind, key } => {
                        tx.execute(
                            "DELETE FROM immuta_gitops_objects \
                             WHERE tenant = $1 AND name = $2 AND kind = $3 AND key = $4",
                            &[tenant, name, &kind.as_str(), key],
                        )
                        .await
                        .map_err(inner.db(what))?;
                        journal(&tx, inner, "remove", Some(kind.as_str()), Some(key), None).await?;
                    }
                    Record::Revision { revision } => {
                        tx.execute(
                            "UPDATE immuta_gitops_states SET revision = $3 \
                             WHERE tenant = $1 AND name = $2",
                            &[tenant, name, revision],
                        )
                        .await
                        .map_err(inner.db(what))?;
                        journal(&tx, inner, "revision", None, None, Some(revision)).await?;
                    }
                    Record::Safety { settings } => {
                        let text = safety_text(Some(settings));
                        tx.execute(
                            "UPDATE immuta_gitops_states SET safety = $3 \
                             WHERE tenant = $1 AND name = $2",
                            &[tenant, name, &text],
                        )
                        .await
                        .map_err(inner.db(what))?;
                        journal(&tx, inner, "safety", None, None, text.as_deref()).await?;
                    }
                    Record::Key { key_id } => {
                        tx.execute(
                            "UPDATE immuta_gitops_states SET key_id = $3, version = $4 \
                             WHERE tenant = $1 AND name = $2",
                            &[tenant, name, key_id, &(STATE_VERSION as i32)],
                        )
                        .await
                        .map_err(inner.db(what))?;
                        journal(&tx, inner, "key", None, None, Some(key_id)).await?;
                    }
                }
                let bumped = tx
                    .execute(
                        "UPDATE immuta_gitops_states SET serial = serial + 1, updated_at = now() \
                         WHERE tenant = $1 AND name = $2",
                        &[tenant, name],
                    )
                    .await
                    .map_err(inner.db(what))?;
                if bumped != 1 {
                    return Err(Error::Corrupt {
                        url: inner.shown.clone(),
                        message: format!("the state `{name}` of {tenant} is gone"),
                    });
                }
                tx.commit().await.map_err(inner.db(what))
            })
            .await?;
        Ok(())
    }

    pub(super) async fn trim_journal(&self) -> store::Result<()> {
        let inner = &self.inner;
        let guard = self.writer().await?;
        let Some(conn) = guard.as_ref() else { return Ok(()) };
        inner
            .timed("trimming the journal", async {
                conn.client
                    .execute(
                        "DELETE FROM immuta_gitops_journal WHERE tenant = $1 AND name = $2 AND seq <= \
                         (SELECT max(seq) FROM immuta_gitops_journal WHERE tenant = $1 AND name = $2) - $3",
                        &[&inner.tenant, &inner.name, &JOURNAL_KEPT],
                    )
                    .await
                    .map_err(inner.db("trimming the journal"))
            })
            .await?;
        Ok(())
    }

    pub(super) async fn replace_state(&self, state: &State) -> store::Result<()> {
        let inner = &self.inner;
        let mut guard = self.writer().await?;
        let Some(conn) = guard.as_mut() else { return Ok(()) };
        inner
            .timed("writing the state", async {
                let what = "writing the state";
                let tx = conn.client.transaction().await.map_err(inner.db(what))?;
                write_head(&tx, inner, state).await?;
                tx.execute(
                    "DELETE FROM immuta_gitops_objects WHERE tenant = $1 AND name = $2",
                    &[&inner.tenant, &inner.name],
                )
                .await
                .map_err(inner.db(what))?;
                for chunk in state.objects.chunks(2_000) {
                    insert_objects(&tx, inner, chunk).await?;
                }
                let count = state.objects.len().to_string();
                journal(&tx, inner, "replace", None, None, Some(&count)).await?;
                tx.commit().await.map_err(inner.db(what))
            })
            .await?;
        Ok(())
    }
}

pub(super) async fn write_head(
    tx: &tokio_postgres::Transaction<'_>,
    inner: &Inner,
    state: &State,
) -> Result<()> {
    let serial = i64::try_from(state.serial).unwrap_or(i64::MAX);
    tx.execute(
        "INSERT INTO immuta_gitops_states \
         (tenant, name, version, serial, revision, key_id, salt, safety) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (tenant, name) DO UPDATE SET \
         version = $3, serial = $4, revision = $5, key_id = $6, salt = $7, safety = $8, \
         updated_at = now()",
        &[
            &inner.tenant,
            &inner.name,
            &(STATE_VERSION as i32),
            &serial,
            &state.revision,
            &state.key_id,
            &state.salt,
            &safety_text(state.safety.as_ref()),
        ],
    )
    .await
    .map_err(inner.db("writing the state"))?;
    Ok(())
}

/// The safety settings as stored (JSON text).
fn safety_text(settings: Option<&crate::state::SafetySettings>) -> Option<String> {
    settings.and_then(|s| serde_json::to_string(s).ok())
}

/// Upserts `entries` in one statement.
pub(super) async fn insert_objects(
    tx: &tokio_postgres::Transaction<'_>,
    inner: &Inner,
    entries: &[Entry],
) -> Result<()> {
    let kinds: Vec<&str> = entries.iter().map(|e| e.kind.as_str()).collect();
    let keys: Vec<&str> = entries.iter().map(|e| e.key.as_str()).collect();
    let ids: Vec<Option<i64>> = entries.iter().map(|e| e.id).collect();
    let digests: Vec<&str> = entries.iter().map(|e| e.digest.as_str()).collect();
    let payloads: Vec<String> = entries.iter().map(|e| e.payload.to_json()).collect();
    let prunes: Vec<bool> = entries.iter().map(|e| e.prune).collect();
    let revisions: Vec<&str> = entries.iter().map(|e| e.revision.as_str()).collect();
    let applied: Vec<&str> = entries.iter().map(|e| e.applied_at.as_str()).collect();
    // Arrays of arrays cannot be unnested: names travel as JSON text.
    let names: Vec<String> = entries
        .iter()
        .map(|e| serde_json::to_string(&e.names).unwrap_or_else(|_| "[]".into()))
        .collect();
    tx.execute(
        "INSERT INTO immuta_gitops_objects \
         (tenant, name, kind, key, id, digest, payload, prune, revision, applied_at, names) \
         SELECT $1, $2, k, ky, i, d, p, pr, r, a, \
           ARRAY(SELECT jsonb_array_elements_text(n::jsonb)) \
         FROM unnest($3::text[], $4::text[], $5::bigint[], $6::text[], $7::text[], $8::bool[], \
                     $9::text[], $10::text[], $11::text[]) AS u(k, ky, i, d, p, pr, r, a, n) \
         ON CONFLICT (tenant, name, kind, key) DO UPDATE SET id = excluded.id, \
           digest = excluded.digest, payload = excluded.payload, prune = excluded.prune, \
           revision = excluded.revision, applied_at = excluded.applied_at, names = excluded.names",
        &[
            &inner.tenant,
            &inner.name,
            &kinds,
            &keys,
            &ids,
            &digests,
            &payloads,
            &prunes,
            &revisions,
            &applied,
            &names,
        ],
    )
    .await
    .map_err(inner.db("writing objects"))?;
    Ok(())
}

pub(super) async fn journal(
    tx: &tokio_postgres::Transaction<'_>,
    inner: &Inner,
    op: &str,
    kind: Option<&str>,
    key: Option<&str>,
    detail: Option<&str>,
) -> Result<()> {
    tx.execute(
        "INSERT INTO immuta_gitops_journal (tenant, name, holder, op, kind, key, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[&inner.tenant, &inner.name, &inner.holder, &op, &kind, &key, &detail],
    )
    .await
    .map_err(inner.db("journaling"))?;
    Ok(())
}
