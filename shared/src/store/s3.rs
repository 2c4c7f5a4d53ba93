//! S3 (or any S3-compatible server: MinIO, moto) as object store.
//!
//! Credentials and region come from the standard AWS chain (environment, profile,
//! container and instance roles). `AWS_ENDPOINT_URL_S3` (or `AWS_ENDPOINT_URL`) points
//! at another server; path-style addressing is then used, as such servers expect.
//! Immutable objects are written with `If-None-Match: *`, so a retry or a concurrent
//! run can never replace one. Objects above the multipart threshold are uploaded in
//! parts (and the parts aborted on failure). The SDK retries throttling, 5xx and
//! transient network errors with backoff; every error names the operation, bucket and
//! key.

use std::time::Duration;

use async_trait::async_trait;
use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_sdk_s3::Client;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use bytes::Bytes;

use super::{ObjectKey, ObjectStore, StoreError};
use crate::config::S3Config;

/// Parts are 8 MiB (S3's minimum is 5 MiB, except for the last part).
const DEFAULT_PART_SIZE: usize = 8 << 20;
/// Objects above 16 MiB go up in parts unless `RPS_S3_MULTIPART_THRESHOLD_MB` says otherwise.
const DEFAULT_MULTIPART_THRESHOLD: usize = 16 << 20;

#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
    prefix: String,
    multipart_threshold: usize,
    part_size: usize,
}

impl S3Store {
    /// The AWS configuration loader rps uses: the standard chain, rustls with ring,
    /// and retries with backoff (5 attempts).
    pub fn config_loader() -> aws_config::ConfigLoader {
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(Provider::Rustls(CryptoMode::Ring))
            .build_https();
        aws_config::defaults(BehaviorVersion::latest())
            .http_client(http)
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(5)
                    .with_initial_backoff(Duration::from_millis(200)),
            )
    }

    /// Connects with the standard AWS configuration chain.
    pub async fn connect(bucket: &str, prefix: &str, cfg: &S3Config) -> Result<Self, StoreError> {
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .operation_attempt_timeout(cfg.attempt_timeout)
            .operation_timeout(cfg.operation_timeout)
            .connect_timeout(Duration::from_secs(10))
            .build();
        let sdk = Self::config_loader().timeout_config(timeouts).load().await;
        Ok(Self::from_sdk_config(&sdk, bucket, prefix, cfg.custom_endpoint)
            .with_multipart_threshold(cfg.multipart_threshold))
    }

    /// A store from an explicit SDK configuration; path-style addressing for
    /// S3-compatible servers.
    pub fn from_sdk_config(
        sdk: &aws_config::SdkConfig,
        bucket: &str,
        prefix: &str,
        path_style: bool,
    ) -> Self {
        let mut conf = aws_sdk_s3::config::Builder::from(sdk).force_path_style(path_style);
        if sdk.region().is_none() {
            // S3-compatible servers do not care; AWS itself needs AWS_REGION.
            conf = conf.region(aws_sdk_s3::config::Region::new("us-east-1"));
        }
        Self {
            client: Client::from_conf(conf.build()),
            bucket: bucket.to_owned(),
            prefix: prefix.trim_matches('/').to_owned(),
            multipart_threshold: DEFAULT_MULTIPART_THRESHOLD,
            part_size: DEFAULT_PART_SIZE,
        }
    }

    /// Sets the multipart threshold (minimum 5 MiB, as S3 requires of parts).
    pub fn with_multipart_threshold(mut self, bytes: usize) -> Self {
        self.multipart_threshold = bytes.max(5 << 20);
        self.part_size = DEFAULT_PART_SIZE.min(self.multipart_threshold).max(5 << 20);
        self
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    fn full_key(&self, key: &ObjectKey) -> String {
        if self.prefix.is_empty() {
            key.as_str().to_owned()
        } else {
            format!("{}/{}", self.prefix, key.as_str())
        }
    }

    fn err<E>(&self, operation: &'static str, key: &str, e: SdkError<E>) -> StoreError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let url = format!("s3://{}/{key}", self.bucket);
        let code = e
            .as_service_error()
            .and_then(|s| s.code())
            .unwrap_or_default()
            .to_owned();
        let status = e.raw_response().map(|r| r.status().as_u16());
        // A missing object: NoSuchKey, or a body-less 404 from HEAD. A missing bucket
        // (NoSuchBucket, also a 404) is an error, not an absent object.
        let missing =
            code == "NoSuchKey" || (operation == "head" && status == Some(404) && code != "NoSuchBucket");
        match (code.as_str(), status) {
            _ if missing => StoreError::NotFound { url },
            ("AccessDenied" | "AllAccessDisabled", _) | (_, Some(403)) => {
                StoreError::AccessDenied { operation, url }
            }
            ("PreconditionFailed" | "ConditionalRequestConflict", _) | (_, Some(412)) => {
                StoreError::AlreadyExists { url }
            }
            _ => StoreError::io(operation, url, DisplayErrorContext(e).to_string()),
        }
    }

    async fn put_single(&self, key: &str, body: Bytes, create_only: bool) -> Result<(), StoreError> {
        let mut req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/octet-stream")
            .body(ByteStream::from(body));
        if create_only {
            req = req.if_none_match("*");
        }
        req.send().await.map(|_| ()).map_err(|e| self.err("put", key, e))
    }

    async fn put_multipart(&self, key: &str, body: Bytes, create_only: bool) -> Result<(), StoreError> {
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/octet-stream")
            .send()
            .await
            .map_err(|e| self.err("start multipart upload of", key, e))?;
        let upload_id = created.upload_id().unwrap_or_default().to_owned();
        let result = async {
            let mut parts = Vec::new();
            for (i, chunk) in body.chunks(self.part_size).enumerate() {
                let number = i as i32 + 1;
                let part = self
                    .client
                    .upload_part()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(&upload_id)
                    .part_number(number)
                    .body(ByteStream::from(body.slice_ref(chunk)))
                    .send()
                    .await
                    .map_err(|e| self.err("upload part of", key, e))?;
                parts.push(
                    CompletedPart::builder()
                        .part_number(number)
                        .set_e_tag(part.e_tag().map(str::to_owned))
                        .build(),
                );
            }
            let mut complete = self
                .client
                .complete_multipart_upload()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(&upload_id)
                .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build());
            if create_only {
                complete = complete.if_none_match("*");
            }
            complete
                .send()
                .await
                .map(|_| ())
                .map_err(|e| self.err("complete multipart upload of", key, e))
        }
        .await;
        if result.is_err() {
            let _ = self
                .client
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(&upload_id)
                .send()
                .await;
        }
        result
    }

    async fn put_any(&self, key: &ObjectKey, body: Bytes, create_only: bool) -> Result<(), StoreError> {
        let key = self.full_key(key);
        // An object is never replaced in part: single puts are atomic, and a multipart
        // upload only appears when completed.
        if create_only && body.len() > self.multipart_threshold {
            // Conditional completion is not supported everywhere: check first as well.
            let exists = self
                .client
                .head_object()
                .bucket(&self.bucket)
                .key(&key)
                .send()
                .await
                .is_ok();
            if exists {
                return Err(StoreError::AlreadyExists {
                    url: format!("s3://{}/{key}", self.bucket),
                });
            }
        }
        if body.len() > self.multipart_threshold {
            self.put_multipart(&key, body, create_only).await
        } else {
            self.put_single(&key, body, create_only).await
        }
    }
}

