//! A fake Kubernetes API server for ServiceAccounts, speaking the real list/watch JSON
//! over plain HTTP: paged LIST (`limit`/`continue`, at most two items a page, like a
//! server that returns fewer than asked), WATCH from a resourceVersion as a stream of
//! newline-delimited events with bookmarks, `ERROR` 410 for expired resourceVersions,
//! and GET of one ServiceAccount with a `Status` 404. Every request is recorded.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// Items per LIST page, whatever `limit` asks.
const PAGE: usize = 2;

#[derive(Default)]
struct Inner {
    rv: u64,
    accounts: BTreeMap<(String, String), Value>,
    /// (resourceVersion, event line) of every change.
    history: Vec<(u64, Bytes)>,
    /// Watches started before this resourceVersion get 410 Gone.
    compacted: u64,
    watchers: Vec<mpsc::UnboundedSender<Bytes>>,
    requests: Vec<String>,
    /// Answer LIST with 500 while set.
    fail_lists: bool,
}

/// A running fake API server.
pub struct FakeApiServer {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    inner: Arc<Mutex<Inner>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn sa_object(namespace: &str, name: &str, rv: u64, annotations: &[(&str, &str)]) -> Value {
    let ann: serde_json::Map<String, Value> = annotations
        .iter()
        .map(|(k, v)| ((*k).to_owned(), json!(v)))
        .collect();
    json!({
        "kind": "ServiceAccount", "apiVersion": "v1",
        "metadata": {
            "name": name, "namespace": namespace, "uid": format!("uid-{namespace}-{name}"),
            "resourceVersion": rv.to_string(), "creationTimestamp": "2026-01-01T00:00:00Z",
            "annotations": ann,
        },
    })
}

fn line(event: &Value) -> Bytes {
    let mut v = serde_json::to_vec(event).unwrap();
    v.push(b'\n');
    Bytes::from(v)
}

impl Inner {
    fn emit(&mut self, kind: &str, object: Value) {
        let l = line(&json!({"type": kind, "object": object}));
        self.history.push((self.rv, l.clone()));
        self.watchers.retain(|w| w.send(l.clone()).is_ok());
    }
}

/// A ServiceAccount to start with: namespace, name, annotations.
pub type Seed<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);

impl FakeApiServer {
    /// Starts on a free loopback port with these ServiceAccounts.
    pub async fn start(initial: &[Seed<'_>]) -> FakeApiServer {
        let inner = Arc::new(Mutex::new(Inner::default()));
        {
            let mut i = inner.lock().unwrap();
            for (ns, name, ann) in initial {
                i.rv += 1;
                let obj = sa_object(ns, name, i.rv, ann);
                i.accounts
                    .insert(((*ns).to_owned(), (*name).to_owned()), obj);
            }
            i.rv += 10;
        }
        let app = Router::new()
            .route("/api/v1/serviceaccounts", get(list_or_watch))
            .route(
                "/api/v1/namespaces/{ns}/serviceaccounts/{name}",
                get(get_one),
            )
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeApiServer { url, inner, task }
    }

    /// Creates (or replaces) a ServiceAccount and tells the watchers.
    pub fn create(&self, namespace: &str, name: &str, annotations: &[(&str, &str)]) {
        let mut i = self.inner.lock().unwrap();
        i.rv += 1;
        let obj = sa_object(namespace, name, i.rv, annotations);
        let existed = i
            .accounts
            .insert((namespace.to_owned(), name.to_owned()), obj.clone())
            .is_some();
        i.emit(if existed { "MODIFIED" } else { "ADDED" }, obj);
    }

    /// Creates a ServiceAccount without telling the watchers (the watch lags behind).
    pub fn create_unannounced(&self, namespace: &str, name: &str, annotations: &[(&str, &str)]) {
        let mut i = self.inner.lock().unwrap();
        i.rv += 1;
        let obj = sa_object(namespace, name, i.rv, annotations);
        i.accounts
            .insert((namespace.to_owned(), name.to_owned()), obj);
    }

    /// Deletes a ServiceAccount and tells the watchers.
    pub fn delete(&self, namespace: &str, name: &str) {
        let mut i = self.inner.lock().unwrap();
        i.rv += 1;
        let rv = i.rv;
        if let Some(mut obj) = i.accounts.remove(&(namespace.to_owned(), name.to_owned())) {
            obj["metadata"]["resourceVersion"] = json!(rv.to_string());
            i.emit("DELETED", obj);
        }
    }

    /// Compacts history: open watches get `ERROR` 410 and end; watching from an older
    /// resourceVersion is refused until the client lists again.
    pub fn expire_watches(&self) {
        let mut i = self.inner.lock().unwrap();
        i.rv += 1;
        i.compacted = i.rv;
        i.history.clear();
        let gone = line(&json!({"type": "ERROR", "object": {
            "kind": "Status", "apiVersion": "v1", "status": "Failure",
            "message": "too old resource version", "reason": "Expired", "code": 410}}));
        for w in i.watchers.drain(..) {
            let _ = w.send(gone.clone());
        }
    }

    /// Makes LIST fail (500) or work again.
    pub fn fail_lists(&self, fail: bool) {
        self.inner.lock().unwrap().fail_lists = fail;
    }

    /// The requests so far: `LIST`, `WATCH rv=N`, `GET ns/name`.
    pub fn requests(&self) -> Vec<String> {
        self.inner.lock().unwrap().requests.clone()
    }

    /// How many requests start with `prefix`.
    pub fn count(&self, prefix: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.starts_with(prefix))
            .count()
    }

