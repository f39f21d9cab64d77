//! A secret (a connection password from the environment) reaches the tenant and nothing else:
//! not the plan in any format, not a saved plan, not apply's output or logs, not the state.

use serde_json::{Value, json};

use crate::support::tenant::{Env, change, write_shop};

const CANARY: &str = "canary-secret-9c2e51";
const ROTATED: &str = "canary-rotated-77ab03";

fn digest(secret: &str) -> String {
    use sha2::{Digest, Sha256};
    format!("sha256:{}", hex::encode(Sha256::digest(secret.as_bytes())))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_reaches_the_tenant_and_nothing_else() {
    let mut env = Env::start().await;
    env.env = vec![("SHOP_PASSWORD".into(), CANARY.into()), ("RUST_LOG".into(), "debug".into())];
    write_shop(&env.specs);
    let out_dir = tempfile::tempdir().unwrap();
    let saved = out_dir.path().join("plan.json").display().to_string();
    let mut seen: Vec<(String, String)> = Vec::new();

    for (round, password) in [CANARY, ROTATED].into_iter().enumerate() {
        env.env[0].1 = password.into();
        for format in ["text", "json", "markdown"] {
            let run = env.plan(&["--format", format, "--out", &saved]).await.must_exit(0);
            seen.push((format!("plan --format {format} (round {round})"), run.text()));
            let file = std::fs::read_to_string(&saved).expect("saved plan");
            seen.push((format!("plan --out (round {round})"), file));
        }
        // A retried request that carries the password: its warning is logged.
        let data = json!({"method": "POST", "pathPrefix": "/api/v2/data", "status": 503});
        env.fault(data.clone()).await;
        let run = env.plan(&["--refresh"]).await.must_exit(0);
        assert!(run.stderr.contains("DEBUG"), "debug logs are on: {}", run.stderr);
        assert!(run.stderr.contains("retrying Immuta request"), "{}", run.stderr);
        seen.push((format!("plan --refresh (round {round})"), run.text()));
        env.fault(data).await;
        let run = env.apply(&["--refresh"]).await.must_exit(0);
        assert!(run.stderr.contains("retrying Immuta request"), "{}", run.stderr);
        seen.push((format!("apply (round {round})"), run.text()));
        seen.push((format!("state (round {round})"), env.state_file().to_string()));

        // The value itself did reach the tenant (which keeps a digest of it).
        let tenant = env.tenant().await;
        assert_eq!(
            tenant["connections"]["shop"]["payload"]["connection"]["password"],
            digest(password)
        );
        seen.push((format!("tenant (round {round})"), tenant.to_string()));
        let log = env.requests().await;
        let text = Value::Array(log.clone()).to_string();
        assert!(text.contains(r#""password":"***""#), "the request log masks it");
        seen.push((format!("request log (round {round})"), text));

        if round == 0 {
            // Rotate the password: the plan says it changed, and nothing more.
            env.env[0].1 = ROTATED.into();
            let plan = env.plan_json(&[]).await;
            let c = change(&plan, "datasource", "shop");
            assert_eq!(c["action"], "update", "{c:#}");
            let field = &c["fields"][0];
            assert_eq!(field["path"], "connection.password");
            assert_eq!(field["sensitive"], true);
            assert_eq!(field["after"], "(sensitive, changed)");
            let text = env.plan(&[]).await.stdout;
            assert!(text.contains("(sensitive, changed)"), "{text}");
            seen.push(("plan of the rotation".into(), format!("{plan}{text}")));
        }
    }
    for (what, text) in &seen {
        for secret in [CANARY, ROTATED] {
            assert!(!text.contains(secret), "{what} shows the secret:\n{text}");
        }
    }
}
