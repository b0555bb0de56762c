//! The dashboard's HTTP server (axum, on a thread of its own, `rask-dashboard`,
//! with a single-threaded runtime: see `Scheduler::start`).
//!
//! | path | what |
//! | --- | --- |
//! | `/` | redirects to `/status` |
//! | `/status`, `/workers`, `/graph`, `/events` | the pages (one HTML page; its script shows the part the path names) |
//! | `/static/...` | the page's script and style, and the vendored uPlot |
//! | `/api/snapshot` | the latest snapshot as JSON |
//! | `/api/time` | the scheduler's clock (seconds since it started, as `time` in a snapshot), as text: where a performance report starts |
//! | `/api/updates` | server-sent events: an `update` (snapshot JSON, only the task stream entries and event log lines not sent before) every [`PUSH_EVERY`] |
//! | `/metrics` | Prometheus text exposition ([`super::metrics`]) |
//! | `/report?since=SECONDS` | a performance report: one self-contained HTML file (the pages with their script, style and data inlined; the task stream from `since`, seconds on the scheduler's clock as in `/api/snapshot`'s `time`) |
//! | `/health` | `ok` |
//!
//! Every response is made from a snapshot the core handed over
//! ([`App::sample`]), at most one per [`SAMPLE_EVERY`] whoever asks.

use super::{metrics, Cursor, Snapshot, SAMPLE_EVERY};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, watch};

/// How often a live page is sent an update.
pub const PUSH_EVERY: Duration = Duration::from_millis(500);

/// Asks the core for a snapshot (`true`: a new one, not the last one
/// again); `None` once the core is gone.
pub(crate) type Ask = Arc<dyn Fn(bool) -> Option<oneshot::Receiver<Arc<Snapshot>>> + Send + Sync>;

struct App {
    ask: Ask,
    /// The scheduler's clock starts here (the core's `start`).
    start: Instant,
    cache: tokio::sync::Mutex<Option<(Instant, Arc<Snapshot>)>>,
    stop: watch::Receiver<bool>,
}

impl App {
    /// The latest snapshot, asking the core for a new one when the cached
    /// one is older than [`SAMPLE_EVERY`]. `None` when the scheduler is
    /// stopping (or its core does not answer within 10 s).
    async fn sample(&self) -> Option<Arc<Snapshot>> {
        self.sample_within(SAMPLE_EVERY).await
    }

    /// A snapshot at most `max_age` old (zero: a new one, taken after
    /// every event the core had received when asked).
    async fn sample_within(&self, max_age: Duration) -> Option<Arc<Snapshot>> {
        let mut c = self.cache.lock().await;
        if let Some((t, s)) = c.as_ref() {
            if t.elapsed() < max_age {
                return Some(s.clone());
            }
        }
        let rx = (self.ask)(max_age.is_zero())?;
        let s = tokio::time::timeout(Duration::from_secs(10), rx)
            .await
            .ok()?
            .ok()?;
        *c = Some((Instant::now(), s.clone()));
        Some(s)
    }
}

const INDEX: &str = include_str!("assets/index.html");
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "dashboard.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/dashboard.js"),
    ),
    (
        "dashboard.css",
        "text/css; charset=utf-8",
        include_str!("assets/dashboard.css"),
    ),
    (
        "uPlot.iife.min.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/vendor/uPlot.iife.min.js"),
    ),
    (
        "uPlot.min.css",
        "text/css; charset=utf-8",
        include_str!("assets/vendor/uPlot.min.css"),
    ),
    (
        "LICENSE-uPlot.txt",
        "text/plain; charset=utf-8",
        include_str!("assets/vendor/LICENSE-uPlot.txt"),
    ),
];

fn unavailable() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "the scheduler is stopping\n",
    )
        .into_response()
}

async fn page() -> Html<&'static str> {
    Html(INDEX)
}

async fn static_file(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|a| a.0 == name) {
        Some((_, ctype, body)) => (
            [
                (header::CONTENT_TYPE, *ctype),
                (header::CACHE_CONTROL, "max-age=3600"),
            ],
            *body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, format!("no file '{name}'\n")).into_response(),
    }
}

