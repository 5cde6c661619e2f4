//! A lake: an object-store URL (`s3://bucket/prefix`, `file:///abs`, or a plain local
//! path) and a small synchronous facade over `object_store` for the bill run's few
//! operations. Object stores have no rename and no directories: everything here is a
//! list, a whole-object get, a whole-object put (atomic on every backend), a
//! put-if-absent, or a delete.

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, RetryConfig};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    #[error("lake URL '{url}': {why}")]
    Url { url: String, why: String },
    #[error("{op} '{path}' on lake {lake}: {source}")]
    Store {
        op: &'static str,
        path: String,
        lake: String,
        #[source]
        source: object_store::Error,
    },
    #[error("'{path}' on lake {lake} already exists")]
    AlreadyExists { path: String, lake: String },
}

pub type Result<T> = std::result::Result<T, LakeError>;

/// One listed object: its path relative to the lake root, its size and its e-tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    pub path: String,
    pub size: u64,
    pub e_tag: Option<String>,
}

#[derive(Clone)]
pub struct Lake {
    url: String,
    store: Arc<dyn ObjectStore>,
    prefix: String,
    rt: Arc<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for Lake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Lake({})", self.url)
    }
}

impl Lake {
    /// Opens a lake. A local lake's folder is created when `create` is set (outputs);
    /// an input lake that does not exist is an error.
    pub fn open(url: &str, create: bool) -> Result<Lake> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| LakeError::Url { url: url.into(), why: format!("cannot start I/O runtime: {e}") })?;
        Self::open_with_runtime(url, create, Arc::new(rt))
    }

    pub fn open_with_runtime(url: &str, create: bool, rt: Arc<tokio::runtime::Runtime>) -> Result<Lake> {
        let bad = |why: String| LakeError::Url { url: url.to_string(), why };
        let (store, prefix): (Arc<dyn ObjectStore>, String) = if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(bad("no bucket name".into()));
            }
            let max_retries = std::env::var("BILLRUN_S3_MAX_RETRIES").ok().and_then(|v| v.parse().ok()).unwrap_or(8);
            let retry = RetryConfig {
                max_retries,
                retry_timeout: Duration::from_secs(120),
                ..RetryConfig::default()
            };
            let s3 = AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .with_retry(retry)
                .build()
                .map_err(|e| bad(format!("cannot configure S3 (AWS_* environment): {e}")))?;
            (Arc::new(s3), prefix.trim_matches('/').to_string())
        } else if url.contains("://") && !url.starts_with("file://") {
            return Err(bad("this build reads s3://, file:// and local paths".into()));
        } else {
            let local = url.strip_prefix("file://").unwrap_or(url);
            let path = std::path::Path::new(local);
            if create {
                std::fs::create_dir_all(path).map_err(|e| bad(format!("cannot create folder: {e}")))?;
            } else if !path.is_dir() {
                return Err(bad("no such folder".into()));
            }
            let fs = LocalFileSystem::new_with_prefix(path)
                .map_err(|e| bad(e.to_string()))?
                .with_automatic_cleanup(true);
            (Arc::new(fs), String::new())
        };
        Ok(Lake { url: url.to_string(), store, prefix, rt })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    fn full(&self, rel: &str) -> Path {
        if self.prefix.is_empty() {
            Path::from(rel)
        } else {
            Path::from(format!("{}/{}", self.prefix, rel))
        }
    }

    fn rel(&self, p: &Path) -> String {
        let s = p.as_ref();
        if self.prefix.is_empty() {
            s.to_string()
        } else {
            s.strip_prefix(&self.prefix).map(|r| r.trim_start_matches('/').to_string()).unwrap_or_else(|| s.to_string())
        }
    }

    fn err(&self, op: &'static str, rel: &str, source: object_store::Error) -> LakeError {
        LakeError::Store { op, path: rel.to_string(), lake: self.url.clone(), source }
    }

    /// Every object under `rel_prefix` (recursively), sorted by path.
    pub fn list(&self, rel_prefix: &str) -> Result<Vec<Listed>> {
        let prefix = self.full(rel_prefix.trim_end_matches('/'));
        let store = self.store.clone();
        let res: std::result::Result<Vec<_>, _> =
            self.rt.block_on(async move { store.list(Some(&prefix)).try_collect::<Vec<_>>().await });
        let metas = match res {
            Ok(m) => m,
            Err(object_store::Error::NotFound { .. }) => Vec::new(),
            Err(e) => return Err(self.err("list", rel_prefix, e)),
        };
        let mut out: Vec<Listed> = metas
            .into_iter()
            .map(|m| Listed { path: self.rel(&m.location), size: m.size, e_tag: m.e_tag })
            .collect();
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    pub fn get(&self, rel: &str) -> Result<Bytes> {
        let path = self.full(rel);
        let store = self.store.clone();
        self.rt
            .block_on(async move { store.get(&path).await?.bytes().await })
            .map_err(|e| self.err("read", rel, e))
    }

    /// Reads several whole objects, up to 16 at a time (object stores are latency-
    /// bound); results in the order asked.
    pub fn get_many(&self, rels: &[String]) -> Vec<Result<Bytes>> {
        use futures::StreamExt;
        let store = self.store.clone();
        let paths: Vec<Path> = rels.iter().map(|r| self.full(r)).collect();
        let results: Vec<std::result::Result<Bytes, object_store::Error>> = self.rt.block_on(async move {
            futures::stream::iter(paths.into_iter().map(|p| {
                let store = store.clone();
                async move { store.get(&p).await?.bytes().await }
            }))
            .buffered(16)
            .collect()
            .await
        });
        results.into_iter().zip(rels).map(|(r, rel)| r.map_err(|e| self.err("read", rel, e))).collect()
    }

    /// `Ok(None)` when the object does not exist.
    pub fn get_opt(&self, rel: &str) -> Result<Option<Bytes>> {
        match self.get(rel) {
            Ok(b) => Ok(Some(b)),
            Err(LakeError::Store { source: object_store::Error::NotFound { .. }, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn exists(&self, rel: &str) -> Result<bool> {
        let path = self.full(rel);
        let store = self.store.clone();
        match self.rt.block_on(async move { store.head(&path).await }) {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.err("stat", rel, e)),
        }
    }

    /// Writes a whole object, replacing any previous one (atomic for readers).
    pub fn put(&self, rel: &str, data: Bytes) -> Result<()> {
        let path = self.full(rel);
        let store = self.store.clone();
        self.rt
            .block_on(async move { store.put(&path, PutPayload::from_bytes(data)).await })
            .map(|_| ())
            .map_err(|e| self.err("write", rel, e))
    }

    /// Writes a whole object only if none exists there yet.
    pub fn put_if_absent(&self, rel: &str, data: Bytes) -> Result<()> {
        let path = self.full(rel);
        let store = self.store.clone();
        let opts = PutOptions { mode: PutMode::Create, ..PutOptions::default() };
        match self.rt.block_on(async move { store.put_opts(&path, PutPayload::from_bytes(data), opts).await }) {
            Ok(_) => Ok(()),
            Err(object_store::Error::AlreadyExists { .. }) | Err(object_store::Error::Precondition { .. }) => {
                Err(LakeError::AlreadyExists { path: rel.to_string(), lake: self.url.clone() })
            }
            Err(e) => Err(self.err("create", rel, e)),
        }
    }

    /// Server-side copy of a whole object, replacing the target.
    pub fn copy(&self, from: &str, to: &str) -> Result<()> {
        let (f, t) = (self.full(from), self.full(to));
        let store = self.store.clone();
        self.rt.block_on(async move { store.copy(&f, &t).await }).map_err(|e| self.err("copy", from, e))
    }

    pub fn delete(&self, rel: &str) -> Result<()> {
        let path = self.full(rel);
        let store = self.store.clone();
        match self.rt.block_on(async move { store.delete(&path).await }) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.err("delete", rel, e)),
        }
    }
}

/// A streaming writer to one object: parts are uploaded as they fill, and the object
/// appears — whole — only when [`LakeWriter::finish`] completes the upload. A writer
/// dropped unfinished aborts its upload and leaves any previous object in place.
pub struct LakeWriter {
    lake: Lake,
    rel: String,
    upload: Option<Box<dyn object_store::MultipartUpload>>,
    buf: Vec<u8>,
    parts: usize,
    written: u64,
    hasher: sha2::Sha256,
}

/// Upload part size: above S3's 5 MiB minimum, small enough to bound memory.
const PART: usize = 16 * 1024 * 1024;

impl Lake {
    pub fn writer(&self, rel: &str) -> Result<LakeWriter> {
        let path = self.full(rel);
        let store = self.store.clone();
        let upload = self
            .rt
            .block_on(async move { store.put_multipart(&path).await })
            .map_err(|e| self.err("create", rel, e))?;
        Ok(LakeWriter {
            lake: self.clone(),
            rel: rel.to_string(),
            upload: Some(upload),
            buf: Vec::with_capacity(PART),
            parts: 0,
            written: 0,
            hasher: <sha2::Sha256 as sha2::Digest>::new(),
        })
    }
}

impl LakeWriter {
    fn flush_part(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let data = std::mem::replace(&mut self.buf, Vec::with_capacity(PART));
        let upload = self.upload.as_mut().ok_or_else(|| std::io::Error::other("upload already finished"))?;
        let fut = upload.put_part(PutPayload::from(data));
        self.lake.rt.block_on(fut).map_err(|e| std::io::Error::other(self.lake.err("write", &self.rel, e)))?;
        self.parts += 1;
        Ok(())
    }

    /// Uploads what is left, without completing: the object is not visible yet.
    pub fn seal(mut self) -> Result<Sealed> {
        self.flush_part().map_err(|e| LakeError::Store {
            op: "write",
            path: self.rel.clone(),
            lake: self.lake.url.clone(),
            source: object_store::Error::Generic { store: "lake", source: Box::new(e) },
        })?;
        let upload = self.upload.take().expect("seal once");
        let digest = sha2::Digest::finalize(std::mem::take(&mut self.hasher));
        Ok(Sealed {
            lake: self.lake.clone(),
            rel: self.rel.clone(),
            upload: Some(upload),
            size: self.written,
            sha256: digest.iter().map(|b| format!("{b:02x}")).collect(),
        })
    }

    /// Seals and completes at once; returns the object's size and SHA-256 (hex).
    pub fn finish(self) -> Result<(u64, String)> {
        let sealed = self.seal()?;
        let (size, sha) = (sealed.size, sealed.sha256.clone());
        sealed.complete()?;
        Ok((size, sha))
    }
}

/// An upload whose parts are all uploaded: completing it makes the object appear,
/// whole, in one step. Dropped uncompleted, it is aborted.
pub struct Sealed {
    lake: Lake,
    pub rel: String,
    upload: Option<Box<dyn object_store::MultipartUpload>>,
    pub size: u64,
    pub sha256: String,
}

impl Lake {
    /// Completes several sealed uploads at once (one round trip, not one per table),
    /// which keeps the moment where some are visible and others not as short as the
    /// store allows. Results in the order given.
    pub fn complete_all(&self, sealed: Vec<Sealed>) -> Vec<Result<()>> {
        let mut rels = Vec::with_capacity(sealed.len());
        let mut uploads = Vec::with_capacity(sealed.len());
        for mut s in sealed {
            rels.push(s.rel.clone());
            uploads.push(s.upload.take());
        }
        let results = self.rt.block_on(futures::future::join_all(uploads.into_iter().map(|u| async move {
            match u {
                Some(mut up) => up.complete().await.map(|_| ()),
                None => Ok(()),
            }
        })));
        results.into_iter().zip(rels).map(|(r, rel)| r.map_err(|e| self.err("write", &rel, e))).collect()
    }
}

impl Sealed {
    pub fn complete(mut self) -> Result<()> {
        let mut upload = self.upload.take().expect("complete once");
        let rt = self.lake.rt.clone();
        rt.block_on(async move { upload.complete().await }).map(|_| ()).map_err(|e| self.lake.err("write", &self.rel, e))
    }
}

impl Drop for Sealed {
    fn drop(&mut self) {
        if let Some(mut upload) = self.upload.take() {
            let _ = self.lake.rt.block_on(async move { upload.abort().await });
        }
    }
}

impl std::io::Write for LakeWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        sha2::Digest::update(&mut self.hasher, data);
        self.buf.extend_from_slice(data);
        self.written += data.len() as u64;
        if self.buf.len() >= PART {
            self.flush_part()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LakeWriter {
    fn drop(&mut self) {
        if let Some(mut upload) = self.upload.take() {
            let _ = self.lake.rt.block_on(async move { upload.abort().await });
        }
    }
}
