//! A lake: an object-store URL (`s3://bucket/prefix`, `gs://bucket/prefix`,
//! `az://container/prefix`, `abfss://container@account.dfs.core.windows.net/prefix`,
//! `file:///abs`, or a plain local path) and a small synchronous facade over `object_store` for the bill run's few
//! operations. Object stores have no rename and no directories: everything here is a
//! list, a whole-object get, a whole-object put (atomic on every backend), a
//! put-if-absent, or a delete.

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, RetryConfig};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    #[error("lake URL '{url}': {why}")]
    Url { url: String, why: String },
    /// The store's error, whose message already carries its causes: it is not
    /// chained again as a source, so an error prints each cause once.
    #[error("{op} '{path}' on lake {lake}: {error}")]
    Store { op: &'static str, path: String, lake: String, error: object_store::Error },
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

/// How the object stores are used: what the command line and the config decide, read
/// once at the door and handed down (the adapter reads no setting of its own).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreOptions {
    /// Retries of a transient object-store error before the run gives up.
    pub max_retries: usize,
}

impl Default for StoreOptions {
    fn default() -> StoreOptions {
        StoreOptions { max_retries: 8 }
    }
}

/// The object store of a cloud lake's bucket or container (`root` is the URL without
/// the prefix), configured from its backend's standard environment variables: `AWS_*`
/// for S3, `GOOGLE_*` for Google Cloud Storage, `AZURE_*` (and `AZURITE_*` for the
/// emulator) for Azure Blob Storage. Every backend retries transient errors alike.
fn cloud_store(scheme: &str, root: &str, options: StoreOptions) -> std::result::Result<Arc<dyn ObjectStore>, String> {
    let retry = RetryConfig { max_retries: options.max_retries, retry_timeout: Duration::from_secs(120), ..RetryConfig::default() };
    // A backend's configuration error names the setting, never its value.
    let built = match scheme {
        "s3" => AmazonS3Builder::from_env()
            .with_bucket_name(root.trim_start_matches("s3://"))
            .with_retry(retry)
            .build()
            .map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
            .map_err(|e| ("S3 (AWS_* environment)", e)),
        "gs" => GoogleCloudStorageBuilder::from_env()
            .with_url(root)
            .with_retry(retry)
            .build()
            .map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
            .map_err(|e| ("Google Cloud Storage (GOOGLE_* environment)", e)),
        _ => MicrosoftAzureBuilder::from_env()
            .with_url(root)
            .with_retry(retry)
            .build()
            .map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
            .map_err(|e| ("Azure Blob Storage (AZURE_* environment)", e)),
    };
    built.map_err(|(what, e)| format!("cannot configure {what}: {e}"))
}

impl Lake {
    /// Opens a lake with the default [`StoreOptions`].
    pub fn open(url: &str, create: bool) -> Result<Lake> {
        Self::open_with(url, create, StoreOptions::default())
    }