#[async_trait]
impl ObjectStore for S3Store {
    async fn put(&self, key: &ObjectKey, body: Bytes) -> Result<(), StoreError> {
        self.put_any(key, body, false).await
    }

    async fn put_new(&self, key: &ObjectKey, body: Bytes) -> Result<(), StoreError> {
        match self.put_any(key, body.clone(), true).await {
            // The SDK retries a put whose answer was lost; the retry then finds our own
            // object. Same bytes: our write, done.
            Err(e @ StoreError::AlreadyExists { .. }) => match super::holds(self, key, &body).await {
                true => Ok(()),
                false => Err(e),
            },
            other => other,
        }
    }

    async fn get(&self, key: &ObjectKey) -> Result<Bytes, StoreError> {
        let full = self.full_key(key);
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&full)
            .send()
            .await
            .map_err(|e| self.err("get", &full, e))?;
        let data = out
            .body
            .collect()
            .await
            .map_err(|e| StoreError::io("read", format!("s3://{}/{full}", self.bucket), e.to_string()))?;
        Ok(data.into_bytes())
    }

    async fn exists(&self, key: &ObjectKey) -> Result<bool, StoreError> {
        let full = self.full_key(key);
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(&full)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) => match self.err("head", &full, e) {
                StoreError::NotFound { .. } => Ok(false),
                other => Err(other),
            },
        }
    }

    async fn delete(&self, key: &ObjectKey) -> Result<(), StoreError> {
        let full = self.full_key(key);
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(&full)
            .send()
            .await
            .map_err(|e| self.err("delete", &full, e))?;
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectKey>, StoreError> {
        let full_prefix = if self.prefix.is_empty() {
            prefix.to_owned()
        } else {
            format!("{}/{prefix}", self.prefix)
        };
        let strip = if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        };
        let mut keys = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&full_prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.err("list", &full_prefix, e))?;
            for obj in page.contents() {
                if let Some(k) = obj.key().and_then(|k| k.strip_prefix(&strip))
                    && let Ok(k) = ObjectKey::new(k)
                {
                    keys.push(k);
                }
            }
        }
        keys.sort();
        Ok(keys)
    }

    fn url(&self, key: &ObjectKey) -> String {
        format!("s3://{}/{}", self.bucket, self.full_key(key))
    }
}
