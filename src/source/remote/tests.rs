use super::failure::{fetch_error_kind, is_corruption};
use super::transport::is_loopback;
use super::transport::tests::{key, token};
use super::*;

#[test]
fn urls_are_shown_without_passwords_or_tokens() {
    assert_eq!(
        redact_url("https://x-access-token:ghp_1@github.com/o/r.git"),
        "https://x-access-token:***@github.com/o/r.git"
    );
    assert_eq!(redact_url("https://ghp_1@github.com/o/r"), "https://***@github.com/o/r");
    assert_eq!(redact_url("ssh://git@host:22/o/r.git"), "ssh://git@host:22/o/r.git");
    assert_eq!(redact_url("git@github.com:o/r.git"), "git@github.com:o/r.git");
    assert_eq!(redact_url("https://host/a@b"), "https://host/a@b");
}

#[test]
fn messages_are_scrubbed_of_every_secret() {
    let mut config = GitSourceConfig::new("https://u:pw1@h/r", GitRef::Branch("m".into()), "/c");
    config.auth = token();
    let shown = redact_url(&config.url);
    let message = "failed https://u:pw1@h/r with ghp_secret and pw1";
    assert_eq!(scrub(&config, &shown, message), "failed https://u:***@h/r with *** and ***");
    config.auth = key();
    assert_eq!(scrub(&config, &shown, "bad -----BEGIN OPENSSH PRIVATE KEY-----\nabc\n"), "bad ***");
}

#[test]
fn refs_are_validated_and_mapped_to_one_refspec() {
    let branch = want(&GitRef::Branch("refs/heads/main".into())).unwrap();
    assert_eq!(
        branch,
        Want::Ref { remote: "refs/heads/main".into(), local: "refs/remotes/origin/main".into() }
    );
    assert_eq!(branch.refspec(), "+refs/heads/main:refs/remotes/origin/main");
    assert_eq!(
        want(&GitRef::Tag("v1".into())).unwrap(),
        Want::Ref { remote: "refs/tags/v1".into(), local: "refs/tags/v1".into() }
    );
    for bad in ["main:refs/heads/x", "a..b", "", "x y"] {
        assert!(
            matches!(want(&GitRef::Branch(bad.into())), Err(Error::InvalidRef { .. })),
            "{bad}"
        );
    }
    assert!(matches!(want(&GitRef::Commit("abc123".into())), Err(Error::InvalidRef { .. })));
    let id = "0123456789abcdef0123456789abcdef01234567";
    let commit = want(&GitRef::Commit(id.into())).unwrap();
    assert_eq!(commit, Want::Commit(ObjectId::from_hex(id.as_bytes()).unwrap()));
    assert_eq!(commit.refspec(), format!("+{id}:refs/pinned/commit"));
    assert_eq!(GitRef::Branch("refs/heads/main".into()).name(), "main");
}

#[test]
fn cache_names_are_readable_and_distinct_per_url() {
    let a = cache_name("https://github.com/org/immuta-specs.git");
    assert!(a.starts_with("immuta-specs-") && a.ends_with(".git"), "{a}");
    assert_ne!(a, cache_name("https://gitlab.com/org/immuta-specs.git"));
    assert!(cache_name("git@github.com:org/specs").starts_with("specs-"));
    assert!(cache_name("https://h/").starts_with("h-"));
    assert!(cache_name("file:///..").starts_with("repo-"));
}

#[test]
fn packs_are_counted_in_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(pack_count(&dir.path().join("missing.git")), 0);
    let pack = dir.path().join("objects/pack");
    std::fs::create_dir_all(&pack).unwrap();
    for name in ["pack-a.pack", "pack-a.idx", "pack-b.pack", "pack-c.keep"] {
        std::fs::write(pack.join(name), "").unwrap();
    }
    assert_eq!(pack_count(dir.path()), 2);
}

#[test]
fn only_damaged_local_data_counts_as_corruption() {
    let error = |m: gix::error::Message| gix::Error::from_error(m);
    assert!(is_corruption(&error(gix::error::corruption("bad pack checksum"))));
    let lock = std::io::Error::other("the lock file refs/remotes/origin/main.lock exists");
    assert!(is_corruption(&gix::Error::from_error(lock)));
    let auth = error(gix::error::unauthenticated("rejected"));
    assert!(!is_corruption(&auth));
    assert_eq!(fetch_error_kind(&auth), FetchErrorKind::Auth);
    let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
    let refused = gix::Error::from_error(refused);
    assert!(!is_corruption(&refused));
    assert_eq!(fetch_error_kind(&refused), FetchErrorKind::Network);
    assert!(!is_loopback(&gix::Url::try_from("http://example.com/r").unwrap()));
    assert!(is_loopback(&gix::Url::try_from("http://127.0.0.1:1/r").unwrap()));
}
