//! `immuta-gitops emulator`: the binary serves, announces its address, and never prints keys.

use std::ffi::OsStr;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStderr, Command};

use crate::support::json_answer;

const KEY: &str = "cli-secret-key-0b7e";

#[tokio::test]
async fn the_subcommand_serves_a_tenant_that_lists_what_was_posted() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = dir.path().join("catalog.yaml");
    std::fs::write(
        &catalog,
        "connections:\n  - hostname: warehouse.local\n    database: SHOP\n    schemas:\n      \
         PUBLIC:\n        CUSTOMERS: [{name: ID, dataType: integer}]\n        \
         ORDERS: [{name: ID, dataType: integer}]\n",
    )
    .unwrap();
    let emulator = Served::start(&[
        "--api-key".as_ref(),
        format!("{KEY}=CREATE_DATA_SOURCE").as_ref(),
        "--catalog".as_ref(),
        catalog.as_os_str(),
        "--data-file".as_ref(),
        dir.path().join("tenant.json").as_os_str(),
    ])
    .await;
    let base = emulator.base.clone();

    let http = reqwest::Client::new();
    let payload = json!({
        "connectionKey": "shop",
        "connection": {"handler": "PostgreSQL", "hostname": "warehouse.local", "port": 5432,
                       "database": "SHOP", "username": "svc", "password": "pw"},
    });
    // `wait=-1`: the answer comes once the data sources exist (created in the background).
    let post = http.post(format!("{base}/api/v2/data?wait=-1")).header("Authorization", KEY);
    let posted = json_answer(post.json(&payload)).await;
    assert_eq!(posted["creating"], json!(["public customers", "public orders"]));

    let list = http.get(format!("{base}/dataSource"));
    let listed = json_answer(list.header("Authorization", format!("Bearer {KEY}"))).await;
    assert_eq!(listed["count"], 2);
    assert_eq!(listed["hits"][1]["name"], "public orders");

    let forbidden = http
        .post(format!("{base}/api/v2/purpose"))
        .header("Authorization", KEY)
        .json(&json!({"name": "P"}))
        .send()
        .await
        .unwrap();
    assert_eq!(forbidden.status(), reqwest::StatusCode::FORBIDDEN);

    let printed = emulator.stop().await;
    assert!(printed.iter().all(|l| !l.contains(KEY)), "a key was printed: {printed:?}");
}

/// `immuta-gitops emulator --listen 127.0.0.1:0 ARGS...`, started, with the base URL it
/// announced on stderr.
struct Served {
    child: Child,
    lines: Lines<BufReader<ChildStderr>>,
    printed: Vec<String>,
    base: String,
}

impl Served {
    async fn start(args: &[&OsStr]) -> Served {
        let mut child = Command::new(env!("CARGO_BIN_EXE_immuta-gitops"))
            .args(["emulator", "--listen", "127.0.0.1:0"])
            .args(args)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("the binary starts");
        let stderr = child.stderr.take().expect("stderr is piped");
        let mut lines = BufReader::new(stderr).lines();
        let mut printed = Vec::new();
        let base = tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(line) = lines.next_line().await.expect("stderr is readable") {
                printed.push(line.clone());
                if let Some(url) = line.strip_prefix("immuta emulator listening on ") {
                    return url.to_owned();
                }
            }
            panic!("the emulator exited without announcing its address: {printed:?}");
        })
        .await
        .expect("the address is announced promptly");
        assert!(base.starts_with("http://127.0.0.1:") && !base.ends_with(":0"), "{base}");
        Served { child, lines, printed, base }
    }

    /// Stops the process; answers everything it printed on stderr.
    async fn stop(mut self) -> Vec<String> {
        self.child.start_kill().expect("the emulator can be stopped");
        let _ = self.child.wait().await;
        while let Ok(Some(line)) = self.lines.next_line().await {
            self.printed.push(line);
        }
        self.printed
    }
}

/// One `curl` call of the README: method, URL, headers and body, as written.
#[derive(Debug)]
struct Curl {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Option<String>,
}

