//! The JSON snapshots of earlier versions, still read so that data dirs and
//! backups they made keep working: `{"last_command": N, "kvs": {"key":
//! ["value", index], ...}}`, and before that the bare map of `kvs`, which
//! does not say which command it ends with. Snapshots are binary now (see
//! [`snapshot_format`](crate::snapshot_format)); the first layout is still
//! what a snapshot download answers, transcoded.

use std::collections::HashMap;
use std::io::{BufRead, Read, Write};
use std::sync::Arc;

use ferraft::{LogIndex, StorageError};
use serde::Deserialize;

use crate::kv_map::{KvMap, Versioned};
use crate::snapshot_format::{Entries, FormatError};

/// How the layout with the last command starts (serde wrote fields in order).
const WITH_LAST_COMMAND_PREFIX: &[u8] = br#"{"last_command":"#;

type JsonMap = HashMap<Arc<str>, Versioned>;

#[derive(Deserialize)]
struct WithLastCommand {
    last_command: LogIndex,
    kvs: JsonMap,
}

/// How many first bytes tell the layouts apart.
pub const HEAD_BYTES: usize = WITH_LAST_COMMAND_PREFIX.len();

/// Reads either layout from `reader` (every byte, `head` included): the map
/// and, when the layout says it, the index of the last command applied to it.
pub fn read(head: &[u8], reader: &mut impl Read) -> Result<(KvMap, Option<LogIndex>), StorageError> {
    if head.starts_with(WITH_LAST_COMMAND_PREFIX) {
        let snapshot: WithLastCommand =
            serde_json::from_reader(reader).map_err(|e| StorageError::new("decoding a JSON snapshot", e))?;
        return Ok((snapshot.kvs.into_iter().collect(), Some(snapshot.last_command)));
    }
    // Which layout is known only once parsed; these are small and old.
    let mut all = Vec::new();
    reader.read_to_end(&mut all).map_err(|e| StorageError::new("reading a snapshot", e))?;
    if let Ok(snapshot) = serde_json::from_slice::<WithLastCommand>(&all) {
        return Ok((snapshot.kvs.into_iter().collect(), Some(snapshot.last_command)));
    }
    let bare: JsonMap = serde_json::from_slice(&all).map_err(|e| StorageError::new("decoding a JSON snapshot", e))?;
    Ok((bare.into_iter().collect(), None))
}

/// Writes a binary snapshot, read from `reader`, in the layout with the last
/// command, a key at a time: no map of the snapshot's size is built.
pub fn transcode(reader: impl BufRead, out: &mut impl Write) -> Result<(), FormatError> {
    let mut entries = Entries::open(reader)?;
    write!(out, "{{\"last_command\":{},\"kvs\":{{", entries.last_command())?;
    let mut separator: &[u8] = b"";
    while let Some((key, (value, index))) = entries.next_entry()? {
        out.write_all(separator)?;
        separator = b",";
        serde_json::to_writer(&mut *out, &*key).map_err(std::io::Error::from)?;
        out.write_all(b":[")?;
        serde_json::to_writer(&mut *out, &*value).map_err(std::io::Error::from)?;
        write!(out, ",{index}]")?;
    }
    out.write_all(b"}}")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transcoded_binary_snapshot_reads_back_as_the_same_map() {
        let map: KvMap = [("a", "1", 3), ("quote\"d\\", "ü\n\u{1}", 4), ("", "", 5)]
            .iter()
            .map(|(k, v, i)| (Arc::from(*k), (Arc::from(*v), LogIndex(*i))))
            .collect();
        let mut binary = Vec::new();
        crate::snapshot_format::write(&mut binary, &map, LogIndex(9)).unwrap();
        let mut json = Vec::new();
        transcode(&binary[..], &mut json).unwrap();
        let (read_back, last_command) = read(&json[..HEAD_BYTES], &mut &json[..]).unwrap();
        assert_eq!((read_back, last_command), (map, Some(LogIndex(9))));
    }

    #[test]
    fn an_empty_map_transcodes_to_an_empty_object() {
        let mut binary = Vec::new();
        crate::snapshot_format::write(&mut binary, &KvMap::default(), LogIndex(0)).unwrap();
        let mut json = Vec::new();
        transcode(&binary[..], &mut json).unwrap();
        assert_eq!(json, br#"{"last_command":0,"kvs":{}}"#);
    }

    #[test]
    fn a_truncated_binary_snapshot_is_an_error_not_json() {
        let map: KvMap = [(Arc::from("a"), (Arc::from("1"), LogIndex(1)))].into_iter().collect();
        let mut binary = Vec::new();
        crate::snapshot_format::write(&mut binary, &map, LogIndex(1)).unwrap();
        let mut json = Vec::new();
        assert!(transcode(&binary[..binary.len() - 1], &mut json).is_err());
    }
}
