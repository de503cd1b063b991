//! Tests of the verbs' IO against the mocked API server, which asserts every request
//! (method, path, body) in order and refuses a write a real API server would refuse:
//! what `move`, `pause`, `resume` and `clear` send, and the errors of a name that
//! does not exist.

use std::future::Future;

use http::{Method, StatusCode};
use jiff::Timestamp;
use serde_json::{Value, json};

use super::{FIELD_MANAGER, Format, PluginError, Target, Verb};
use crate::api::CLEAR_FAILURES_ANNOTATION;
use crate::testing::apiserver::{ApiServerVerifier, failure, mocked_client};

const NS: &str = "ha";
const CLUSTERS: &str = "/apis/failover.dev/v1alpha1/namespaces/ha/failoverclusters";
const GROUPS: &str = "/apis/failover.dev/v1alpha1/namespaces/ha/resourcegroups";

fn now() -> Timestamp {
    "2025-06-01T12:00:00Z".parse().unwrap()
}

/// `prod` as the API server returns it, `c` paused. `b` has no priority: a field
/// the plugin's types would fill in (as they would drop one they do not know), so
/// the tests see that the members go back exactly as read.
fn prod() -> Value {
    json!({
        "apiVersion": "failover.dev/v1alpha1", "kind": "FailoverCluster",
        "metadata": {"name": "prod", "namespace": NS, "resourceVersion": "41"},
        "spec": {"members": [
            {"node": "a", "priority": 200},
            {"node": "b"},
            {"node": "c", "priority": 50, "paused": true},
        ]},
    })
}

fn web(owner: Option<&str>) -> Value {
    let mut g = json!({
        "apiVersion": "failover.dev/v1alpha1", "kind": "ResourceGroup",
        "metadata": {"name": "web", "namespace": NS, "resourceVersion": "7"},
        "spec": {"cluster": "prod", "resources": [
            {"name": "vip", "virtualIP": {"address": "10.0.0.10/24"}},
        ]},
        "status": {"owner": "a", "phase": "Online", "epoch": 4},
    });
    if let Some(owner) = owner {
        g["spec"]["owner"] = json!(owner);
    }
    g
}

fn list(kind: &str, items: Vec<Value>) -> Value {
    json!({"apiVersion": "failover.dev/v1alpha1", "kind": format!("{kind}List"),
           "metadata": {"resourceVersion": "50"}, "items": items})
}

/// Runs `verb` (with `--cluster` if given) while `server` plays the API server;
/// then checks that the verb sent nothing more.
async fn run<F>(
    verb: Verb,
    cluster: Option<&str>,
    server: impl FnOnce(ApiServerVerifier) -> F,
) -> Result<String, PluginError>
where
    F: Future<Output = ApiServerVerifier> + Send + 'static,
{
    let (client, api) = mocked_client(NS);
    let server = tokio::spawn(server(api));
    let target = Target {
        client,
        namespace: NS.to_owned(),
        cluster: cluster.map(str::to_owned),
        format: Format::Table,
    };
    let result = target.run(&verb, now()).await;
    drop(target);
    let mut api = server.await.unwrap();
    if let Some((seen, _)) = api.next_request().await {
        panic!(
            "unexpected request {} {} {}",
            seen.method, seen.path, seen.body
        );
    }
    result
}

impl ApiServerVerifier {
    /// A merge patch of `path` by the plugin's field manager, answered with
    /// `answer`; returns its body.
    async fn merge_patch(&mut self, path: &str, answer: Value) -> Value {
        let seen = self
            .expect(Method::PATCH, path, move |_| (StatusCode::OK, answer))
            .await;
        assert!(
            seen.query
                .contains(&format!("fieldManager={FIELD_MANAGER}")),
            "{}",
            seen.query
        );
        seen.body
    }

    async fn get(&mut self, path: &str, object: Value) {
        self.expect(Method::GET, path, move |_| (StatusCode::OK, object))
            .await;
    }
}

// ---------------------------------------------------------------------------- move