/// The `curl` calls of the README's "The emulator" section, parsed from its `sh` block (single
/// quotes and backslash line continuations, which is all the README uses).
fn readme_curls() -> Vec<Curl> {
    let readme = std::fs::read_to_string(crate::support::repo_root().join("README.md"))
        .expect("README.md is readable");
    let section = readme.split("\n## The emulator\n").nth(1).expect("README has the section");
    let block = section.split("```sh\n").nth(1).and_then(|b| b.split("\n```").next());
    let block = block.expect("the section has an sh block").replace("\\\n", " ");
    let mut curls = Vec::new();
    for words in shell_commands(&block).into_iter().filter(|w| w[0] == "curl") {
        let mut curl =
            Curl { method: "GET".into(), url: String::new(), headers: Vec::new(), body: None };
        let mut words = words.into_iter().skip(1);
        while let Some(word) = words.next() {
            match word.as_str() {
                "-s" => {}
                "-X" => curl.method = words.next().expect("a method after -X"),
                "-H" => {
                    let header = words.next().expect("a header after -H");
                    let (name, value) = header.split_once(':').expect("a `Name: value` header");
                    curl.headers.push((name.trim().to_owned(), value.trim().to_owned()));
                }
                "-d" => curl.body = Some(words.next().expect("a body after -d")),
                url if url.starts_with("http://") => curl.url = url.to_owned(),
                other => panic!("the README's curl uses {other:?}, which this test does not know"),
            }
        }
        curls.push(curl);
    }
    curls
}

/// Splits shell text into commands of words: blanks separate words, unquoted newlines separate
/// commands, single quotes group (newlines included).
fn shell_commands(text: &str) -> Vec<Vec<String>> {
    let mut commands = Vec::new();
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                word.get_or_insert_with(String::new);
            }
            c if c.is_whitespace() && !quoted => {
                words.extend(word.take());
                if c == '\n' && !words.is_empty() {
                    commands.push(std::mem::take(&mut words));
                }
            }
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    assert!(!quoted, "unbalanced quote in {text:?}");
    words.extend(word);
    if !words.is_empty() {
        commands.push(words);
    }
    commands
}

#[tokio::test]
async fn the_readme_curl_example_posts_a_data_source_and_lists_it_back() {
    let curls = readme_curls();
    assert_eq!(curls.len(), 2, "{curls:#?}");
    let emulator = Served::start(&[]).await;
    let http = reqwest::Client::new();
    let mut answers = Vec::new();
    for curl in &curls {
        let path = curl.url.strip_prefix("http://127.0.0.1:8080").expect("the README's address");
        let method = reqwest::Method::from_bytes(curl.method.as_bytes()).expect("a method");
        let mut request = http.request(method, format!("{}{path}", emulator.base));
        for (name, value) in &curl.headers {
            request = request.header(name, value);
        }
        if let Some(body) = &curl.body {
            request = request.body(body.clone());
        }
        if !answers.is_empty() {
            // A person types the second command after the data source was created in the
            // background (100 ms by default).
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let response = request.send().await.expect("answered");
        assert_eq!(response.status(), reqwest::StatusCode::OK, "{curl:?}");
        answers.push(response.json::<Value>().await.expect("a JSON answer"));
    }
    assert_eq!(curls[0].url, "http://127.0.0.1:8080/api/v2/data");
    assert_eq!(answers[0]["creating"], json!(["default customers"]), "{}", answers[0]);
    assert_eq!(curls[1].url, "http://127.0.0.1:8080/dataSource");
    let listed = &answers[1];
    assert_eq!(listed["count"], 1, "{listed}");
    assert_eq!(listed["hits"][0]["name"], "default customers");
    assert_eq!(listed["hits"][0]["blobHandlerType"], "Databricks");
    assert_eq!(listed["hits"][0]["remoteTable"], "customers");
    assert!(!listed.to_string().contains("not-a-secret"), "{listed}");
    emulator.stop().await;
}

#[test]
fn variant_list_names_every_dimension_and_a_bad_variant_is_refused() {
    let out = crate::support::bin().args(["emulator", "--variant", "list"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", crate::support::output_text(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in
        ["paging:", "  ignored-by-policies: ", "purposes:", "  nested (default): ", "source: "]
    {
        assert!(text.contains(needle), "{needle}: {text}");
    }
    let out = crate::support::bin()
        .args(["emulator", "--listen", "127.0.0.1:0", "--variant", "paging=sometimes"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = crate::support::output_text(&out);
    assert!(text.contains("invalid variant: unknown paging \"sometimes\""), "{text}");
}
