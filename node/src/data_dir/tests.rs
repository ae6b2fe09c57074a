//! Init, open and bind round trips, and every refusal naming the file at fault.

use super::config::CONFIG_TEMPLATE;
use super::files::write_atomic;
use super::*;
use std::os::unix::fs::PermissionsExt;
use wsis_protocol::op::{Country, StakeholderType};

fn options(stakeholder: StakeholderType, country: Option<&str>) -> InitOptions {
    InitOptions {
        name: "Example Organisation".into(),
        stakeholder,
        country: country.map(|c| Country::new(c).expect("valid test country")),
    }
}

#[test]
fn errors_are_small() {
    // Callers wrap these in their own enums; clippy's `result_large_err` fires above 128 bytes.
    for (name, size) in [
        ("InitError", std::mem::size_of::<InitError>()),
        ("OpenError", std::mem::size_of::<OpenError>()),
        ("BindError", std::mem::size_of::<BindError>()),
    ] {
        eprintln!("{name}: {size} bytes");
        assert!(size <= 72, "{name} is {size} bytes");
    }
}

#[test]
fn the_template_parses_to_the_defaults() {
    let parsed: Config = toml::from_str(CONFIG_TEMPLATE).expect("template parses");
    assert_eq!(parsed, Config::default());
}

#[test]
fn init_then_open_round_trips() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("data");
    let made = DataDir::init(&path, options(StakeholderType::Academia, None)).expect("init");
    let opened = DataDir::open(&path).expect("open");
    assert_eq!(opened.org_id(), made.org_id());
    assert_eq!(opened.org_key().public(), made.org_key().public());
    assert_eq!(opened.node_key_seed(), made.node_key_seed());
    assert_eq!(opened.api_token(), made.api_token());
    assert_eq!(opened.config(), &Config::default());
    assert_eq!(opened.inception().body().name, "Example Organisation");
    assert!(opened.check_api_token(made.api_token()));
    assert!(!opened.check_api_token(&"0".repeat(64)));
    for name in [
        ORG_KEY_FILE,
        NODE_KEY_FILE,
        API_TOKEN_FILE,
        INCEPTION_FILE,
        CONFIG_FILE,
    ] {
        let mode = fs::metadata(path.join(name))
            .expect("file exists")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{name} is private");
    }
    assert!(path.join(DB_DIR).is_dir());
    assert!(!format!("{opened:?}").contains(opened.api_token()));
}

#[test]
fn a_government_needs_a_country() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err =
        DataDir::init(dir.path(), options(StakeholderType::Government, None)).expect_err("refused");
    assert!(matches!(err, InitError::CountryRequired), "{err}");
    assert!(err.to_string().contains("country"));
    // Nothing was written.
    assert_eq!(fs::read_dir(dir.path()).expect("readable").count(), 0);
    DataDir::init(dir.path(), options(StakeholderType::Government, Some("KE")))
        .expect("with a country");
}

#[test]
fn an_empty_name_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut o = options(StakeholderType::CivilSociety, None);
    o.name = "  ".into();
    assert!(matches!(
        DataDir::init(dir.path(), o),
        Err(InitError::InvalidName { .. })
    ));
}

#[test]
fn bind_keeps_comments_and_refuses_another_federation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut d = DataDir::init(dir.path(), options(StakeholderType::Academia, None)).expect("init");
    let fed = FederationId([7; 32]);
    d.bind_federation(fed).expect("bind");
    d.bind_federation(fed).expect("binding again is a no-op");
    let text = fs::read_to_string(dir.path().join(CONFIG_FILE)).expect("config");
    assert!(text.contains("# Discover other nodes"), "comments kept");
    assert!(text.contains(&format!("federation = \"{fed}\"")));
    let reopened = DataDir::open(dir.path()).expect("open");
    assert_eq!(reopened.federation(), Some(fed));
    let other = FederationId([8; 32]);
    let mut again = reopened;
    assert!(matches!(
        again.bind_federation(other),
        Err(BindError::WrongFederation { found, expected }) if found == fed && expected == other
    ));
}

