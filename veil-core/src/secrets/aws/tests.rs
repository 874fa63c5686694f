use super::*;
use crate::secrets::NewSecret;

fn create(body: serde_json::Value) -> Result<NewSecret, FieldError> {
    NewSecret::from_json(body.to_string().as_bytes())
}

fn info(env_var: &str, token: bool) -> SecretInfo {
    SecretInfo {
        id: "sec_0123456789abcdef".into(),
        name: "aws-prod".into(),
        env_var: env_var.into(),
        hosts: vec!["*.amazonaws.com".into()],
        proxy_value: "IRONSH_PROXY_aws-prod".into(),
        created_at: String::new(),
        updated_at: String::new(),
        inject_query: false,
        slots: None,
        methods: Vec::new(),
        paths: Vec::new(),
        aws: Some(AwsInfo::new(
            "sec_0123456789abcdef",
            "IRONSH_PROXY_aws-prod",
            token,
        )),
    }
}

#[test]
fn an_aws_secret_takes_an_object_and_defaults_its_variable() {
    let new = create(serde_json::json!({
        "name": "aws-prod", "kind": "aws", "hosts": ["*.amazonaws.com"],
        "secret": {"access_key_id": "AKIDEXAMPLE", "secret_access_key": "wJalr/K7+\"x",
                   "session_token": "FwoGZX=="},
    }))
    .unwrap();
    assert!(new.aws);
    assert_eq!(new.env_var.as_str(), DEFAULT_ENV_VAR);
    let keys = AwsKeys::parse(&new.value).unwrap();
    assert_eq!(keys.key_id.expose(), "AKIDEXAMPLE");
    assert_eq!(keys.secret_access_key.expose(), "wJalr/K7+\"x");
    assert_eq!(keys.session_token.unwrap().expose(), "FwoGZX==");
    assert_eq!(keys.credentials.key_id(), "AKIDEXAMPLE");
    let plain = create(serde_json::json!({
        "name": "aws-dev", "kind": "aws", "env_var": "DEV_AWS_ACCESS_KEY_ID",
        "secret": {"access_key_id": "AKID2", "secret_access_key": "s"},
    }))
    .unwrap();
    assert!(AwsKeys::parse(&plain.value)
        .unwrap()
        .session_token
        .is_none());
    let token = create(
        serde_json::json!({"name": "t", "kind": "token", "env_var": "T",
                                          "secret": "v"}),
    )
    .unwrap();
    assert!(!token.aws);
}

#[test]
fn refusals_name_the_field_and_never_a_value() {
    let base = |secret: serde_json::Value| serde_json::json!({"name": "a", "kind": "aws", "secret": secret});
    for (body, field) in [
        (base(serde_json::json!("a-string-hunter2")), "secret"),
        (
            base(serde_json::json!({"secret_access_key": "hunter2"})),
            "secret",
        ),
        (base(serde_json::json!({"access_key_id": "AKID"})), "secret"),
        (
            base(serde_json::json!({"access_key_id": "AK-ID", "secret_access_key": "hunter2"})),
            "secret",
        ),
        (
            base(serde_json::json!({"access_key_id": "AKID", "secret_access_key": "hun\nter2"})),
            "secret",
        ),
        (
            base(
                serde_json::json!({"access_key_id": "AKID", "secret_access_key": "x",
                                    "other": "hunter2"}),
            ),
            "secret",
        ),
        (
            serde_json::json!({"name": "a", "kind": "aws", "env_var": "AWS_KEY",
                               "secret": {"access_key_id": "AKID", "secret_access_key": "x"}}),
            "env_var",
        ),
        (
            serde_json::json!({"name": "a", "kind": "aws", "inject_query": true,
                               "secret": {"access_key_id": "AKID", "secret_access_key": "x"}}),
            "inject_query",
        ),
        (
            serde_json::json!({"name": "a", "kind": "gcp", "env_var": "X", "secret": "v"}),
            "kind",
        ),
    ] {
        let err = create(body.clone()).unwrap_err();
        assert_eq!(err.field, field, "{body}: {err}");
        assert!(!err.message.contains("hunter2"), "{err}");
    }
}

#[test]
fn placeholders_and_variables() {
    assert_eq!(
        key_id_placeholder("sec_0123456789abcdef"),
        "AKIA0123456789ABCDEF"
    );
    assert_eq!(
        env_pairs(&info("AWS_ACCESS_KEY_ID", true)),
        [
            (
                "AWS_ACCESS_KEY_ID".to_owned(),
                "AKIA0123456789ABCDEF".to_owned()
            ),
            (
                "AWS_SECRET_ACCESS_KEY".to_owned(),
                "IRONSH_PROXY_aws-prod".to_owned()
            ),
            (
                "AWS_SESSION_TOKEN".to_owned(),
                "IRONSH_PROXY_aws-prod.session-token".to_owned()
            ),
        ]
    );
    let dev = env_pairs(&info("DEV_ACCESS_KEY_ID", false));
    assert_eq!(dev.len(), 2);
    assert_eq!(dev[1].0, "DEV_SECRET_ACCESS_KEY");
    let mut plain = info("GITHUB_TOKEN", false);
    plain.aws = None;
    assert_eq!(
        env_pairs(&plain),
        [(
            "GITHUB_TOKEN".to_owned(),
            "IRONSH_PROXY_aws-prod".to_owned()
        )]
    );
}

#[test]
fn the_table_finds_secrets_by_key_id_placeholder_and_checks_scope() {
    let new = create(serde_json::json!({
        "name": "aws-prod", "kind": "aws", "hosts": ["*.amazonaws.com"],
        "secret": {"access_key_id": "AKIDEXAMPLE", "secret_access_key": "s"},
    }))
    .unwrap();
    let set: SecretSet = [LiveSecret {
        info: info("AWS_ACCESS_KEY_ID", false),
        hosts: new.hosts,
        route: Default::default(),
        value: Arc::new(new.value),
    }]
    .into_iter()
    .collect();
    let (table, failed) = AwsTable::build(&set);
    assert!(failed.is_empty());
    let entry = table.get("AKIA0123456789ABCDEF").unwrap();
    assert_eq!(entry.name, "aws-prod");
    assert!(entry.in_scope("s3.amazonaws.com"));
    assert!(!entry.in_scope("amazonaws.com.evil.test"));
    assert!(table.get("AKIDEXAMPLE").is_none());
}

#[test]
fn an_unreadable_stored_value_is_reported_without_it() {
    let value = SecretValue::parse("hunter2-not-json".to_owned()).unwrap();
    let err = AwsKeys::parse(&value).err().unwrap();
    assert_eq!(err, AwsValueError::Malformed);
    assert!(!err.to_string().contains("hunter2"));
}
