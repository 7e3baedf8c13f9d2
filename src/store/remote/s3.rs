//! An S3 bucket, or any store that speaks its API (MinIO, Ceph, R2, GCS's
//! XML API): `s3://BUCKET/PREFIX`, objects `PREFIX/cas/<sha256>` and
//! `PREFIX/ac/<key>`. Each request is signed (SigV4, as a presigned URL)
//! by rusty-s3 and sent by ureq, so no async runtime is involved.
//!
//! The endpoint is `?endpoint=URL` or `JL_S3_ENDPOINT` (then path-style
//! addressing, as S3-compatible stores expect), else AWS in the region of
//! `?region=`, `AWS_REGION` or `AWS_DEFAULT_REGION` (us-east-1 without
//! one). Credentials come from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`
//! and `AWS_SESSION_TOKEN`, else from the `AWS_PROFILE` (or `default`)
//! section of `~/.aws/credentials` (`AWS_SHARED_CREDENTIALS_FILE`), else
//! none (a public bucket).

use std::fs::File;
use std::io::{self, Read};
use std::time::Duration;

use rusty_s3::{Bucket, Credentials, S3Action as _, UrlStyle};

use super::{Backend, Payload, bad};

pub(super) struct S3 {
    bucket: Bucket,
    credentials: Option<Credentials>,
    /// The prefix of every object's name, with its trailing `/` (or empty).
    prefix: String,
    agent: ureq::Agent,
}

/// How long a signed request stays valid: it is sent at once.
const SIGNED_FOR: Duration = Duration::from_secs(15 * 60);

impl S3 {
    /// `url` is `s3://BUCKET[/PREFIX][?endpoint=URL&region=REGION]`.
    pub(super) fn new(url: &str, timeout: Duration) -> Result<S3, String> {
        let rest = url.strip_prefix("s3://").expect("checked by the caller");
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (name, prefix) = path.split_once('/').unwrap_or((path, ""));
        let option = |wanted: &str| {
            query
                .split('&')
                .filter_map(|pair| pair.split_once('='))
                .find(|(key, _)| *key == wanted)
                .map(|(_, value)| value.to_string())
        };
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let region = option("region")
            .or_else(|| env("AWS_REGION"))
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| "us-east-1".to_string());
        let (endpoint, style) = match option("endpoint").or_else(|| env("JL_S3_ENDPOINT")) {
            Some(endpoint) => (endpoint, UrlStyle::Path),
            None => (
                format!("https://s3.{region}.amazonaws.com"),
                UrlStyle::VirtualHost,
            ),
        };
        let endpoint = endpoint
            .parse()
            .map_err(|e| format!("--remote: S3 endpoint {}: {e}", super::redact(&endpoint)))?;
        if name.is_empty() {
            return Err("--remote: expected s3://BUCKET[/PREFIX]".to_string());
        }
        let bucket = Bucket::new(endpoint, style, name.to_string(), region)
            .map_err(|e| format!("--remote: S3 bucket {name}: {e}"))?;
        let prefix = prefix.trim_matches('/');
        Ok(S3 {
            bucket,
            credentials: Credentials::from_env().or_else(profile_credentials),
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
            agent: super::http::agent(timeout),
        })
    }

    fn object(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }
}

/// An error of a signed request, without what its URL gives away: the
/// signature, the key id and a session token are replaced by `***`.
fn unsigned(error: ureq::Error) -> io::Error {
    let mut text = error.to_string();
    for field in [
        "X-Amz-Signature=",
        "X-Amz-Credential=",
        "X-Amz-Security-Token=",
    ] {
        let mut from = 0;
        while let Some(at) = text[from..].find(field) {
            let start = from + at + field.len();
            let end = text[start..]
                .find(|c: char| c == '&' || c == '"' || c.is_whitespace())
                .map_or(text.len(), |n| start + n);
            text.replace_range(start..end, "***");
            from = start + 3;
        }
    }
    io::Error::other(text)
}

