//! The S3 store against a real S3 API (moto on a free port), and its retries against a
//! scripted stub.

use std::time::Duration;

use aws_sdk_s3::config::{Credentials, Region};
use bytes::Bytes;
use rps_core::store::{ObjectKey, ObjectStore, S3Store, StoreError};
use testkit::moto::MotoServer;
use testkit::stub::{Reply, Stub};

async fn store(endpoint: &str, bucket: &str, prefix: &str) -> S3Store {
    let sdk = S3Store::config_loader()
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .region(Region::new("us-east-1"))
        .load()
        .await;
    S3Store::from_sdk_config(&sdk, bucket, prefix, true)
}

fn key(s: &str) -> ObjectKey {
    ObjectKey::new(s).unwrap()
}

#[tokio::test]
async fn put_get_list_under_a_prefix() {
    let _turn = testkit::turn(module_path!());
    let Some(moto) = MotoServer::start() else { return };
    moto.create_bucket("rps-test");
    let s = store(&moto.endpoint, "rps-test", "env/prod").await;
    s.put(&key("raw/a.json"), Bytes::from_static(b"A")).await.unwrap();
    s.put(&key("raw/b.json"), Bytes::from_static(b"B")).await.unwrap();
    s.put(&key("datasets/x/manifest.json"), Bytes::from_static(b"{}"))
        .await
        .unwrap();
    assert_eq!(&s.get(&key("raw/b.json")).await.unwrap()[..], b"B");
    assert_eq!(
        s.list("raw/").await.unwrap(),
        [key("raw/a.json"), key("raw/b.json")]
    );
    assert_eq!(s.list("").await.unwrap().len(), 3);
    assert!(s.exists(&key("raw/a.json")).await.unwrap());
    assert!(!s.exists(&key("raw/zzz.json")).await.unwrap());
    assert_eq!(s.url(&key("raw/a.json")), "s3://rps-test/env/prod/raw/a.json");
    // The prefix really is where the objects went: an unprefixed view sees the full keys.
    let root = store(&moto.endpoint, "rps-test", "").await;
    assert_eq!(&root.get(&key("env/prod/raw/a.json")).await.unwrap()[..], b"A");
    // Listing beyond one page (1000 keys).
    for i in 0..1005 {
        s.put(&key(&format!("many/{i:05}")), Bytes::from_static(b"x"))
            .await
            .unwrap();
    }
    assert_eq!(s.list("many/").await.unwrap().len(), 1005);
}

#[tokio::test]
async fn a_conditional_put_refuses_to_overwrite() {
    let _turn = testkit::turn(module_path!());
    let Some(moto) = MotoServer::start() else { return };
    moto.create_bucket("rps-test");
    let s = store(&moto.endpoint, "rps-test", "p").await;
    let k = key("raw/snapshot.json");
    s.put_new(&k, Bytes::from_static(b"first")).await.unwrap();
    let err = s.put_new(&k, Bytes::from_static(b"second")).await.unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists { .. }), "{err}");
    assert!(
        err.to_string().contains("s3://rps-test/p/raw/snapshot.json"),
        "{err}"
    );
    assert_eq!(&s.get(&k).await.unwrap()[..], b"first");
    // A plain put may replace (mutable objects such as alias maps).
    s.put(&k, Bytes::from_static(b"third")).await.unwrap();
    assert_eq!(&s.get(&k).await.unwrap()[..], b"third");
}