#[tokio::test]
async fn move_sets_spec_owner_after_checking_the_node_is_a_member() {
    let text = run(
        Verb::Move {
            group: "web".into(),
            node: Some("b".into()),
            clear: false,
        },
        None,
        |mut api| async move {
            api.get(&format!("{GROUPS}/web"), web(None)).await;
            api.get(&format!("{CLUSTERS}/prod"), prod()).await;
            let body = api
                .merge_patch(&format!("{GROUPS}/web"), web(Some("b")))
                .await;
            assert_eq!(
                body,
                json!({"apiVersion": "failover.dev/v1alpha1", "kind": "ResourceGroup",
                       "metadata": {"name": "web"}, "spec": {"owner": "b"}})
            );
            api
        },
    )
    .await
    .unwrap();
    assert_eq!(
        text,
        "web: pinned to b (spec.owner); the current owner hands it over\n"
    );
}

#[tokio::test]
async fn move_clear_removes_spec_owner_and_does_nothing_when_there_is_no_pin() {
    let clear = || Verb::Move {
        group: "web".into(),
        node: None,
        clear: true,
    };
    let text = run(clear(), None, |mut api| async move {
        api.get(&format!("{GROUPS}/web"), web(Some("b"))).await;
        let body = api.merge_patch(&format!("{GROUPS}/web"), web(None)).await;
        // `null` removes the field in a merge patch, whoever set it.
        assert_eq!(body["spec"], json!({"owner": null}));
        assert_eq!(body["kind"], "ResourceGroup");
        api
    })
    .await
    .unwrap();
    assert_eq!(
        text,
        "web: pin removed (spec.owner); placement decides again\n"
    );

    let text = run(clear(), None, |mut api| async move {
        api.get(&format!("{GROUPS}/web"), web(None)).await;
        api
    })
    .await
    .unwrap();
    assert_eq!(text, "web: not pinned (no spec.owner); nothing to do\n");
}

#[tokio::test]
async fn move_of_an_unknown_group_or_to_an_unknown_node_writes_nothing() {
    let error = run(
        Verb::Move {
            group: "nope".into(),
            node: Some("b".into()),
            clear: false,
        },
        None,
        |mut api| async move {
            api.not_found(&format!("{GROUPS}/nope")).await;
            api
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(error, PluginError::NotFound { .. }), "{error:?}");
    assert_eq!(error.to_string(), "no ResourceGroup nope in namespace ha");

    let error = run(
        Verb::Move {
            group: "web".into(),
            node: Some("x".into()),
            clear: false,
        },
        None,
        |mut api| async move {
            api.get(&format!("{GROUPS}/web"), web(None)).await;
            api.get(&format!("{CLUSTERS}/prod"), prod()).await;
            api
        },
    )
    .await
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "x is not a member of FailoverCluster prod (members: a, b, c)"
    );
}

#[tokio::test]
async fn move_refuses_a_group_of_another_cluster_than_named() {
    let error = run(
        Verb::Move {
            group: "web".into(),
            node: Some("b".into()),
            clear: false,
        },
        Some("staging"),
        |mut api| async move {
            api.get(&format!("{GROUPS}/web"), web(None)).await;
            api
        },
    )
    .await
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "ResourceGroup web runs on FailoverCluster prod, not staging"
    );
}

// --------------------------------------------------------------- pause and resume

/// The members `pause b` writes: the stored list with only b's `paused` changed
/// (no default written into it).
fn members_with_b_paused() -> Value {
    json!([
        {"node": "a", "priority": 200},
        {"node": "b", "paused": true},
        {"node": "c", "priority": 50, "paused": true},
    ])
}

#[tokio::test]
async fn pause_writes_the_stored_members_with_one_paused_and_the_read_resource_version() {
    let text = run(
        Verb::Pause { node: "b".into() },
        None,
        |mut api| async move {
            api.get(CLUSTERS, list("FailoverCluster", vec![prod()]))
                .await;
            let mut paused = prod();
            paused["spec"]["members"] = members_with_b_paused();
            let body = api.merge_patch(&format!("{CLUSTERS}/prod"), paused).await;
            assert_eq!(
                body,
                json!({"apiVersion": "failover.dev/v1alpha1", "kind": "FailoverCluster",
                   "metadata": {"name": "prod", "resourceVersion": "41"},
                   "spec": {"members": members_with_b_paused()}})
            );
            api
        },
    )
    .await
    .unwrap();
    assert_eq!(
        text,
        "b: paused in FailoverCluster prod; its groups are handed over\n"
    );
}

