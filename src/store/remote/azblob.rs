//! Azure Blob Storage: `azblob://CONTAINER/PREFIX`, blobs
//! `PREFIX/cas/<sha256>` and `PREFIX/ac/<key>` (block blobs). Each request
//! is signed (Shared Key, or a SAS token appended) by reqsign and sent by
//! ureq; signing with a key does no I/O, so its async API is polled once,
//! without a runtime.
//!
//! The account comes from `AZURE_STORAGE_CONNECTION_STRING` (`AccountName`,
//! `AccountKey` or `SharedAccessSignature`, `BlobEndpoint`), else from
//! `AZURE_STORAGE_ACCOUNT` and `AZURE_STORAGE_KEY` (or
//! `AZURE_STORAGE_SAS_TOKEN`), else requests go unsigned (a container
//! open to anonymous reads); the endpoint is `?endpoint=URL`, the
//! connection string's, or `https://<account>.blob.core.windows.net`.

use std::fs::File;
use std::io::{self, Read};
use std::time::Duration;

use reqsign_azure_storage::{Credential, RequestSigner};
use reqsign_core::SignRequest as _;

use super::{Backend, Payload, bad};

pub(super) struct AzBlob {
    /// `<endpoint>/<container>/<prefix>/`, without credentials.
    base: String,
    /// `None`: requests go unsigned (a container open to anonymous reads).
    credential: Option<Credential>,
    signer: RequestSigner,
    context: reqsign_core::Context,
    agent: ureq::Agent,
}

/// The REST API version jl speaks (Put Blob of up to 5000 MiB).
const API_VERSION: &str = "2021-08-06";

/// The largest blob one Put Blob may store.
const MAX_PUT: u64 = 5000 * 1024 * 1024;

impl AzBlob {
    /// `url` is `azblob://CONTAINER[/PREFIX][?endpoint=URL]`. Returns the
    /// backend and the secrets a message must never show.
    pub(super) fn new(url: &str, timeout: Duration) -> Result<(AzBlob, Vec<String>), String> {
        let rest = url
            .strip_prefix("azblob://")
            .expect("checked by the caller");
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (container, prefix) = path.split_once('/').unwrap_or((path, ""));
        if container.is_empty() {
            return Err("--remote: expected azblob://CONTAINER[/PREFIX]".to_string());
        }
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let connection = env("AZURE_STORAGE_CONNECTION_STRING").unwrap_or_default();
        let field = |name: &str| {
            connection
                .split(';')
                .filter_map(|pair| pair.split_once('='))
                .find(|(key, _)| key.trim() == name)
                .map(|(_, value)| value.trim().to_string())
        };
        let account = field("AccountName").or_else(|| env("AZURE_STORAGE_ACCOUNT"));
        let key = field("AccountKey").or_else(|| env("AZURE_STORAGE_KEY"));
        let sas = field("SharedAccessSignature").or_else(|| env("AZURE_STORAGE_SAS_TOKEN"));
        let (credential, secrets) = match (&account, key, sas) {
            (Some(account), Some(key), _) => {
                (Some(Credential::with_shared_key(account, &key)), vec![key])
            }
            (_, _, Some(sas)) => {
                let sas = sas.trim_start_matches('?').to_string();
                (Some(Credential::with_sas_token(&sas)), vec![sas])
            }
            _ => (None, Vec::new()),
        };
        let option = query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(key, _)| *key == "endpoint")
            .map(|(_, value)| value.to_string());
        let endpoint = option
            .or_else(|| field("BlobEndpoint"))
            .or_else(|| account.map(|a| format!("https://{a}.blob.core.windows.net")))
            .ok_or("--remote azblob://: no account name or endpoint")?;
        let prefix = prefix.trim_matches('/');
        let mut base = format!("{}/{container}/", endpoint.trim_end_matches('/'));
        if !prefix.is_empty() {
            base.push_str(prefix);
            base.push('/');
        }
        let backend = AzBlob {
            base,
            credential,
            signer: RequestSigner::new(),
            context: reqsign_core::Context::new(),
            agent: super::http::agent(timeout),
        };
        Ok((backend, secrets))
    }

    /// Sends `method` on the blob `name` with `body`, signed.
    fn send<B: ureq::AsSendBody>(
        &self,
        method: &str,
        name: &str,
        headers: &[(&str, String)],
        body: B,
    ) -> io::Result<ureq::http::Response<ureq::Body>> {
        let mut request = http::Request::builder()
            .method(method)
            .uri(format!("{}{name}", self.base))
            .header("x-ms-version", API_VERSION);
        for (header, value) in headers {
            request = request.header(*header, value);
        }
        let (mut parts, ()) = request.body(()).map_err(io::Error::other)?.into_parts();
        if let Some(credential) = &self.credential {
            let signing =
                self.signer
                    .sign_request(&self.context, &mut parts, Some(credential), None);
            ready(signing)
                .map_err(|e| io::Error::other(format!("cannot sign the request: {e}")))?;
        }
        let response = self.agent.run(http::Request::from_parts(parts, body));
        response.map_err(io::Error::other)
    }
}

/// The value of a future that needs nothing to wait for (signing with a
/// key in hand).
fn ready<T>(
    future: impl std::future::Future<Output = reqsign_core::Result<T>>,
) -> reqsign_core::Result<T> {
    let mut future = std::pin::pin!(future);
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut context) {
        std::task::Poll::Ready(value) => value,
        std::task::Poll::Pending => Err(reqsign_core::Error::unexpected(
            "signing waited on something",
        )),
    }
}

impl Backend for AzBlob {
    fn get(&self, name: &str) -> io::Result<Option<Box<dyn Read + Send + '_>>> {
        let response = self.send("GET", name, &[], ())?;
        match response.status().as_u16() {
            200 => Ok(Some(Box::new(response.into_body().into_reader()))),
            404 => Ok(None),
            code => Err(bad(format!("Azure GET {name}: HTTP {code}"))),
        }
    }

    fn exists(&self, name: &str) -> io::Result<bool> {
        match self.send("HEAD", name, &[], ())?.status().as_u16() {
            200 => Ok(true),
            404 => Ok(false),
            code => Err(bad(format!("Azure HEAD {name}: HTTP {code}"))),
        }
    }

    fn put(&self, name: &str, body: Payload<'_>) -> io::Result<()> {
        let blob_type = ("x-ms-blob-type", "BlockBlob".to_string());
        let response = match body {
            Payload::File(path) => {
                let file = File::open(path)?;
                let len = ("content-length", file.metadata()?.len().to_string());
                let body = ureq::SendBody::from_owned_reader(file);
                self.send("PUT", name, &[blob_type, len], body)?
            }
            Payload::Bytes(bytes) => {
                let len = ("content-length", bytes.len().to_string());
                self.send("PUT", name, &[blob_type, len], bytes)?
            }
        };
        match response.status().as_u16() {
            200..=299 => Ok(()),
            code => Err(bad(format!("Azure PUT {name}: HTTP {code}"))),
        }
    }

    fn max_blob(&self) -> Option<u64> {
        Some(MAX_PUT)
    }
}
