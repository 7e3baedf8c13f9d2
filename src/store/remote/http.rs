//! Bazel's HTTP cache protocol: `GET`, `HEAD` and `PUT` of `<url>/<name>`.
//! Any server that stores what is PUT under a path serves: nginx or Apache
//! with WebDAV, bazel-remote (`--disable_http_ac_validation`), the HTTP
//! caches of Gradle and ccache.

use std::fs::File;
use std::io::{self, Read};
use std::time::Duration;

use super::{Backend, Payload, bad};

pub(super) struct Http {
    /// `?...` of the URL (a token, say), sent after each name.
    query: String,
    /// The URL without credentials and without a trailing slash.
    pub(super) base: String,
    /// `Authorization` from the URL's user:password, and
    /// `JL_REMOTE_HEADER`.
    pub(super) headers: Vec<(String, String)>,
    agent: ureq::Agent,
}

impl Http {
    /// `header` is `JL_REMOTE_HEADER` ("Name: value").
    pub(super) fn new(url: &str, header: Option<&str>, timeout: Duration) -> Result<Http, String> {
        let (scheme, rest) = url.split_once("://").expect("checked by the caller");
        let (rest, query) = rest.split_at(rest.find('?').unwrap_or(rest.len()));
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let (userinfo, host) = match authority.rsplit_once('@') {
            Some((user, host)) => (Some(user), host),
            None => (None, authority),
        };
        let mut headers = Vec::new();
        if let Some(user) = userinfo {
            use base64::Engine;
            let token = base64::engine::general_purpose::STANDARD.encode(user);
            headers.push(("Authorization".to_string(), format!("Basic {token}")));
        }
        if let Some(header) = header {
            let (name, value) = header
                .split_once(':')
                .ok_or("JL_REMOTE_HEADER: expected 'Name: value'")?;
            headers.push((name.trim().to_string(), value.trim().to_string()));
        }
        Ok(Http {
            query: query.to_string(),
            base: format!("{scheme}://{host}{}", path.trim_end_matches('/')),
            headers,
            agent: agent(timeout),
        })
    }

    fn url(&self, name: &str) -> String {
        format!("{}/{name}{}", self.base, self.query)
    }

    /// Adds the configured headers to a request.
    fn with_headers<B>(&self, mut request: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        request
    }
}

/// An HTTP client whose `timeout` is a deadline for a whole request, body
/// included: a server sending a byte now and then must not hold a run.
pub(super) fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .timeout_connect(Some(timeout))
        .timeout_recv_response(Some(timeout))
        .timeout_send_request(Some(timeout))
        .http_status_as_error(false)
        .build()
        .into()
}

impl Backend for Http {
    fn get(&self, name: &str) -> io::Result<Option<Box<dyn Read + Send + '_>>> {
        let response = self.with_headers(self.agent.get(self.url(name))).call();
        let response = response.map_err(io::Error::other)?;
        match response.status().as_u16() {
            200 => Ok(Some(Box::new(response.into_body().into_reader()))),
            404 => Ok(None),
            code => Err(bad(format!("GET {name}: HTTP {code}"))),
        }
    }

    fn exists(&self, name: &str) -> io::Result<bool> {
        let response = self.with_headers(self.agent.head(self.url(name))).call();
        let response = response.map_err(io::Error::other)?;
        match response.status().as_u16() {
            200 => Ok(true),
            404 => Ok(false),
            code => Err(bad(format!("HEAD {name}: HTTP {code}"))),
        }
    }

    fn put(&self, name: &str, body: Payload<'_>) -> io::Result<()> {
        let request = self.with_headers(self.agent.put(self.url(name)));
        let response = match body {
            Payload::File(path) => request.send(File::open(path)?),
            Payload::Bytes(bytes) => request.send(bytes),
        };
        match response.map_err(io::Error::other)?.status().as_u16() {
            200..=299 => Ok(()),
            code => Err(bad(format!("PUT {name}: HTTP {code}"))),
        }
    }
}