#[tokio::test]
async fn resume_sets_paused_false_on_the_named_cluster() {
    let text = run(
        Verb::Resume { node: "c".into() },
        Some("prod"),
        |mut api| async move {
            api.get(&format!("{CLUSTERS}/prod"), prod()).await;
            let body = api.merge_patch(&format!("{CLUSTERS}/prod"), prod()).await;
            assert_eq!(
                body["spec"]["members"],
                json!([
                    {"node": "a", "priority": 200},
                    {"node": "b"},
                    {"node": "c", "priority": 50, "paused": false},
                ])
            );
            assert_eq!(body["metadata"]["resourceVersion"], "41");
            api
        },
    )
    .await
    .unwrap();
    assert_eq!(
        text,
        "c: resumed in FailoverCluster prod; groups come back as their failback policy says\n"
    );
}

#[tokio::test]
async fn pause_of_a_paused_member_or_an_unknown_node_writes_nothing() {
    let text = run(
        Verb::Pause { node: "c".into() },
        None,
        |mut api| async move {
            api.get(CLUSTERS, list("FailoverCluster", vec![prod()]))
                .await;
            api
        },
    )
    .await
    .unwrap();
    assert_eq!(
        text,
        "c: already paused in FailoverCluster prod; nothing to do\n"
    );

    let error = run(
        Verb::Resume { node: "x".into() },
        None,
        |mut api| async move {
            api.get(CLUSTERS, list("FailoverCluster", vec![prod()]))
                .await;
            api
        },
    )
    .await
    .unwrap_err();
    assert!(
        matches!(error, PluginError::UnknownNode { .. }),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "x is not a member of FailoverCluster prod (members: a, b, c)"
    );
}

#[tokio::test]
async fn pause_reads_again_after_a_conflict_and_gives_up_after_two() {
    let conflict = |_: &Value| (StatusCode::CONFLICT, failure(409, "Conflict"));
    // The cluster changed once: the second write, at the new resourceVersion, goes through.
    let text = run(
        Verb::Pause { node: "b".into() },
        None,
        move |mut api| async move {
            api.get(CLUSTERS, list("FailoverCluster", vec![prod()]))
                .await;
            api.expect(Method::PATCH, &format!("{CLUSTERS}/prod"), conflict)
                .await;
            let mut changed = prod();
            changed["metadata"]["resourceVersion"] = json!("42");
            api.get(CLUSTERS, list("FailoverCluster", vec![changed]))
                .await;
            let body = api.merge_patch(&format!("{CLUSTERS}/prod"), prod()).await;
            assert_eq!(body["metadata"]["resourceVersion"], "42");
            assert_eq!(body["spec"]["members"], members_with_b_paused());
            api
        },
    )
    .await
    .unwrap();
    assert!(text.starts_with("b: paused"), "{text}");

    let error = run(
        Verb::Pause { node: "b".into() },
        None,
        move |mut api| async move {
            for _ in 0..2 {
                api.get(CLUSTERS, list("FailoverCluster", vec![prod()]))
                    .await;
                api.expect(Method::PATCH, &format!("{CLUSTERS}/prod"), conflict)
                    .await;
            }
            api
        },
    )
    .await
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "FailoverCluster prod changed while pause was writing it, twice: nothing was written; run it again"
    );
}

// --------------------------------------------------------------------------- clear

#[tokio::test]
async fn clear_annotates_the_group_with_the_unix_time() {
    let text = run(
        Verb::Clear {
            group: "web".into(),
        },
        None,
        |mut api| async move {
            let body = api.merge_patch(&format!("{GROUPS}/web"), web(None)).await;
            assert_eq!(
                body,
                json!({"apiVersion": "failover.dev/v1alpha1", "kind": "ResourceGroup",
                   "metadata": {"name": "web",
                                "annotations": {CLEAR_FAILURES_ANNOTATION: "1748779200"}}})
            );
            api
        },
    )
    .await
    .unwrap();
    assert_eq!(
        text,
        "web: failover.dev/clear-failures=1748779200; every member resets its failover count\n"
    );
}

#[tokio::test]
async fn clear_of_an_unknown_group_says_so() {
    let error = run(
        Verb::Clear {
            group: "nope".into(),
        },
        None,
        |mut api| async move {
            api.expect(Method::PATCH, &format!("{GROUPS}/nope"), |_| {
                (StatusCode::NOT_FOUND, failure(404, "NotFound"))
            })
            .await;
            api
        },
    )
    .await
    .unwrap_err();
    assert_eq!(error.to_string(), "no ResourceGroup nope in namespace ha");
}

