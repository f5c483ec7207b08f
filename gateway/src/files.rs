//! The files of the national interface: what a HIS uploads with 9101 (3202's detail list) and what it
//! downloads with 9102 (3202's result). Each is kept for `FILE_TTL` under its caller's paasid — one caller
//! never reads another's — in this process or in the Redis the replicas share (the nonces' Redis), at most
//! `MAX_FILES_PER_PAASID` per caller at once. Also the zip a HIS wraps its file in: the first entry is
//! read (stored or deflated), and 3202's result is answered as a zip with one stored entry.

use crate::limits::{FILE_TTL, MAX_FILE_BYTES, MAX_FILES_PER_PAASID};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// Where files are kept.
pub enum FileStore {
    Memory(Mutex<HashMap<String, MemoryFile>>),
    Redis(redis::aio::ConnectionManager, redis::Script),
    Cluster(redis::cluster_async::ClusterConnection, redis::Script),
}

pub struct MemoryFile {
    paasid: String,
    filename: String,
    bytes: Vec<u8>,
    expires: Instant,
}

/// A file kept: its national names.
#[derive(Debug, Clone)]
pub struct StoredFile {
    pub file_qury_no: String,
    pub filename: String,
    /// When it can no longer be downloaded, `yyyy-MM-dd HH:mm:ss` (Beijing).
    pub dld_endtime: String,
}

/// Why a file was not kept or read.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("at most {MAX_FILES_PER_PAASID} files are kept per caller at once; older ones expire after {} hours", FILE_TTL.as_secs() / 3600)]
    Full,
    #[error("the file store is unavailable: {0}")]
    Unavailable(String),
}

const PUT_SCRIPT: &str = r"
-- KEYS: 1 the caller's file index (sorted by expiry), 2 the file. ARGV: 1 ttl ms, 2 max files, 3 name, 4 bytes.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[2], 'name', ARGV[3], 'data', ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), KEYS[2])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
";

impl FileStore {
    pub fn memory() -> FileStore {
        FileStore::Memory(Mutex::new(HashMap::new()))
    }
    pub fn redis(c: redis::aio::ConnectionManager) -> FileStore {
        FileStore::Redis(c, redis::Script::new(PUT_SCRIPT))
    }
    pub fn cluster(c: redis::cluster_async::ClusterConnection) -> FileStore {
        FileStore::Cluster(c, redis::Script::new(PUT_SCRIPT))
    }

    /// The caller's file index and a file's key (one slot per caller on a cluster).
    fn keys(paasid: &str, no: &str) -> (String, String) {
        (format!("gw:files:{{{paasid}}}"), format!("gw:file:{{{paasid}}}:{no}"))
    }

    /// Keeps `bytes` for `paasid`; its number and download deadline.
    pub async fn put(&self, paasid: &str, filename: &str, bytes: Vec<u8>) -> Result<StoredFile, FileError> {
        let no = new_file_no()?;
        match self {
            FileStore::Memory(m) => {
                let now = Instant::now();
                let mut all = m.lock().expect("file store lock");
                all.retain(|_, f| f.expires > now);
                if all.values().filter(|f| f.paasid == paasid).count() >= MAX_FILES_PER_PAASID {
                    return Err(FileError::Full);
                }
                let f = MemoryFile { paasid: paasid.into(), filename: filename.into(), bytes, expires: now + FILE_TTL };
                all.insert(no.clone(), f);
            }
            FileStore::Redis(_, script) | FileStore::Cluster(_, script) => {
                let (index, key) = Self::keys(paasid, &no);
                let mut inv = script.prepare_invoke();
                inv.key(index).key(key).arg(FILE_TTL.as_millis() as u64).arg(MAX_FILES_PER_PAASID).arg(filename).arg(bytes);
                let kept: i64 = match self {
                    FileStore::Redis(c, _) => inv.invoke_async(&mut c.clone()).await,
                    FileStore::Cluster(c, _) => inv.invoke_async(&mut c.clone()).await,
                    FileStore::Memory(_) => unreachable!("matched above"),
                }
                .map_err(|e| FileError::Unavailable(e.to_string()))?;
                if kept == 0 {
                    return Err(FileError::Full);
                }
            }
        }
        let end = chrono::Utc::now() + chrono::Duration::from_std(FILE_TTL).expect("a day fits");
        Ok(StoredFile { file_qury_no: no, filename: filename.into(), dld_endtime: crate::envelope::national_datetime(end) })
    }

