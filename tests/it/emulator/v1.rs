//! V1 reads: envelopes, paging, ordering and fields.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{Tenant, data_payload, tables};

fn ids(items: &Value) -> Vec<u64> {
    items.as_array().unwrap().iter().map(|i| i["id"].as_u64().unwrap()).collect()
}

#[tokio::test]
async fn projects_page_ten_at_a_time_by_default_in_id_order() {
    let t = Tenant::start().await;
    for i in 0..12 {
        let project = json!({"projectKey": format!("p{i:02}"), "name": format!("Project {i:02}")});
        assert_eq!(t.post("/api/v2/project", &project).await.status, StatusCode::OK);
    }
    let first = t.get("/project").await;
    assert_eq!(first.body["count"], 12);
    assert_eq!(ids(&first.body["hits"]), (1..=10).collect::<Vec<_>>());
    let rest = t.get("/project?offset=10").await;
    assert_eq!(ids(&rest.body["hits"]), [11, 12]);
    assert_eq!(rest.body["count"], 12);
    let small = t.get("/project?size=3&offset=2").await;
    assert_eq!(ids(&small.body["hits"]), [3, 4, 5]);
    assert_eq!(t.get("/project?size=many").await.status, StatusCode::BAD_REQUEST);
    let found = t.get("/project?searchText=project%2011").await;
    assert_eq!(found.body["count"], 1);
    assert_eq!(found.body["hits"][0]["projectKey"], "p11");
}

#[tokio::test]
async fn data_sources_list_as_hits_and_count_without_connection_keys() {
    let t = Tenant::start().await;
    let mut payload =
        data_payload("secret-key-name", "db.example.com", "SHOP", Some(tables(&["A", "B", "C"])));
    payload["connection"]["handler"] = json!("PostgreSQL");
    payload["connection"]["port"] = json!(5432);
    t.post_data(&payload).await;

    let page = t.get("/dataSource?size=2&offset=1").await;
    assert_eq!(page.body["count"], 3);
    assert_eq!(ids(&page.body["hits"]), [2, 3]);
    let item = &page.body["hits"][0];
    assert_eq!(item["name"], "public b");
    assert_eq!(item["blobHandlerType"], "PostgreSQL");
    assert_eq!(item["connectionString"], "svc@db.example.com:5432/SHOP");
    assert_eq!(item["remoteSchema"], "PUBLIC");
    assert_eq!(item["remoteTable"], "B");
    assert_eq!(item["status"], "passed");
    assert_eq!(item["deleted"], false);
    assert!(item["createdAt"].as_str().unwrap().ends_with('Z'));
    let text = t.get("/dataSource").await.body.to_string();
    assert!(!text.contains("connectionKey") && !text.contains("secret-key-name"), "{text}");

    let detail = t.get("/dataSource/1").await;
    assert_eq!(detail.body["columns"], json!([]), "open catalog: no columns known");
    assert_eq!(t.get("/dataSource/99").await.status, StatusCode::NOT_FOUND);
    assert_eq!(t.get("/dataSource/abc").await.status, StatusCode::BAD_REQUEST);
    assert_eq!(t.get("/dataSource?searchText=PUBLIC%20C").await.body["count"], 1);
}

#[tokio::test]
async fn purposes_policies_and_tags_use_their_own_envelopes() {
    let t = Tenant::start().await;
    t.post("/api/v2/purpose", &json!({"name": "Fraud", "description": "Catch it"})).await;
    let purposes = t.get("/governance/purpose").await;
    assert_eq!(purposes.body["count"], 1);
    let fraud = &purposes.body["purposes"][0];
    assert_eq!(fraud["name"], "Fraud");
    assert_eq!(fraud["description"], "Catch it");
    assert!(fraud["acknowledgement"].is_string());
    assert_eq!(t.get(&format!("/governance/purpose/{}", fraud["id"])).await.body["name"], "Fraud");

    let policy = json!({"policyKey": "s", "name": "Anyone", "type": "subscription",
                        "actions": {"type": "anyone"}, "circumstances": [{"type": "tags", "tag": "PII"}]});
    t.post("/api/v2/policy", &policy).await;
    let policies = t.get("/policy/global").await;
    assert!(policies.body.is_array());
    for field in
        ["id", "policyKey", "name", "type", "staged", "deleted", "actions", "circumstances"]
    {
        assert!(policies.body[0].get(field).is_some(), "policy field {field}");
    }
    assert_eq!(policies.body[0]["staged"], false);
    assert_eq!(t.get("/policy/global?searchText=nobody").await.body, json!([]));

    let mut payload = data_payload("k", "h", "d", Some(tables(&["A"])));
    payload["options"] = json!({"tableTags": ["Dept.Finance", "Dept"]});
    t.post_data(&payload).await;
    t.post("/api/v2/project", &json!({"projectKey": "p", "name": "P", "tags": ["Team.Risk"]}))
        .await;
    let tags = t.get("/tag").await;
    let names: Vec<&str> =
        tags.body.as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Dept", "Dept.Finance", "Team.Risk"]);
    assert!(
        tags.body
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["source"] == "curated" && t["deleted"] == false)
    );
    assert_eq!(tags.body[0]["hasLeafNodes"], true);
    let searched = t.get("/tag?searchText=finance").await;
    assert_eq!(searched.body.as_array().unwrap().len(), 1);
    assert_eq!(searched.body[0]["name"], "Dept.Finance");
}