impl Backend for S3 {
    fn get(&self, name: &str) -> io::Result<Option<Box<dyn Read + Send + '_>>> {
        let object = self.object(name);
        let url = self.bucket.get_object(self.credentials.as_ref(), &object);
        let response = self.agent.get(url.sign(SIGNED_FOR).as_str()).call();
        let response = response.map_err(unsigned)?;
        match response.status().as_u16() {
            200 => Ok(Some(Box::new(response.into_body().into_reader()))),
            404 => Ok(None),
            code => Err(bad(format!("S3 GET {name}: HTTP {code}"))),
        }
    }

    fn exists(&self, name: &str) -> io::Result<bool> {
        let object = self.object(name);
        let url = self.bucket.head_object(self.credentials.as_ref(), &object);
        let response = self.agent.head(url.sign(SIGNED_FOR).as_str()).call();
        match response.map_err(unsigned)?.status().as_u16() {
            200 => Ok(true),
            404 => Ok(false),
            code => Err(bad(format!("S3 HEAD {name}: HTTP {code}"))),
        }
    }

    fn put(&self, name: &str, body: Payload<'_>) -> io::Result<()> {
        let object = self.object(name);
        let url = self.bucket.put_object(self.credentials.as_ref(), &object);
        let request = self.agent.put(url.sign(SIGNED_FOR).as_str());
        // S3 wants the length up front (no chunked uploads without
        // signing each chunk): a file is sent with its size.
        let response = match body {
            Payload::File(path) => {
                let file = File::open(path)?;
                let len = file.metadata()?.len();
                request
                    .header("Content-Length", len.to_string())
                    .send(ureq::SendBody::from_owned_reader(file))
            }
            Payload::Bytes(bytes) => request.send(bytes),
        };
        match response.map_err(unsigned)?.status().as_u16() {
            200..=299 => Ok(()),
            code => Err(bad(format!("S3 PUT {name}: HTTP {code}"))),
        }
    }

    fn max_blob(&self) -> Option<u64> {
        Some(MAX_PUT)
    }
}

/// The largest object one S3 PUT may store.
const MAX_PUT: u64 = 5 * 1024 * 1024 * 1024;

/// Credentials of the `AWS_PROFILE` (or `default`) section of the shared
/// credentials file.
fn profile_credentials() -> Option<Credentials> {
    let file = std::env::var_os("AWS_SHARED_CREDENTIALS_FILE")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            Some(std::path::Path::new(&std::env::var_os("HOME")?).join(".aws/credentials"))
        })?;
    let text = std::fs::read_to_string(file).ok()?;
    let profile = std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".to_string());
    let (key, secret, token) = profile_keys(&text, &profile);
    Some(match token {
        Some(token) => Credentials::new_with_token(key?, secret?, token),
        None => Credentials::new(key?, secret?),
    })
}

/// `aws_access_key_id`, `aws_secret_access_key` and `aws_session_token`
/// of `[profile]` in an INI text.
fn profile_keys(text: &str, profile: &str) -> (Option<String>, Option<String>, Option<String>) {
    let (mut key, mut secret, mut token) = (None, None, None);
    let mut inside = false;
    for line in text.lines().map(str::trim) {
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = section.trim() == profile;
            continue;
        }
        let Some((name, value)) = line.split_once('=').filter(|_| inside) else {
            continue;
        };
        let value = Some(value.trim().to_string());
        match name.trim() {
            "aws_access_key_id" => key = value,
            "aws_secret_access_key" => secret = value,
            "aws_session_token" => token = value,
            _ => {}
        }
    }
    (key, secret, token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_urls_secrets_never_print() {
        let url = "http://h/b/k?X-Amz-Credential=AKIA%2F2026&X-Amz-Security-Token=IQo%2Bsecret&X-Amz-Signature=ab12";
        let text = unsigned(ureq::Error::BadUri(url.to_string())).to_string();
        assert!(text.contains("X-Amz-Credential=***&"), "{text}");
        assert!(text.contains("X-Amz-Security-Token=***&"), "{text}");
        assert!(text.contains("X-Amz-Signature=***"), "{text}");
        for secret in ["AKIA", "IQo", "ab12"] {
            assert!(!text.contains(secret), "{text}");
        }
    }

    #[test]
    fn a_profile_is_read_from_its_own_section() {
        let text = "[default]\naws_access_key_id = A\naws_secret_access_key = a\n\n\
                    [work]\naws_access_key_id=W\naws_secret_access_key=w\naws_session_token = t\n";
        let own = |s: &str| Some(s.to_string());
        assert_eq!(profile_keys(text, "default"), (own("A"), own("a"), None));
        assert_eq!(profile_keys(text, "work"), (own("W"), own("w"), own("t")));
        assert_eq!(profile_keys(text, "none"), (None, None, None));
    }
}