    /// `paasid`'s file `no` (its name and bytes), if it is kept.
    pub async fn get(&self, paasid: &str, no: &str) -> Result<Option<(String, Vec<u8>)>, FileError> {
        match self {
            FileStore::Memory(m) => {
                let all = m.lock().expect("file store lock");
                Ok(all.get(no).filter(|f| f.paasid == paasid && f.expires > Instant::now()).map(|f| (f.filename.clone(), f.bytes.clone())))
            }
            FileStore::Redis(..) | FileStore::Cluster(..) => {
                let (_, key) = Self::keys(paasid, no);
                let mut cmd = redis::cmd("HMGET");
                cmd.arg(key).arg("name").arg("data");
                let got: (Option<String>, Option<Vec<u8>>) = match self {
                    FileStore::Redis(c, _) => cmd.query_async(&mut c.clone()).await,
                    FileStore::Cluster(c, _) => cmd.query_async(&mut c.clone()).await,
                    FileStore::Memory(_) => unreachable!("matched above"),
                }
                .map_err(|e| FileError::Unavailable(e.to_string()))?;
                Ok(match got {
                    (Some(name), Some(data)) => Some((name, data)),
                    _ => None,
                })
            }
        }
    }
}

/// A new file number, national-looking (`fsi/gw/` + 32 random hex digits): unguessable, so a number
/// alone never reaches a file (and files are per caller besides).
fn new_file_no() -> Result<String, FileError> {
    let mut b = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b)
        .map_err(|_| FileError::Unavailable("no system randomness".into()))?;
    Ok(format!("fsi/gw/{}", hex::encode(b)))
}

/// The content of an uploaded file: a zip's first file entry (stored or deflated; directory entries
/// skipped; sizes and CRC from the central directory, so a zip written as a stream, as Java's
/// `ZipOutputStream` does, reads too), or the bytes as they are.
pub fn unzipped(bytes: &[u8]) -> Result<Vec<u8>, String> {
    if !bytes.starts_with(b"PK\x03\x04") {
        return Ok(bytes.to_vec());
    }
    let u16_at = |i: usize| bytes.get(i..i.checked_add(2)?).map(|b| u16::from_le_bytes([b[0], b[1]]) as usize);
    let u32_at = |i: usize| bytes.get(i..i.checked_add(4)?).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize);
    // The end-of-central-directory record: the last `PK 5 6` (a comment may follow it).
    let eocd = (0..bytes.len().saturating_sub(21))
        .rev()
        .find(|&i| bytes[i..].starts_with(b"PK\x05\x06"))
        .ok_or("a zip without its central directory")?;
    let (Some(entries), Some(mut at)) = (u16_at(eocd + 10), u32_at(eocd + 16)) else { return Err("a zip cut short".into()) };
    for _ in 0..entries {
        if !bytes.get(at..).is_some_and(|c| c.starts_with(b"PK\x01\x02")) {
            return Err("a zip whose central directory is not where it says".into());
        }
        let header = (u16_at(at + 8), u16_at(at + 10), u32_at(at + 16), u32_at(at + 20), u32_at(at + 24));
        let (Some(flags), Some(method), Some(crc), Some(packed), Some(size)) = header else { return Err("a zip entry cut short".into()) };
        let (Some(name_len), Some(extra_len), Some(comment_len), Some(local)) =
            (u16_at(at + 28), u16_at(at + 30), u16_at(at + 32), u32_at(at + 42))
        else {
            return Err("a zip entry cut short".into());
        };
        let name = bytes.get(at + 46..at + 46 + name_len).unwrap_or_default();
        at += 46 + name_len + extra_len + comment_len;
        if name.ends_with(b"/") {
            continue; // a directory
        }
        if flags & 0x0001 != 0 {
            return Err("an encrypted zip".into());
        }
        if size > MAX_FILE_BYTES {
            return Err(format!("a zip entry of more than {MAX_FILE_BYTES} bytes"));
        }
        if !bytes.get(local..).is_some_and(|l| l.starts_with(b"PK\x03\x04")) {
            return Err("a zip whose entry is not where it says".into());
        }
        let (Some(local_name), Some(local_extra)) = (u16_at(local + 26), u16_at(local + 28)) else {
            return Err("a zip entry cut short".into());
        };
        let start = local + 30 + local_name + local_extra;
        let data = bytes.get(start..start.saturating_add(packed)).ok_or("a zip entry cut short")?;
        let out = match method {
            0 => data.to_vec(),
            8 => miniz_oxide::inflate::decompress_to_vec_with_limit(data, MAX_FILE_BYTES)
                .map_err(|e| format!("a zip entry that does not inflate within {MAX_FILE_BYTES} bytes ({:?})", e.status))?,
            m => return Err(format!("a zip entry compressed with method {m}; stored (0) and deflate (8) are read")),
        };
        if out.len() != size || crc32(&out) as usize != crc {
            return Err("a zip entry whose size or CRC-32 does not match its content".into());
        }
        return Ok(out);
    }
    Err("a zip with no file in it".into())
}