#[tokio::test]
async fn large_objects_go_up_in_parts() {
    let _turn = testkit::turn(module_path!());
    let Some(moto) = MotoServer::start() else { return };
    moto.create_bucket("rps-test");
    let s = store(&moto.endpoint, "rps-test", "p")
        .await
        .with_multipart_threshold(5 << 20);
    let big = Bytes::from(
        (0..(12u32 << 20) / 4)
            .flat_map(|i| i.to_le_bytes())
            .collect::<Vec<u8>>(),
    );
    let k = key("dvc/files/md5/ab/big");
    s.put_new(&k, big.clone()).await.unwrap();
    let got = s.get(&k).await.unwrap();
    assert_eq!(got.len(), big.len());
    assert!(got == big, "the multipart object came back different");
    // Multipart completion of an immutable object still refuses an overwrite (other
    // bytes; the same bytes again are the same write, retried).
    let mut other = big.to_vec();
    other[0] ^= 1;
    let err = s.put_new(&k, Bytes::from(other)).await.unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists { .. }), "{err}");
    // Moto reports the ETag of a multipart upload as "<md5 of part md5s>-<parts>".
    let etag = aws_etag(&moto.endpoint, "rps-test", "p/dvc/files/md5/ab/big").await;
    assert!(
        etag.trim_matches('"').ends_with("-2") || etag.trim_matches('"').ends_with("-3"),
        "etag {etag}"
    );
}

async fn aws_etag(endpoint: &str, bucket: &str, key: &str) -> String {
    let resp = reqwest::Client::new()
        .head(format!("{endpoint}/{bucket}/{key}"))
        .send()
        .await
        .unwrap();
    resp.headers().get("etag").unwrap().to_str().unwrap().to_owned()
}

#[tokio::test]
async fn errors_name_the_operation_bucket_and_key() {
    let _turn = testkit::turn(module_path!());
    let Some(moto) = MotoServer::start() else { return };
    moto.create_bucket("rps-test");
    let s = store(&moto.endpoint, "rps-test", "p").await;
    let err = s.get(&key("nope.json")).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    assert_eq!(err.to_string(), "object s3://rps-test/p/nope.json does not exist");
    let missing = store(&moto.endpoint, "no-such-bucket", "p").await;
    let err = missing
        .put(&key("a"), Bytes::from_static(b"a"))
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("put s3://no-such-bucket/p/a failed"), "{msg}");
    assert!(msg.contains("NoSuchBucket"), "{msg}");
}

#[tokio::test]
async fn transient_errors_are_retried() {
    let _turn = testkit::turn(module_path!());
    let stub = Stub::start(vec![
        Reply::text(
            503,
            "<Error><Code>SlowDown</Code><Message>Reduce your request rate.</Message></Error>",
        ),
        Reply::text(
            500,
            "<Error><Code>InternalError</Code><Message>oops</Message></Error>",
        ),
        Reply::new(200, "hello").header("etag", "\"5d41402abc4b2a76b9719d911017c592\""),
    ])
    .await;
    let s = store(&stub.url(), "bucket", "").await;
    let started = std::time::Instant::now();
    let got = s.get(&key("k")).await.unwrap();
    assert_eq!(&got[..], b"hello");
    assert_eq!(stub.hits(), 3, "two failures, then success");
    assert!(started.elapsed() < Duration::from_secs(20));
    let uris: Vec<String> = stub.requests().iter().map(|r| r.uri.clone()).collect();
    assert!(
        uris.iter().all(|u| u.starts_with("/bucket/k")),
        "path-style requests: {uris:?}"
    );
}

#[tokio::test]
async fn a_create_only_put_whose_answer_was_lost_is_our_own_write() {
    let _turn = testkit::turn(module_path!());
    // The first attempt stored the object but its answer was lost (a 500); the SDK's
    // retry then finds the key taken (412). The object holds our bytes: success.
    let precondition = "<Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message></Error>";
    let stub = Stub::start(vec![
        Reply::text(
            500,
            "<Error><Code>InternalError</Code><Message>oops</Message></Error>",
        ),
        Reply::text(412, precondition),
        Reply::new(200, "ours").header("etag", "\"x\""),
    ])
    .await;
    let s = store(&stub.url(), "bucket", "").await;
    s.put_new(&key("k"), Bytes::from_static(b"ours")).await.unwrap();
    // Someone else's object under the key is still a refusal.
    let stub = Stub::start(vec![
        Reply::text(412, precondition),
        Reply::new(200, "theirs").header("etag", "\"y\""),
    ])
    .await;
    let s = store(&stub.url(), "bucket", "").await;
    let err = s
        .put_new(&key("k"), Bytes::from_static(b"ours"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists { .. }), "{err}");
}