    /// Opens a lake. A local lake's folder is created when `create` is set (outputs);
    /// an input lake that does not exist is an error.
    pub fn open_with(url: &str, create: bool, options: StoreOptions) -> Result<Lake> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| LakeError::Url { url: url.into(), why: format!("cannot start I/O runtime: {e}") })?;
        Self::open_with_runtime(url, create, options, Arc::new(rt))
    }

    pub fn open_with_runtime(url: &str, create: bool, options: StoreOptions, rt: Arc<tokio::runtime::Runtime>) -> Result<Lake> {
        let bad = |why: String| LakeError::Url { url: url.to_string(), why };
        let (store, prefix): (Arc<dyn ObjectStore>, String) = match url.split_once("://") {
            Some((scheme @ ("s3" | "gs" | "az" | "abfss"), rest)) => {
                let (root, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                if root.is_empty() {
                    return Err(bad(format!("no {} name", if scheme == "s3" || scheme == "gs" { "bucket" } else { "container" })));
                }
                let store = cloud_store(scheme, &format!("{scheme}://{root}"), options).map_err(bad)?;
                (store, prefix.trim_matches('/').to_string())
            }
            Some((scheme, _)) if scheme != "file" => {
                return Err(bad(format!("unknown store '{scheme}://': a lake is s3://, gs://, az://, abfss://, file:// or a local path")));
            }
            _ => {
                let local = url.strip_prefix("file://").unwrap_or(url);
                let path = std::path::Path::new(local);
                if create {
                    std::fs::create_dir_all(path).map_err(|e| bad(format!("cannot create folder: {e}")))?;
                } else if !path.is_dir() {
                    return Err(bad("no such folder".into()));
                }
                let fs = LocalFileSystem::new_with_prefix(path).map_err(|e| bad(e.to_string()))?.with_automatic_cleanup(true);
                (Arc::new(fs), String::new())
            }
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
        LakeError::Store { op, path: rel.to_string(), lake: self.url.clone(), error: source }
    }

    /// Every object under `rel_prefix` (recursively), sorted by path.
    pub fn list(&self, rel_prefix: &str) -> Result<Vec<Listed>> {
        let prefix = self.full(rel_prefix.trim_end_matches('/'));
        let store = self.store.clone();
        let res: std::result::Result<Vec<_>, _> = self.rt.block_on(async move { store.list(Some(&prefix)).try_collect::<Vec<_>>().await });
        let metas = match res {
            Ok(m) => m,
            Err(object_store::Error::NotFound { .. }) => Vec::new(),
            Err(e) => return Err(self.err("list", rel_prefix, e)),
        };
        let mut out: Vec<Listed> = metas.into_iter().map(|m| Listed { path: self.rel(&m.location), size: m.size, e_tag: m.e_tag }).collect();
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    pub fn get(&self, rel: &str) -> Result<Bytes> {
        let path = self.full(rel);
        let store = self.store.clone();
        self.rt.block_on(async move { store.get(&path).await?.bytes().await }).map_err(|e| self.err("read", rel, e))
    }

    /// Reads bytes `range` of an object.
    pub fn get_range(&self, rel: &str, range: std::ops::Range<u64>) -> Result<Bytes> {
        let path = self.full(rel);
        let store = self.store.clone();
        self.rt.block_on(async move { store.get_range(&path, range).await }).map_err(|e| self.err("read", rel, e))
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
            Err(LakeError::Store { error: object_store::Error::NotFound { .. }, .. }) => Ok(None),
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
        self.rt.block_on(async move { store.put(&path, PutPayload::from_bytes(data)).await }).map(|_| ()).map_err(|e| self.err("write", rel, e))
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
    /// The digest of the parts handed over so far; `None` while a part is in flight
    /// (the part's upload task holds it, hashes the part, and gives it back).
    hasher: Option<sha2::Sha256>,
    /// The part being hashed and uploaded on the I/O runtime while the caller goes on
    /// filling the next one: at most one at a time, so parts are hashed in order. It
    /// gives its bytes back once uploaded.
    in_flight: Option<tokio::task::JoinHandle<std::result::Result<(sha2::Sha256, bytes::Bytes), object_store::Error>>>,
    /// The buffer of the part uploaded last, when the store let go of it: the next
    /// part is filled in it, in memory already touched, not in fresh pages the system
    /// must zero.
    spare: Option<Vec<u8>>,
}

/// Upload part size: above S3's 5 MiB minimum, small enough to bound memory (a
/// close holds a part, and one in flight, for each of its dozen tables).
const PART: usize = 8 * 1024 * 1024;
/// Parts of [`PART`] bytes an object is written in before its parts grow to
/// [`LARGE_PART`]: S3 takes at most 10,000 parts, so an object can grow to
/// 4,000 × 8 MiB + 6,000 × 64 MiB = 406 GB.
const SMALL_PARTS: usize = 4_000;
const LARGE_PART: usize = 64 * 1024 * 1024;
// S3's least part (the last one excepted).
const _: () = assert!(PART >= 5 * 1024 * 1024);

/// The size of the part after `parts` parts.
fn part_size(parts: usize) -> usize {
    if parts < SMALL_PARTS {
        PART
    } else {
        LARGE_PART
    }
}

impl Lake {
    pub fn writer(&self, rel: &str) -> Result<LakeWriter> {
        let path = self.full(rel);
        let store = self.store.clone();
        let upload = self.rt.block_on(async move { store.put_multipart(&path).await }).map_err(|e| self.err("create", rel, e))?;
        Ok(LakeWriter {
            lake: self.clone(),
            rel: rel.to_string(),
            upload: Some(upload),
            buf: Vec::with_capacity(PART),
            parts: 0,
            written: 0,
            hasher: Some(<sha2::Sha256 as sha2::Digest>::new()),
            in_flight: None,
            spare: None,
        })
    }
}

impl LakeWriter {
    /// Hands the filled buffer to the I/O runtime, which hashes and uploads it while
    /// the caller (an encoding thread) goes on: the caller waits only for the part
    /// before, so that one part is in flight at a time.
    fn flush_part(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let mut hasher = self.settle_part()?;
        let next = self.spare.take().unwrap_or_else(|| Vec::with_capacity(part_size(self.parts + 1)));
        let data = bytes::Bytes::from(std::mem::replace(&mut self.buf, next));
        let upload = self.upload.as_mut().ok_or_else(|| std::io::Error::other("upload already finished"))?;
        let put = upload.put_part(PutPayload::from(data.clone()));
        self.in_flight = Some(self.lake.rt.spawn(async move {
            sha2::Digest::update(&mut hasher, &data);
            put.await.map(|()| (hasher, data))
        }));
        self.parts += 1;
        Ok(())
    }

    /// Waits for the part in flight, if any; the digest of every part so far.
    fn settle_part(&mut self) -> std::io::Result<sha2::Sha256> {
        if let Some(task) = self.in_flight.take() {
            let done = self.lake.rt.block_on(task).map_err(|e| std::io::Error::other(format!("{}: part upload stopped: {e}", self.rel)))?;
            let (hasher, data) = done.map_err(|e| std::io::Error::other(self.lake.err("write", &self.rel, e)))?;
            self.hasher = Some(hasher);
            // The part's buffer back, unless the store still holds it (then it is
            // left to the store, and the next part gets a new one).
            self.spare = data.try_into_mut().ok().map(|mut b| {
                b.clear();
                Vec::from(b)
            });
        }
        self.hasher.take().ok_or_else(|| std::io::Error::other(format!("{}: an earlier part failed", self.rel)))
    }

    /// Uploads what is left, without completing: the object is not visible yet.
    pub fn seal(mut self) -> Result<Sealed> {
        let store_err = |w: &LakeWriter, e: std::io::Error| LakeError::Store {
            op: "write",
            path: w.rel.clone(),
            lake: w.lake.url.clone(),
            error: object_store::Error::Generic { store: "lake", source: Box::new(e) },
        };
        // The last part is hashed and uploaded here: nothing is left to overlap with.
        let mut hasher = self.settle_part().map_err(|e| store_err(&self, e))?;
        let mut upload = self.upload.take().expect("seal once");
        if !self.buf.is_empty() {
            let data = std::mem::take(&mut self.buf);
            sha2::Digest::update(&mut hasher, &data);
            self.lake.rt.block_on(upload.put_part(PutPayload::from(data))).map_err(|e| self.lake.err("write", &self.rel, e))?;
            self.parts += 1;
        }
        let digest = sha2::Digest::finalize(hasher);
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
    /// Fills the part up to its size ([`part_size`]) and hands it over, then goes on with the
    /// rest: a write that crosses the boundary (a column chunk, often megabytes) does
    /// not grow the part's buffer, which would copy the part and touch twice its
    /// memory.
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let mut rest = data;
        while !rest.is_empty() {
            let size = part_size(self.parts);
            let take = size.saturating_sub(self.buf.len()).min(rest.len());
            self.buf.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.buf.len() >= size {
                self.flush_part()?;
            }
        }
        self.written += data.len() as u64;
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LakeWriter {
    fn drop(&mut self) {
        // The part in flight first: aborting under it could leave it behind.
        if let Some(task) = self.in_flight.take() {
            let _ = self.lake.rt.block_on(task);
        }
        if let Some(mut upload) = self.upload.take() {
            let _ = self.lake.rt.block_on(async move { upload.abort().await });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Bytes that differ from part to part, so a part written twice or out of order
    /// changes the object.
    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i as u64).wrapping_mul(2_654_435_761).rotate_right(13) as u8).collect()
    }

    #[test]
    fn parts_grow_so_that_an_object_of_hundreds_of_gigabytes_fits_in_s3s_ten_thousand() {
        assert_eq!((part_size(0), part_size(SMALL_PARTS - 1), part_size(SMALL_PARTS)), (PART, PART, LARGE_PART));
        let most: u64 = (0..10_000).map(|i| part_size(i) as u64).sum();
        assert!(most > 400_000_000_000, "{most}");
    }

    #[test]
    fn an_object_of_several_parts_has_its_bytes_and_their_digest() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap(), true).unwrap();
        // Parts in flight one after the other, and a short last one; written in
        // pieces that straddle the part boundaries.
        let data = pattern(3 * PART + 12_345);
        let mut w = lake.writer("t/part-0.parquet").unwrap();
        let mut buffers = std::collections::BTreeSet::new();
        for piece in data.chunks(1_000_003) {
            w.write_all(piece).unwrap();
            assert!(w.buf.len() < PART && w.buf.capacity() == PART, "a full part is handed over at once, its buffer never grown");
            buffers.insert(w.buf.as_ptr() as usize);
        }
        assert!(w.parts >= 3, "parts handed over before the seal: {}", w.parts);
        // The local store lets go of a part once written: two buffers take turns.
        assert!(buffers.len() <= 2, "{} buffers for {} parts", buffers.len(), w.parts);
        let (size, sha) = w.finish().unwrap();
        assert_eq!(size, data.len() as u64);
        let digest = <sha2::Sha256 as sha2::Digest>::digest(&data);
        assert_eq!(sha, digest.iter().map(|b| format!("{b:02x}")).collect::<String>());
        assert!(lake.get("t/part-0.parquet").unwrap() == data, "the object's bytes are those written, in order");
    }

    #[test]
    fn a_writer_dropped_with_a_part_in_flight_leaves_no_object() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap(), true).unwrap();
        let mut w = lake.writer("t/part-0.parquet").unwrap();
        w.write_all(&pattern(PART + 1)).unwrap();
        assert!(w.in_flight.is_some());
        drop(w);
        assert!(lake.get_opt("t/part-0.parquet").unwrap().is_none());
    }
}