async fn metrics_text(State(app): State<Arc<App>>) -> Response {
    match app.sample().await {
        Some(s) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            metrics::render(&s),
        )
            .into_response(),
        None => unavailable(),
    }
}

async fn snapshot_json(State(app): State<Arc<App>>) -> Response {
    match app.sample().await {
        Some(s) => (
            [(header::CONTENT_TYPE, "application/json")],
            s.update_json(Cursor::default()),
        )
            .into_response(),
        None => unavailable(),
    }
}

#[derive(serde::Deserialize)]
struct ReportQuery {
    since: Option<f64>,
}

/// The report: `index.html` with every `/static/` file inlined and the
/// snapshot (task stream and worker memory samples from `since`) as
/// `window.RASK_REPORT`.
pub(crate) fn report_html(s: &Snapshot, since: f64) -> String {
    let from = s.stream.partition_point(|e| e.stop < since);
    let mem_from = s.memory.partition_point(|m| m.time < since);
    let data = serde_json::to_string(&super::Update {
        body: &s.body,
        stream: s.stream.from(from),
        events: s.events.from(0),
        memory: Some(s.memory.from(mem_from)),
    })
    .unwrap_or_else(|_| "{}".into())
    // Inside <script>: no "</script>" may appear.
    .replace("</", "<\\/");
    let mut html = INDEX.to_string();
    for (name, _, body) in ASSETS {
        let link = format!("<link rel=\"stylesheet\" href=\"/static/{name}\">");
        html = html.replace(&link, &format!("<style>\n{body}\n</style>"));
        let script = format!("<script src=\"/static/{name}\"></script>");
        let inline = if *name == "dashboard.js" {
            format!("<script>window.RASK_REPORT = [{data}];</script>\n<script>\n{body}\n</script>")
        } else {
            format!("<script>\n{body}\n</script>")
        };
        html = html.replace(&script, &inline);
    }
    html.replace(
        "<title>rask dashboard</title>",
        "<title>rask performance report</title>",
    )
}

async fn report(State(app): State<Arc<App>>, Query(q): Query<ReportQuery>) -> Response {
    // Fresh: a report ends a block of work that may have finished within
    // the cache's age.
    match app.sample_within(Duration::ZERO).await {
        Some(s) => (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"rask-performance-report.html\"",
                ),
            ],
            report_html(&s, q.since.unwrap_or(0.0)),
        )
            .into_response(),
        None => unavailable(),
    }
}

async fn updates(
    State(app): State<Arc<App>>,
) -> Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>> {
    let stream = futures_util::stream::unfold(
        (app, Cursor::default(), true),
        |(app, since, first)| async move {
            if !first {
                let mut stop = app.stop.clone();
                tokio::select! {
                    _ = tokio::time::sleep(PUSH_EVERY) => {}
                    _ = stop.wait_for(|s| *s) => return None,
                }
            }
            let snap = app.sample().await?;
            let data = snap.update_json(since);
            let next = snap.end(since);
            Some((
                Ok(Event::default().event("update").data(data)),
                (app, next, false),
            ))
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// Serves the dashboard on `listener` until `stop` turns true (or its
/// sender is gone).
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    ask: Ask,
    start: Instant,
    stop: watch::Receiver<bool>,
) {
    let app = Arc::new(App {
        ask,
        start,
        cache: tokio::sync::Mutex::new(None),
        stop: stop.clone(),
    });
    let router = Router::new()
        .route("/", get(|| async { Redirect::to("/status") }))
        .route("/status", get(page))
        .route("/workers", get(page))
        .route("/graph", get(page))
        .route("/events", get(page))
        .route("/static/{name}", get(static_file))
        .route("/api/snapshot", get(snapshot_json))
        .route("/api/updates", get(updates))
        .route(
            "/api/time",
            get(|State(app): State<Arc<App>>| async move {
                format!("{}\n", app.start.elapsed().as_secs_f64())
            }),
        )
        .route("/metrics", get(metrics_text))
        .route("/report", get(report))
        .route("/health", get(|| async { "ok\n" }))
        .with_state(app);
    let mut stop = stop;
    let r = axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .await;
    if let Err(e) = r {
        tracing::warn!("the dashboard stopped: {e}");
    }
}
