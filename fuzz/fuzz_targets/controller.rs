//! The controller's metadata log and what its peers send, decoded as a
//! controller does at start and while running:
//!
//! - mode 0: the files of `__cluster_metadata-0/` (`raft.log`, `hardstate`,
//!   `snapshot`) decoded as `RaftFiles::open` decodes them (`store::decode_files`) and
//!   `RaftStore::new`, then the
//!   snapshot's image (`Catalog` JSON) and every normal entry's
//!   `MetadataRecord` applied to it (`records::apply`), as `Quorum::start`
//!   and `Quorum::apply` do;
//! - mode 1: a `MetadataRecord` (JSON) applied to an image (JSON), as a
//!   committed entry is;
//! - mode 2: a controller request and a controller reply body (JSON), as the
//!   controller listener and the brokers' controller client decode them,
//!   and a Raft message (protobuf) as a controller decodes a peer's.
//!
//! The image after replay must survive the JSON round trip that snapshots
//! put it through. Input: `[mode u8][fields: length u32 LE, bytes]...`;
//! in mode 0 bit 4 of the mode byte recomputes the frame CRCs.

#![no_main]

use corelog::cluster::calls::{ControllerCall, ControllerRequest, Image, Refusal};
use corelog::cluster::records::{self, MetadataRecord};
use corelog::cluster::store::{decode_files, RaftStore};
use corelog::cluster::transport::{decode_json, decode_raft_message};
use corelog::metadata::Catalog;
use corelog_fuzz::Reader;
use libfuzzer_sys::fuzz_target;

/// raft-rs' `EntryType::EntryNormal`.
const ENTRY_NORMAL: i32 = 0;

fn check_image(image: &Catalog) {
    let json = serde_json::to_vec(image).expect("an image serializes");
    let again: Catalog = serde_json::from_slice(&json).expect("a serialized image parses");
    assert!(&again == image, "image changed in a JSON round trip");
}

fn apply_entry(image: &mut Catalog, data: &[u8], index: u64) {
    match serde_json::from_slice::<MetadataRecord>(data) {
        Ok(record) => {
            let _ = records::apply(image, &record, index);
        }
        Err(_) => image.version = index,
    }
}

fn files(mode: u8, input: &mut Reader) {
    // raft.log, hardstate, snapshot; an empty field is a missing file.
    let mut contents = Vec::new();
    for _ in 0..3 {
        let mut content = input.field().to_vec();
        if mode & 0x10 != 0 {
            corelog_fuzz::fix_frame_crcs(&mut content);
        }
        contents.push(content);
    }
    let present = |c: &Vec<u8>| (!c.is_empty()).then(|| c.clone());
    let (hard_state, snapshot) = (present(&contents[1]), present(&contents[2]));
    let Ok((loaded, _)) = decode_files(&contents[0], hard_state.as_deref(), snapshot.as_deref())
    else {
        return;
    };
    let snapshot_data = loaded.snapshot.as_ref().map(|s| s.data.to_vec());
    let after = loaded
        .snapshot
        .as_ref()
        .map_or(0, |s| s.get_metadata().index);
    let entries: Vec<(i32, u64, Vec<u8>)> = loaded
        .entries
        .iter()
        .filter(|e| e.index > after)
        .map(|e| (e.get_entry_type() as i32, e.index, e.data.to_vec()))
        .collect();
    if RaftStore::new(vec![1, 2, 3], loaded).is_err() {
        return;
    }
    let mut image = match snapshot_data.filter(|d| !d.is_empty()) {
        Some(data) => match serde_json::from_slice::<Catalog>(&data) {
            Ok(image) => image,
            Err(_) => return,
        },
        None => Catalog::new(""),
    };
    for (kind, index, data) in entries {
        if kind != ENTRY_NORMAL || data.is_empty() {
            image.version = index;
            continue;
        }
        apply_entry(&mut image, &data, index);
    }
    check_image(&image);
}

fn record(input: &mut Reader) {
    let image_json = input.field();
    let mut image = if image_json.is_empty() {
        Catalog::new("")
    } else {
        match serde_json::from_slice::<Catalog>(image_json) {
            Ok(image) => image,
            Err(_) => return,
        }
    };
    let mut index = image.version;
    while !input.is_empty() {
        index = index.saturating_add(1);
        apply_entry(&mut image, input.field(), index);
    }
    check_image(&image);
}

fn messages(input: &mut Reader) {
    let _ = decode_json::<ControllerRequest>(input.field());
    type ImageReply = Result<<Image as ControllerCall>::Reply, Refusal>;
    if let Ok(Ok(Some(image))) = decode_json::<ImageReply>(input.field()) {
        check_image(&image);
    }
    // A Raft message from a peer: what raft-rs reads of it first must not
    // panic once it decoded.
    if let Ok(message) = decode_raft_message(input.field()) {
        let _ = message.get_msg_type();
        for entry in &message.entries {
            let _ = entry.get_entry_type();
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Reader::new(data);
    let mode = input.u8();
    match (mode & 0x0f) % 3 {
        0 => files(mode, &mut input),
        1 => record(&mut input),
        _ => messages(&mut input),
    }
});
