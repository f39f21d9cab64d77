//! The one-writer lock: a session-level advisory lock on the store's connection, its holder's
//! name for the others, and the watch that notices when the session (and so the lock) is lost.

use super::*;

/// The advisory lock keys of one state.
pub(super) fn lock_key(tenant: &str, name: &str) -> (i32, i32) {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{tenant}\0{name}"));
    let key = i32::from_be_bytes([digest[0] & 0x7f, digest[1], digest[2], digest[3]]);
    (LOCK_NAMESPACE, key)
}

impl PgStore {
    pub(super) async fn lock(&self) -> store::Result<store::Lock> {
        let inner = &self.inner;
        let mut guard = inner.conn().await?;
        let Some(conn) = guard.as_mut() else {
            return Err(store::Error::LockLost {
                state: inner.describe(),
                reason: "no connection".into(),
            });
        };
        // A writer: the schema is created or migrated now (once per process).
        if !inner.migrated.load(Ordering::SeqCst) {
            inner.timed("migrating the schema", inner.migrate(&mut conn.client)).await?;
            inner.migrated.store(true, Ordering::SeqCst);
        }
        let conn = &*conn;
        let (k1, k2) = lock_key(&inner.tenant, &inner.name);
        let got: bool = inner
            .timed("taking the writer lock", async {
                conn.client
                    .query_one("SELECT pg_try_advisory_lock($1, $2)", &[&k1, &k2])
                    .await
                    .map(|r| r.get(0))
                    .map_err(inner.db("taking the writer lock"))
            })
            .await?;
        if !got {
            // `pg_locks` lists the advisory locks of every database on the server: only this
            // database's holder is ours (another database may use the same keys).
            let holder = inner
                .timed("naming the lock holder", async {
                    let row = conn
                        .client
                        .query_opt(
                            "SELECT coalesce(k.holder, 'database session ' || l.pid) \
                             FROM pg_locks l LEFT JOIN immuta_gitops_locks k \
                               ON k.backend_pid = l.pid AND k.tenant = $3 AND k.name = $4 \
                             WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 \
                               AND l.classid::bigint = $1 AND l.objid::bigint = $2 \
                               AND l.database = (SELECT oid FROM pg_database \
                                                 WHERE datname = current_database()) \
                             LIMIT 1",
                            &[&i64::from(k1), &i64::from(k2), &inner.tenant, &inner.name],
                        )
                        .await
                        .map_err(inner.db("naming the lock holder"))?;
                    Ok(row.map(|r| r.get::<_, String>(0)))
                })
                .await?;
            return Err(store::Error::Locked {
                state: inner.describe(),
                holder: holder.unwrap_or_else(|| "another process (it just let go: retry)".into()),
            });
        }
        inner
            .timed("naming the lock holder", async {
                conn.client
                    .execute(
                        "INSERT INTO immuta_gitops_locks (tenant, name, holder, backend_pid) \
                         VALUES ($1, $2, $3, pg_backend_pid()) ON CONFLICT (tenant, name) DO UPDATE \
                         SET holder = $3, backend_pid = pg_backend_pid(), acquired_at = now()",
                        &[&inner.tenant, &inner.name, &inner.holder],
                    )
                    .await
                    .map_err(inner.db("naming the lock holder"))
            })
            .await?;
        inner.locked.store(true, Ordering::SeqCst);
        let lost = CancellationToken::new();
        let stop = CancellationToken::new();
        tokio::spawn(watch_session(
            Arc::clone(&self.inner),
            conn.closed.clone(),
            lost.clone(),
            stop.clone(),
        ));
        drop(guard);
        let held = Held { inner: Arc::clone(&self.inner), stop, keys: (k1, k2) };
        Ok(store::Lock::new(Box::new(held), lost))
    }
}

/// The lock holder's watch: the lock is lost when the session ends or stops answering.
pub(super) async fn watch_session(
    inner: Arc<Inner>,
    closed: CancellationToken,
    lost: CancellationToken,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = closed.cancelled() => break,
            () = tokio::time::sleep(HEALTH_EVERY) => {}
        }
        // Waiting for the connection is not a failure (a record holds it, under its own
        // timeout); a check that gets no answer is.
        let guard = inner.conn.lock().await;
        let alive = match guard.as_ref() {
            Some(c) => tokio::time::timeout(HEALTH_TIMEOUT, c.client.simple_query("SELECT 1"))
                .await
                .is_ok_and(|answer| answer.is_ok()),
            None => false,
        };
        drop(guard);
        if !alive {
            break;
        }
    }
    if stop.is_cancelled() {
        return;
    }
    tracing::warn!(state = %inner.describe(), "lost the writer lock: the database session ended");
    // Whatever state the session is in, it holds no lock any more for the writer's purposes.
    if let Ok(mut guard) = tokio::time::timeout(HEALTH_TIMEOUT, inner.conn.lock()).await {
        *guard = None;
    }
    inner.locked.store(false, Ordering::SeqCst);
    lost.cancel();
}

/// The held lock: dropping it lets go.
pub(super) struct Held {
    inner: Arc<Inner>,
    stop: CancellationToken,
    keys: (i32, i32),
}

impl Drop for Held {
    fn drop(&mut self) {
        self.stop.cancel();
        if !self.inner.locked.swap(false, Ordering::SeqCst) {
            return;
        }
        let inner = Arc::clone(&self.inner);
        let (k1, k2) = self.keys;
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let guard = inner.conn.lock().await;
                if let Some(c) = guard.as_ref() {
                    let _ =
                        c.client.execute("SELECT pg_advisory_unlock($1, $2)", &[&k1, &k2]).await;
                }
            });
        }
    }
}
