//! The tool's own schema in the state database: versioned migrations, applied once by the first
//! writer under a transaction-scoped advisory lock, and the version a database is at.

use tokio_postgres::Client;

use super::*;

/// The versioned schema: migration `i` takes the schema from version `i` to `i + 1`. Never edit
/// a released migration; add one.
pub const MIGRATIONS: &[&str] = &[
    // 1: states, objects, the journal and the lock holders.
    "CREATE TABLE immuta_gitops_states (
        tenant text NOT NULL,
        name text NOT NULL,
        version integer NOT NULL,
        serial bigint NOT NULL DEFAULT 0,
        revision text,
        key_id text,
        salt text NOT NULL DEFAULT '',
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant, name)
    );
    CREATE TABLE immuta_gitops_objects (
        tenant text NOT NULL,
        name text NOT NULL,
        kind text NOT NULL,
        key text NOT NULL,
        id bigint,
        digest text NOT NULL,
        payload text NOT NULL,
        prune boolean NOT NULL,
        revision text NOT NULL,
        applied_at text NOT NULL,
        names text[] NOT NULL DEFAULT '{}',
        PRIMARY KEY (tenant, name, kind, key),
        FOREIGN KEY (tenant, name) REFERENCES immuta_gitops_states ON DELETE CASCADE
    );
    CREATE TABLE immuta_gitops_journal (
        seq bigserial PRIMARY KEY,
        tenant text NOT NULL,
        name text NOT NULL,
        recorded_at timestamptz NOT NULL DEFAULT now(),
        holder text NOT NULL,
        op text NOT NULL,
        kind text,
        key text,
        detail text,
        FOREIGN KEY (tenant, name) REFERENCES immuta_gitops_states ON DELETE CASCADE
    );
    CREATE INDEX immuta_gitops_journal_state ON immuta_gitops_journal (tenant, name, seq);
    CREATE TABLE immuta_gitops_locks (
        tenant text NOT NULL,
        name text NOT NULL,
        holder text NOT NULL,
        backend_pid integer NOT NULL,
        acquired_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant, name)
    );",
    // 2: the repository's safety settings as last applied (`State::safety`, JSON).
    "ALTER TABLE immuta_gitops_states ADD COLUMN safety text;",
];

impl Inner {
    pub(super) async fn migrate(&self, client: &mut Client) -> Result<()> {
        let tx = client.transaction().await.map_err(self.db("migrating the schema"))?;
        tx.execute("SELECT pg_advisory_xact_lock($1, $2)", &[&LOCK_NAMESPACE, &MIGRATION_LOCK])
            .await
            .map_err(self.db("migrating the schema"))?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS immuta_gitops_schema (
                version integer PRIMARY KEY,
                applied_at timestamptz NOT NULL DEFAULT now()
            )",
        )
        .await
        .map_err(self.db("migrating the schema"))?;
        let row = tx
            .query_one("SELECT coalesce(max(version), 0) FROM immuta_gitops_schema", &[])
            .await
            .map_err(self.db("reading the schema version"))?;
        let found: i32 = row.get(0);
        let current = usize::try_from(found).unwrap_or(0);
        if current > MIGRATIONS.len() {
            return Err(Error::Schema { url: self.shown.clone(), found, known: MIGRATIONS.len() });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
            tx.batch_execute(sql).await.map_err(self.db("migrating the schema"))?;
            let version = i32::try_from(i + 1).unwrap_or(i32::MAX);
            tx.execute("INSERT INTO immuta_gitops_schema (version) VALUES ($1)", &[&version])
                .await
                .map_err(self.db("migrating the schema"))?;
            tracing::info!(database = %self.shown, version, "migrated the state schema");
        }
        tx.commit().await.map_err(self.db("migrating the schema"))
    }
}

/// The schema version of the database: `None` when it has no schema yet.
pub(super) async fn schema_version(client: &Client, inner: &Inner) -> Result<Option<i32>> {
    let row = client
        .query_one("SELECT to_regclass('immuta_gitops_schema') IS NOT NULL", &[])
        .await
        .map_err(inner.db("reading the schema version"))?;
    if !row.get::<_, bool>(0) {
        return Ok(None);
    }
    let row = client
        .query_one("SELECT coalesce(max(version), 0) FROM immuta_gitops_schema", &[])
        .await
        .map_err(inner.db("reading the schema version"))?;
    let found: i32 = row.get(0);
    if usize::try_from(found).unwrap_or(0) > MIGRATIONS.len() {
        return Err(Error::Schema { url: inner.shown.clone(), found, known: MIGRATIONS.len() });
    }
    Ok(Some(found))
}
