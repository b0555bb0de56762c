//! Performance reports through the scheduler's dashboard: the client knows
//! the dashboard from the scheduler's `welcome` and fetches `/api/time` (the
//! scheduler's clock, where a report starts) and `/report?since=` over
//! HTTP/1.1 (hyper's client). This is what C and Julia use; they have no
//! HTTP client of their own.

use super::{Client, ClientError};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::{Request, StatusCode, Uri};

impl Client {
    /// The scheduler's clock now (seconds since it started), read from its
    /// dashboard: where a performance report of what runs from now on
    /// starts (see [`Client::performance_report`]). Fails with
    /// [`ClientError::BadArgument`] when the scheduler serves no dashboard,
    /// [`ClientError::ConnectionFailed`] when it does not answer within the
    /// client's timeout.
    pub fn report_start(&self) -> Result<f64, ClientError> {
        let text = self.dashboard_get("/api/time")?;
        text.trim().parse::<f64>().map_err(|_| {
            ClientError::Protocol(format!(
                "the dashboard answered /api/time with {:?}, not a number of seconds",
                text.chars().take(80).collect::<String>()
            ))
        })
    }

    /// The scheduler's performance report of the tasks that finished since
    /// `since` (a [`Client::report_start`] value; 0 for everything it
    /// remembers): one self-contained HTML file (docs/dashboard.md). Fails
    /// as [`Client::report_start`] does.
    pub fn performance_report(&self, since: f64) -> Result<String, ClientError> {
        if !since.is_finite() {
            return Err(ClientError::BadArgument(format!(
                "since must be a number of seconds, not {since}"
            )));
        }
        self.dashboard_get(&format!("/report?since={since}"))
    }

    /// GET `path` from the dashboard; the body as text.
    fn dashboard_get(&self, path: &str) -> Result<String, ClientError> {
        let link = self.dashboard_link().ok_or_else(|| {
            ClientError::BadArgument(
                "the scheduler serves no dashboard (it was started without one), so there is \
                 no performance report"
                    .into(),
            )
        })?;
        let uri: Uri = link
            .parse()
            .map_err(|e| ClientError::Protocol(format!("bad dashboard link '{link}': {e}")))?;
        let authority = uri
            .authority()
            .ok_or_else(|| ClientError::Protocol(format!("bad dashboard link '{link}'")))?
            .to_string();
        let timeout = self.inner.config.timeout;
        let url = format!("http://{authority}{path}");
        let fail = |e: String| ClientError::ConnectionFailed(format!("GET {url}: {e}"));
        crate::runtime::block_on(async {
            let fetch = async {
                let tcp = tokio::net::TcpStream::connect(&authority)
                    .await
                    .map_err(|e| e.to_string())?;
                let (mut send, conn) =
                    hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
                        .await
                        .map_err(|e| e.to_string())?;
                tokio::spawn(conn);
                let req = Request::get(path)
                    .header(hyper::header::HOST, &authority)
                    .body(Empty::<Bytes>::new())
                    .map_err(|e| e.to_string())?;
                let res = send.send_request(req).await.map_err(|e| e.to_string())?;
                let status = res.status();
                let body = res
                    .into_body()
                    .collect()
                    .await
                    .map_err(|e| e.to_string())?
                    .to_bytes();
                let text = String::from_utf8_lossy(&body).into_owned();
                if status != StatusCode::OK {
                    return Err(format!("{status}: {}", text.trim()));
                }
                Ok(text)
            };
            match tokio::time::timeout(timeout, fetch).await {
                Ok(r) => r.map_err(fail),
                Err(_) => Err(fail(format!("no answer within {timeout:?}"))),
            }
        })
    }
}