    /// Number of open watches.
    pub fn open_watches(&self) -> usize {
        let mut i = self.inner.lock().unwrap();
        i.watchers.retain(|w| !w.is_closed());
        i.watchers.len()
    }

    /// Writes a kubeconfig pointing at this server (plain http, a dummy token) to `dir`.
    pub fn kubeconfig(&self, dir: &Path) -> PathBuf {
        let path = dir.join("kubeconfig");
        std::fs::write(
            &path,
            format!(
                "apiVersion: v1\nkind: Config\ncurrent-context: fake\nclusters:\n- name: fake\n  cluster:\n    server: {}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\nusers:\n- name: fake\n  user:\n    token: fake-token\n",
                self.url
            ),
        )
        .unwrap();
        path
    }
}

fn status(code: u16, reason: &str, message: String) -> Response {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                      "message": message, "reason": reason, "code": code});
    (StatusCode::from_u16(code).unwrap(), axum::Json(body)).into_response()
}

/// The kubeconfig's token must come with every request.
fn unauthorized(headers: &HeaderMap) -> Option<Response> {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    (auth != Some("Bearer fake-token"))
        .then(|| status(401, "Unauthorized", "Unauthorized".to_owned()))
}

async fn list_or_watch(
    State(inner): State<Arc<Mutex<Inner>>>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = unauthorized(&headers) {
        return r;
    }
    let watching = q.get("watch").is_some_and(|w| w == "1" || w == "true");
    let mut i = inner.lock().unwrap();
    if !watching {
        i.requests.push("LIST".to_owned());
        if i.fail_lists {
            return status(500, "InternalError", "etcd is unhappy".to_owned());
        }
        let start: usize = q.get("continue").and_then(|c| c.parse().ok()).unwrap_or(0);
        let items: Vec<Value> = i
            .accounts
            .values()
            .skip(start)
            .take(PAGE)
            .cloned()
            .collect();
        let next = start + items.len();
        let cont = if next < i.accounts.len() {
            next.to_string()
        } else {
            String::new()
        };
        let body = json!({"kind": "ServiceAccountList", "apiVersion": "v1",
            "metadata": {"resourceVersion": i.rv.to_string(), "continue": cont}, "items": items});
        return axum::Json(body).into_response();
    }
    let from: u64 = q
        .get("resourceVersion")
        .and_then(|r| r.parse().ok())
        .unwrap_or(0);
    i.requests.push(format!("WATCH rv={from}"));
    assert_eq!(
        q.get("allowWatchBookmarks").map(String::as_str),
        Some("true")
    );
    if from < i.compacted {
        return status(
            410,
            "Expired",
            format!("too old resource version: {from} ({})", i.compacted),
        );
    }
    let (tx, rx) = mpsc::unbounded_channel::<Bytes>();
    for (rv, l) in &i.history {
        if *rv > from {
            let _ = tx.send(l.clone());
        }
    }
    let bookmark = line(
        &json!({"type": "BOOKMARK", "object": {"kind": "ServiceAccount", "apiVersion": "v1",
        "metadata": {"resourceVersion": i.rv.to_string()}}}),
    );
    let _ = tx.send(bookmark);
    i.watchers.push(tx);
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    Response::builder()
        .header("content-type", "application/json")
        .body(Body::from_stream(stream))
        .unwrap()
}

async fn get_one(
    State(inner): State<Arc<Mutex<Inner>>>,
    UrlPath((ns, name)): UrlPath<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = unauthorized(&headers) {
        return r;
    }
    let mut i = inner.lock().unwrap();
    i.requests.push(format!("GET {ns}/{name}"));
    match i.accounts.get(&(ns, name.clone())) {
        Some(obj) => axum::Json(obj.clone()).into_response(),
        None => status(
            404,
            "NotFound",
            format!("serviceaccounts \"{name}\" not found"),
        ),
    }
}