// ------------------------------------------------------------------ reads and errors

#[tokio::test]
async fn status_reads_the_only_cluster_and_its_groups() {
    let mut other = web(None);
    other["metadata"]["name"] = json!("api");
    other["spec"]["cluster"] = json!("staging");
    let text = run(Verb::Status, None, |mut api| async move {
        api.get(CLUSTERS, list("FailoverCluster", vec![prod()]))
            .await;
        api.get(GROUPS, list("ResourceGroup", vec![other, web(None)]))
            .await;
        api
    })
    .await
    .unwrap();
    assert!(text.starts_with("Cluster:  prod\n"), "{text}");
    assert!(text.contains("\nweb    a      Online"), "{text}");
    assert!(!text.contains("api"), "a group of another cluster: {text}");
}

#[tokio::test]
async fn status_without_a_cluster_or_with_several_says_what_to_do() {
    let error = run(Verb::Status, None, |mut api| async move {
        api.get(CLUSTERS, list("FailoverCluster", vec![])).await;
        api
    })
    .await
    .unwrap_err();
    assert_eq!(error.to_string(), "no FailoverCluster in namespace ha");

    let mut staging = prod();
    staging["metadata"]["name"] = json!("staging");
    let error = run(Verb::Status, None, |mut api| async move {
        api.get(CLUSTERS, list("FailoverCluster", vec![prod(), staging]))
            .await;
        api
    })
    .await
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "namespace ha has several FailoverClusters (prod, staging): name one with --cluster"
    );

    let error = run(Verb::Status, Some("nope"), |mut api| async move {
        api.not_found(&format!("{CLUSTERS}/nope")).await;
        api
    })
    .await
    .unwrap_err();
    assert_eq!(error.to_string(), "no FailoverCluster nope in namespace ha");
}

#[tokio::test]
async fn explain_and_timeline_of_an_unknown_group_say_so() {
    for verb in [
        Verb::Explain {
            group: "nope".into(),
        },
        Verb::Timeline {
            group: "nope".into(),
        },
    ] {
        let error = run(verb, None, |mut api| async move {
            api.not_found(&format!("{GROUPS}/nope")).await;
            api
        })
        .await
        .unwrap_err();
        assert_eq!(error.to_string(), "no ResourceGroup nope in namespace ha");
    }
}

#[tokio::test]
async fn a_refused_request_names_the_request_and_keeps_the_cause() {
    let error = run(
        Verb::Clear {
            group: "web".into(),
        },
        None,
        |mut api| async move {
            api.expect(Method::PATCH, &format!("{GROUPS}/web"), |_| {
                (StatusCode::FORBIDDEN, failure(403, "Forbidden"))
            })
            .await;
            api
        },
    )
    .await
    .unwrap_err();
    assert_eq!(error.to_string(), "cannot patch ResourceGroup ha/web");
    let cause = std::error::Error::source(&error).map(ToString::to_string);
    assert!(cause.is_some_and(|c| c.contains("Forbidden")), "{error:?}");
}