#[test]
fn a_key_file_readable_by_others_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().expect("tempdir");
    DataDir::init(dir.path(), options(StakeholderType::Academia, None)).expect("init");
    let key = dir.path().join(ORG_KEY_FILE);
    fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).expect("chmod");
    let err = DataDir::open(dir.path()).expect_err("refused");
    assert!(
        matches!(&err, OpenError::InsecurePermissions { path, mode: 0o644 } if path == &key),
        "{err}"
    );
    let msg = err.to_string();
    assert!(msg.contains(&key.display().to_string()), "{msg}");
    assert!(
        msg.contains(&format!("chmod 600 {}", key.display())),
        "{msg}"
    );
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).expect("chmod");
    DataDir::open(dir.path()).expect("fixed");
}

#[test]
fn a_second_init_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = DataDir::init(dir.path(), options(StakeholderType::Academia, None)).expect("init");
    let err =
        DataDir::init(dir.path(), options(StakeholderType::Academia, None)).expect_err("refused");
    assert!(matches!(err, InitError::AlreadyInitialised { .. }), "{err}");
    assert!(err.to_string().contains("already initialised"));
    let again = DataDir::open(dir.path()).expect("open");
    assert_eq!(again.org_id(), first.org_id());
}

#[test]
fn a_missing_file_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    DataDir::init(dir.path(), options(StakeholderType::Academia, None)).expect("init");
    let inception = dir.path().join(INCEPTION_FILE);
    fs::remove_file(&inception).expect("remove");
    let err = DataDir::open(dir.path()).expect_err("refused");
    assert!(
        matches!(&err, OpenError::Missing { path } if path == &inception),
        "{err}"
    );
    assert!(DataDir::open(dir.path().join("nowhere")).is_err());
}

#[test]
fn the_wrong_federation_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut d = DataDir::init(dir.path(), options(StakeholderType::Academia, None)).expect("init");
    let ours = FederationId([1; 32]);
    let mut theirs = ours;
    theirs.0[31] ^= 1; // differs only in the last byte
    d.check_federation(theirs)
        .expect("an unbound directory has no federation yet");
    d.bind_federation(ours).expect("bind");
    d.check_federation(ours).expect("ours");
    let err = DataDir::open(dir.path())
        .expect("open")
        .check_federation(theirs)
        .expect_err("refused");
    assert!(
        matches!(err, OpenError::WrongFederation { found, expected } if found == ours && expected == theirs),
        "{err}"
    );
    assert!(err
        .to_string()
        .starts_with(&format!("this data directory belongs to federation {ours}")));
}

#[test]
fn a_broken_config_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    DataDir::init(dir.path(), options(StakeholderType::Academia, None)).expect("init");
    write_atomic(dir.path(), CONFIG_FILE, b"mnds = true\n").expect("write");
    let err = DataDir::open(dir.path()).expect_err("refused");
    assert!(matches!(&err, OpenError::Config { .. }), "{err}");
    assert!(err.to_string().contains("config.toml"));
}

#[test]
fn a_damaged_key_file_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    DataDir::init(dir.path(), options(StakeholderType::Academia, None)).expect("init");
    let key = dir.path().join(NODE_KEY_FILE);
    write_atomic(dir.path(), NODE_KEY_FILE, &[1; 31]).expect("write");
    let err = DataDir::open(dir.path()).expect_err("refused");
    assert!(
        matches!(&err, OpenError::Damaged { path, .. } if path == &key),
        "{err}"
    );
    assert!(err.to_string().contains("node.key"));
}

#[test]
fn a_swapped_org_key_is_caught() {
    let dir = tempfile::tempdir().expect("tempdir");
    DataDir::init(dir.path(), options(StakeholderType::Academia, None)).expect("init");
    write_atomic(dir.path(), ORG_KEY_FILE, &[9; 32]).expect("write");
    let err = DataDir::open(dir.path()).expect_err("refused");
    assert!(
        matches!(&err, OpenError::Damaged { path, .. } if path.ends_with(INCEPTION_FILE)),
        "{err}"
    );
}

#[test]
fn the_api_addr_file_round_trips_and_removes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = ApiAddrFile::of(dir.path());
    assert_eq!(file.path(), dir.path().join(API_ADDR_FILE));
    assert!(!file.exists());
    assert_eq!(file.read(), None);
    let addr: std::net::SocketAddr = "127.0.0.1:7301".parse().expect("addr");
    file.write(addr).expect("write");
    assert!(file.exists());
    assert_eq!(file.read(), Some(addr));
    assert_eq!(
        fs::read_to_string(file.path()).expect("read"),
        "127.0.0.1:7301\n"
    );
    file.remove().expect("remove");
    assert!(!file.exists());
    file.remove().expect("removing a missing file is fine");
}
