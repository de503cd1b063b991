//! A mocked API server on kube's tower-test pattern (kube-rs/controller-rs's
//! `ApiServerVerifier`): a [`Client`] whose requests a test takes one by one, checks
//! and answers.
//!
//! Owns the checks every test wants on every request: the method and path a test
//! expects, and the API server's validation of every write ([`apiserver_rules`]), so
//! a request a real API server would refuse fails the test however the test answers
//! it. What is specific to one caller (the operator's field manager and label
//! selectors, the agent's Lease records) is checked in that caller's tests.

use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};
use tower_test::mock::{Handle, SendResponse};

use super::apiserver_rules;

/// How long an expectation waits for its request: ample on a loaded machine, and
/// a request that never comes fails the test instead of hanging it.
const REQUEST_WAIT: Duration = Duration::from_secs(10);

/// A client in `namespace` whose every request goes to the returned verifier.
pub fn mocked_client(namespace: &str) -> (Client, ApiServerVerifier) {
    let (mock, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    (Client::new(mock, namespace), ApiServerVerifier(handle))
}

/// Plays the API server: takes each request the client sends, checks it, answers.
pub struct ApiServerVerifier(Handle<Request<Body>, Response<Body>>);

/// One request as the API server received it.
#[derive(Debug)]
pub struct Seen {
    pub method: Method,
    pub path: String,
    pub query: String,
    /// The JSON body; `Null` when there is none.
    pub body: Value,
}

/// The answer to one request still due; dropped unanswered, the client waits until
/// its own timeout.
pub struct Responder(SendResponse<Response<Body>>);

impl Responder {
    /// Answers with `response` as it is (a watch's stream of events, say).
    pub fn send_response(self, response: Response<Body>) {
        self.0.send_response(response);
    }

    /// Answers with `status` and `body` as JSON.
    pub fn answer(self, status: StatusCode, body: &Value) {
        let bytes = serde_json::to_vec(body).unwrap_or_else(|e| panic!("{body}: {e}"));
        let response = Response::builder()
            .status(status)
            .body(Body::from(bytes))
            .unwrap_or_else(|e| panic!("a response with status {status}: {e}"));
        self.send_response(response);
    }
}

impl ApiServerVerifier {
    /// The next request, once its body is read and, for a write, checked against
    /// the API server's rules; `None` when the client is gone.
    pub async fn next_request(&mut self) -> Option<(Seen, Responder)> {
        let (request, send) = self.0.next_request().await?;
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        let query = request.uri().query().unwrap_or_default().to_owned();
        let bytes = request
            .into_body()
            .collect_bytes()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: the body cannot be read: {e}"));
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("{method} {path}: the body is not JSON: {e}"))
        };
        assert_accepted(&method, &path, &body);
        let seen = Seen {
            method,
            path,
            query,
            body,
        };
        Some((seen, Responder(send)))
    }

    /// Takes the next request, checks method and path, answers with `answer(body)`.
    pub async fn expect(
        &mut self,
        method: Method,
        path: &str,
        answer: impl FnOnce(&Value) -> (StatusCode, Value),
    ) -> Seen {
        let (seen, responder) = tokio::time::timeout(REQUEST_WAIT, self.next_request())
            .await
            .unwrap_or_else(|_| panic!("no request; expected {method} {path}"))
            .unwrap_or_else(|| panic!("client gone; expected {method} {path}"));
        assert_eq!(
            (&seen.method, seen.path.as_str()),
            (&method, path),
            "unexpected request, body {}",
            seen.body
        );
        let (status, body) = answer(&seen.body);
        responder.answer(status, &body);
        seen
    }

    /// A GET of `path`, answered 404.
    pub async fn not_found(&mut self, path: &str) {
        self.expect(Method::GET, path, |_| {
            (StatusCode::NOT_FOUND, failure(404, "NotFound"))
        })
        .await;
    }
}

/// The `Status` object the API server answers a failed request with.
pub fn failure(code: u16, reason: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": reason, "reason": reason, "code": code})
}

/// Fails unless a real API server would accept this write and the conditions of a
/// status keep their contract (`apiserver_rules::conditions`).
fn assert_accepted(method: &Method, path: &str, body: &Value) {
    if !matches!(*method, Method::POST | Method::PUT | Method::PATCH) || body.is_null() {
        return;
    }
    let violations = if path.ends_with("/status") {
        let kind = body["kind"].as_str().unwrap_or_default();
        let mut violations = apiserver_rules::validate_against_schema(
            &apiserver_rules::status_schema(kind),
            &body["status"],
        );
        violations.extend(apiserver_rules::conditions(&body["status"]["conditions"]));
        violations
    } else {
        apiserver_rules::validate(body)
    };
    assert!(
        violations.is_empty(),
        "{method} {path}: the API server would refuse it: {violations:#?}\n{body:#}"
    );
}