#[tokio::test]
async fn a_cluster_this_binary_cannot_read_is_named() {
    let mut bad = prod();
    bad["spec"]["members"] = json!("not a list");
    let error = run(
        Verb::Pause { node: "b".into() },
        None,
        |mut api| async move {
            api.get(CLUSTERS, list("FailoverCluster", vec![bad])).await;
            api
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(error, PluginError::Malformed { .. }), "{error:?}");
    assert!(
        error
            .to_string()
            .starts_with("cannot read FailoverCluster ha/prod: "),
        "{error}"
    );
}

// ----------------------------------------------------------------------- standalone

mod standalone {
    use std::path::PathBuf;

    use jiff::Timestamp;
    use serde_json::Value;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::super::endpoint::EndpointError;
    use super::super::render::standalone::tests::{FILE, state};
    use super::super::{CtlArgs, Format, PluginError, Verb, standalone};
    use crate::contract::report::MAX_STATE_BYTES;

    fn now() -> Timestamp {
        "2025-06-01T12:00:00Z".parse().unwrap()
    }

    /// [`FILE`] in a file of this test's own, removed when dropped.
    struct File(PathBuf);

    impl Drop for File {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn file(test: &str) -> File {
        let path =
            std::env::temp_dir().join(format!("failover-ctl-{}-{test}.yaml", std::process::id()));
        std::fs::write(&path, FILE).unwrap();
        File(path)
    }

    /// A server that answers one connection with `answer` once it has read the
    /// request head, then closes; its address and the request it read.
    async fn serve_once(answer: Vec<u8>) -> (String, tokio::task::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = stream.read(&mut buf).await.unwrap();
                assert_ne!(n, 0, "the client closed before a whole request");
                head.extend_from_slice(&buf[..n]);
            }
            // The client may stop reading (an answer over the limit).
            let _ = stream.write_all(&answer).await;
            let _ = stream.shutdown().await;
            String::from_utf8(head).unwrap()
        });
        (addr, server)
    }

    fn http(status: &str, body: &str) -> Vec<u8> {
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    async fn ask(test: &str, answer: Vec<u8>, verb: Verb) -> Result<String, PluginError> {
        let (addr, server) = serve_once(answer).await;
        let result = standalone(&file(test).0, &addr, &verb, now(), Format::Table).await;
        let request = server.await.unwrap();
        assert!(request.starts_with("GET /state HTTP/1.1\r\n"), "{request}");
        result
    }

    #[tokio::test]
    async fn status_reads_the_file_and_the_agents_state() {
        let text = ask("status", http("200 OK", &state().to_string()), Verb::Status)
            .await
            .unwrap();
        assert!(
            text.starts_with(
                "Cluster:  default/pair\nView:     member a's (its agent answered; standalone, every member has its own)\n"
            ),
            "{text}"
        );
        assert!(text.contains("\nweb    yes        4      1  "), "{text}");
        let text = ask(
            "timeline",
            http("200 OK", &state().to_string()),
            Verb::Timeline {
                group: "web".into(),
            },
        )
        .await
        .unwrap();
        assert!(
            text.starts_with("2025-06-01T11:55:00Z a took web (OwnerLost), epoch 4\n"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn an_agent_of_another_cluster_is_refused() {
        let mut other = state();
        other["cluster"] = Value::from("default/other");
        let error = ask("other", http("200 OK", &other.to_string()), Verb::Status)
            .await
            .unwrap_err();
        assert!(
            matches!(error, PluginError::OtherClusterAgent { .. }),
            "{error:?}"
        );
        assert!(
            error
                .to_string()
                .contains("runs cluster default/other, not default/pair of "),
            "{error}"
        );
    }

    #[tokio::test]
    async fn what_is_not_an_agents_state_is_named() {
        let cases: [(&str, Vec<u8>, &str); 5] = [
            (
                "404",
                http("404 Not Found", "not found\n"),
                "has no /state: it is not a failover agent, or one older than this command",
            ),
            (
                "503",
                http(
                    "503 Service Unavailable",
                    "no report yet: the agent is starting\n",
                ),
                "has no state to show yet: no report yet: the agent is starting",
            ),
            (
                "500",
                http("500 Internal Server Error", "boom\n"),
                "answered /state with HTTP 500: boom",
            ),
            (
                "garbage",
                http("200 OK", "{\"cluster\": 5"),
                "answered /state with something that is not an agent's state",
            ),
            (
                "not-http",
                b"SSH-2.0-OpenSSH_9.6\r\n\r\n".to_vec(),
                "does not answer HTTP: is it the agent's --metrics-addr?",
            ),
        ];
        for (test, answer, words) in cases {
            let error = ask(test, answer, Verb::Status).await.unwrap_err();
            assert!(matches!(error, PluginError::Endpoint(_)), "{error:?}");
            assert!(error.to_string().contains(words), "{test}: {error}");
        }
    }

    #[tokio::test]
    async fn an_endless_answer_stops_at_the_limit() {
        let mut answer = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
        answer.resize(MAX_STATE_BYTES + 64 * 1024, b' ');
        let error = ask("oversize", answer, Verb::Status).await.unwrap_err();
        assert!(
            matches!(error, PluginError::Endpoint(EndpointError::TooLarge { .. })),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn an_agent_that_is_not_there_is_named_with_the_flag_to_pass() {
        // A port just freed: nothing listens on it.
        let addr = {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            listener.local_addr().unwrap().to_string()
        };
        let error = standalone(
            &file("unreachable").0,
            &addr,
            &Verb::Status,
            now(),
            Format::Table,
        )
        .await
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "cannot reach an agent at {addr} (pass --agent with the agent's --metrics-addr; is the agent running?)"
            )
        );
    }

    #[tokio::test]
    async fn a_group_not_in_the_file_is_named_before_asking_any_agent() {
        // Nothing listens at port 9 (discard) of this test's host either way: the
        // group is checked first.
        let error = standalone(
            &file("unknown-group").0,
            "127.0.0.1:9",
            &Verb::Explain {
                group: "wbe".into(),
            },
            now(),
            Format::Table,
        )
        .await
        .unwrap_err();
        assert!(
            error.to_string().starts_with("no ResourceGroup wbe in ")
                && error.to_string().ends_with(" (groups: db, web)"),
            "{error}"
        );
        let error = standalone(
            &PathBuf::from("/nonexistent/cluster.yaml"),
            "127.0.0.1:9",
            &Verb::Status,
            now(),
            Format::Table,
        )
        .await
        .unwrap_err();
        assert_eq!(error.to_string(), "cannot read /nonexistent/cluster.yaml");
    }

    #[test]
    fn write_verbs_say_how_to_edit_the_file_and_contact_nothing() {
        let args = |verb| CtlArgs {
            namespace: None,
            cluster: None,
            output: Format::Table,
            standalone: Some("/etc/failover/cluster.yaml".into()),
            agent: None,
            key_file: None,
            previous_key_file: None,
            verb,
        };
        let error = super::super::run(args(Verb::Pause { node: "b".into() }), None).unwrap_err();
        assert_eq!(
            error.to_string(),
            "`pause` writes to standalone agents only with --key-file (it then pushes the \
             changed /etc/failover/cluster.yaml to every member, as `failover config push`); \
             without a key, set `paused: true` on member b: edit the configuration file of every \
             member (keep the files equal), then send SIGHUP to each agent (they also reload a \
             changed file by themselves)"
        );
        let error = super::super::run(
            args(Verb::Clear {
                group: "web".into(),
            }),
            None,
        )
        .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("put the annotation failover.dev/clear-failures: \"<a new value, e.g. the unix time>\" on ResourceGroup web"),
            "{error}"
        );
        let error = super::super::run(
            args(Verb::Move {
                group: "web".into(),
                node: None,
                clear: true,
            }),
            None,
        )
        .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("without a key, remove `owner` from the spec of ResourceGroup web"),
            "{error}"
        );
    }
}

/// The mocked API server's rules for our custom resources catch what a real one
/// refuses in the plugin's patches, so the tests above can fail.
#[test]
fn the_mocked_api_server_refuses_a_bad_patch_of_our_resources() {
    use crate::testing::apiserver_rules::validate;
    let patch = |spec: Value| {
        json!({"apiVersion": "failover.dev/v1alpha1", "kind": "ResourceGroup",
               "metadata": {"name": "web"}, "spec": spec})
    };
    assert_eq!(
        validate(&patch(json!({"owner": null}))),
        Vec::<String>::new()
    );
    assert_eq!(
        validate(&patch(json!({"owner": "b"}))),
        Vec::<String>::new()
    );
    assert_eq!(
        validate(&patch(json!({"owner": 5}))),
        vec!["spec.owner: must be a string"]
    );
    assert_eq!(
        validate(&patch(json!({"ownr": "b"}))),
        vec!["spec.ownr: unknown field (the API server prunes it)"]
    );
    let mut no_name = patch(json!({"owner": "b"}));
    no_name["metadata"] = json!({});
    assert_eq!(validate(&no_name), vec!["metadata.name: Required value"]);
    // A merge patch replaces a list whole: every member needs its node.
    let members = json!({"apiVersion": "failover.dev/v1alpha1", "kind": "FailoverCluster",
                         "metadata": {"name": "prod"},
                         "spec": {"members": [{"node": "a"}, {"paused": true}]}});
    assert_eq!(
        validate(&members),
        vec!["spec.members[1].node: Required value"]
    );
    let mut annotated = patch(json!({}));
    annotated["metadata"]["annotations"] = json!({"failover.dev/clear failures": "1"});
    assert_eq!(validate(&annotated).len(), 1, "{:?}", validate(&annotated));
}