/// A zip holding one deflated entry `name` (what a HIS unzips after 9102), dated 1980-01-01.
pub fn zipped(name: &str, content: &[u8]) -> Vec<u8> {
    let packed = miniz_oxide::deflate::compress_to_vec(content, 6);
    let (crc, size, packed_len, name_len) = (crc32(content), content.len() as u32, packed.len() as u32, name.len() as u16);
    // DOS time 00:00:00, date 1980-01-01 (0x0021).
    let (time, date) = (0u16, 0x0021u16);
    let mut z = Vec::with_capacity(packed.len() + 2 * name.len() + 100);
    // Local file header: version 2.0, flags bit 11 (UTF-8 name), deflate.
    z.extend_from_slice(b"PK\x03\x04");
    for v in [20u16, 0x0800, 8, time, date] {
        z.extend_from_slice(&v.to_le_bytes());
    }
    for v in [crc, packed_len, size] {
        z.extend_from_slice(&v.to_le_bytes());
    }
    z.extend_from_slice(&name_len.to_le_bytes());
    z.extend_from_slice(&0u16.to_le_bytes());
    z.extend_from_slice(name.as_bytes());
    z.extend_from_slice(&packed);
    let central = z.len() as u32;
    z.extend_from_slice(b"PK\x01\x02");
    for v in [20u16, 20, 0x0800, 8, time, date] {
        z.extend_from_slice(&v.to_le_bytes());
    }
    for v in [crc, packed_len, size] {
        z.extend_from_slice(&v.to_le_bytes());
    }
    for v in [name_len, 0, 0, 0, 0] {
        z.extend_from_slice(&v.to_le_bytes());
    }
    z.extend_from_slice(&0u32.to_le_bytes()); // external attributes
    z.extend_from_slice(&0u32.to_le_bytes()); // offset of the local header
    z.extend_from_slice(name.as_bytes());
    let central_len = z.len() as u32 - central;
    z.extend_from_slice(b"PK\x05\x06");
    for v in [0u16, 0, 1, 1] {
        z.extend_from_slice(&v.to_le_bytes());
    }
    z.extend_from_slice(&central_len.to_le_bytes());
    z.extend_from_slice(&central.to_le_bytes());
    z.extend_from_slice(&0u16.to_le_bytes());
    z
}

/// CRC-32 (IEEE 802.3, as zip uses it).
fn crc32(bytes: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (i, e) in t.iter_mut().enumerate() {
            let mut c = i as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            }
            *e = c;
        }
        t
    });
    !bytes.iter().fold(!0u32, |c, b| table[((c ^ u32::from(*b)) & 0xFF) as usize] ^ (c >> 8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_is_the_zip_one() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn a_zip_we_write_reads_back_and_a_streamed_one_reads_too() {
        let text = "setl_id\tmdtrt_id\n1\t2\n".repeat(50);
        let z = zipped("result.txt", text.as_bytes());
        assert!(z.len() < text.len(), "deflated");
        assert_eq!(unzipped(&z).unwrap(), text.as_bytes());
        // Written as a stream (Java's ZipOutputStream): the local header has no sizes or CRC (flag bit
        // 3); the central directory has them.
        let mut streamed = z.clone();
        streamed[6] |= 0x08;
        streamed[14..26].fill(0);
        assert_eq!(unzipped(&streamed).unwrap(), text.as_bytes());
        let central = z.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
        let mut bad = z.clone();
        bad[central + 16] ^= 1;
        assert!(unzipped(&bad).unwrap_err().contains("CRC-32"));
        assert_eq!(unzipped(b"plain text").unwrap(), b"plain text");
        assert!(unzipped(b"PK\x03\x04 cut").unwrap_err().contains("central directory"));
        assert_eq!(unzipped(&zipped("empty.txt", b"")).unwrap(), b"");
    }
}
