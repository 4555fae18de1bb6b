//! Tests of the spool: format, recovery, the writer and reader halves, delivery.

use super::*;
use std::io::Write;

use serde_json::Value;

fn options(max_bytes: u64, segment_bytes: u64) -> SpoolOptions {
    SpoolOptions {
        max_bytes,
        segment_bytes,
    }
}

fn line(i: usize) -> Vec<u8> {
    format!("{{\"n\":{i},\"pad\":\"xxxxxxxxxxxxxxxxxxxx\"}}").into_bytes()
}

fn read_all(reader: &mut SpoolReader) -> Vec<Batch> {
    let mut batches = Vec::new();
    while let Some(batch) = reader.next_batch(7, 10_000, Duration::ZERO).unwrap() {
        batches.push(batch);
    }
    batches
}

fn numbers(batches: &[Batch]) -> Vec<u64> {
    batches
        .iter()
        .flat_map(|b| b.lines())
        .map(|l| {
            serde_json::from_slice::<Value>(l).unwrap()["n"]
                .as_u64()
                .unwrap()
        })
        .collect()
}

fn segment_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("segment-"))
        .collect();
    names.sort();
    names
}

#[test]
fn synced_lines_survive_a_reopen_until_committed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("out");
    {
        let (mut writer, mut reader) = open(&dir, "t", &options(1 << 20, 200)).unwrap();
        for i in 0..20 {
            writer.append(&line(i)).unwrap();
        }
        writer.sync().unwrap();
        assert_eq!(writer.depth().lines, 20);
        let batches = read_all(&mut reader);
        assert_eq!(numbers(&batches), (0..20).collect::<Vec<_>>());
        assert!(segment_files(&dir).len() > 2, "segments should roll");
        // Dropped without a commit: everything must come back.
    }
    {
        let (writer, mut reader) = open(&dir, "t", &options(1 << 20, 200)).unwrap();
        assert_eq!(writer.depth().lines, 20);
        let batch = reader
            .next_batch(5, 10_000, Duration::ZERO)
            .unwrap()
            .unwrap();
        assert_eq!(numbers(std::slice::from_ref(&batch)), vec![0, 1, 2, 3, 4]);
        reader.commit(batch.end()).unwrap();
        assert_eq!(reader.depth().lines, 15);
    }
    let (mut writer, mut reader) = open(&dir, "t", &options(1 << 20, 200)).unwrap();
    assert_eq!(writer.depth().lines, 15);
    writer.append(&line(20)).unwrap();
    writer.sync().unwrap();
    let batches = read_all(&mut reader);
    assert_eq!(numbers(&batches), (5..21).collect::<Vec<_>>());
    reader.commit(batches.last().unwrap().end()).unwrap();
    assert_eq!(writer.depth(), Depth::default());
    assert_eq!(
        segment_files(&dir).len(),
        1,
        "delivered segments are deleted"
    );
    drop((writer, reader));
    let (writer, mut reader) = open(&dir, "t", &options(1 << 20, 200)).unwrap();
    assert_eq!(writer.depth(), Depth::default());
    assert!(
        reader
            .next_batch(5, 10_000, Duration::ZERO)
            .unwrap()
            .is_none()
    );
}

#[test]
fn unsynced_lines_are_not_visible_and_a_second_open_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut writer, mut reader) = open(tmp.path(), "t", &SpoolOptions::default()).unwrap();
    writer.append(&line(1)).unwrap();
    assert!(
        reader
            .next_batch(5, 10_000, Duration::ZERO)
            .unwrap()
            .is_none()
    );
    let error = open(tmp.path(), "t", &SpoolOptions::default())
        .err()
        .unwrap();
    assert!(format!("{error:#}").contains("in use"), "{error:#}");
    assert!(writer.append(b"two\nlines").is_err());
    assert!(writer.append(b"").is_err());
    drop((writer, reader));
    let (writer, _reader) = open(tmp.path(), "t", &SpoolOptions::default()).unwrap();
    assert_eq!(writer.depth().lines, 0, "an unsynced line is not kept");
}

#[test]
fn a_torn_tail_is_cut_off_on_open() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let (mut writer, _reader) = open(tmp.path(), "t", &SpoolOptions::default()).unwrap();
        for i in 0..3 {
            writer.append(&line(i)).unwrap();
        }
        writer.sync().unwrap();
    }
    let segment = tmp.path().join(&segment_files(tmp.path())[0]);
    let good = std::fs::metadata(&segment).unwrap().len();
    let mut file = OpenOptions::new().append(true).open(&segment).unwrap();
    file.write_all(b"{\"n\":3,\"pad\":\"xx").unwrap();
    drop(file);
    let (mut writer, mut reader) = open(tmp.path(), "t", &SpoolOptions::default()).unwrap();
    assert_eq!(std::fs::metadata(&segment).unwrap().len(), good);
    writer.append(&line(4)).unwrap();
    writer.sync().unwrap();
    assert_eq!(numbers(&read_all(&mut reader)), vec![0, 1, 2, 4]);
    drop((writer, reader));

    // Zeros from a lost block, then a partial line: both cut.
    let mut file = OpenOptions::new().append(true).open(&segment).unwrap();
    file.write_all(&[0u8; 100]).unwrap();
    file.write_all(b"\n\0\0\0\n{\"n\":").unwrap();
    drop(file);
    let (writer, mut reader) = open(tmp.path(), "t", &SpoolOptions::default()).unwrap();
    assert_eq!(writer.depth().lines, 4);
    assert_eq!(numbers(&read_all(&mut reader)), vec![0, 1, 2, 4]);
}

#[test]
fn a_failed_sync_rolls_back_to_the_last_good_one() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut writer, mut reader) = open(tmp.path(), "t", &options(1 << 20, 200)).unwrap();
    for i in 0..3 {
        writer.append(&line(i)).unwrap();
    }
    writer.sync().unwrap();
    // A sync that wrote its lines (rolling a segment) and then failed: sync() rolls
    // back exactly like this after any error.
    for i in 100..110 {
        writer.append(&line(i)).unwrap();
    }
    let (buf, ends) = (
        std::mem::take(&mut writer.buf),
        std::mem::take(&mut writer.line_ends),
    );
    writer.write_lines(&buf, &ends).unwrap();
    assert!(segment_files(tmp.path()).len() > 1);
    // The reader reads ahead past the synced end meanwhile.
    let first = reader
        .next_batch(1, 10_000, Duration::ZERO)
        .unwrap()
        .unwrap();
    assert_eq!(numbers(&[first]), vec![0]);
    writer.needs_rollback = true;
    writer.rollback().unwrap();
    assert_eq!(segment_files(tmp.path()).len(), 1);
    for i in 3..6 {
        writer.append(&line(i)).unwrap();
    }
    writer.sync().unwrap();
    assert_eq!(numbers(&read_all(&mut reader)), vec![1, 2, 3, 4, 5]);
    drop((writer, reader));
    let (writer, mut reader) = open(tmp.path(), "t", &options(1 << 20, 200)).unwrap();
    assert_eq!(writer.depth().lines, 6);
    assert_eq!(numbers(&read_all(&mut reader)), (0..6).collect::<Vec<_>>());
}

#[test]
fn a_full_spool_has_no_room_until_delivered() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut writer, mut reader) = open(tmp.path(), "t", &options(300, 100)).unwrap();
    assert!(writer.has_room());
    for i in 0..10 {
        writer.append(&line(i)).unwrap();
    }
    writer.sync().unwrap();
    assert!(!writer.has_room());
    let batch = reader
        .next_batch(9, 10_000, Duration::ZERO)
        .unwrap()
        .unwrap();
    assert_eq!(batch.len(), 9);
    reader.commit(batch.end()).unwrap();
    assert!(writer.has_room());
    assert_eq!(writer.depth().lines, 1);
}

#[test]
fn batches_respect_the_byte_limit_and_carry_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut writer, mut reader) = open(tmp.path(), "t", &SpoolOptions::default()).unwrap();
    for i in 0..10 {
        writer.append(&line(i)).unwrap();
    }
    writer.sync().unwrap();
    let size = line(0).len();
    let first = reader
        .next_batch(100, size * 3 + 1, Duration::ZERO)
        .unwrap()
        .unwrap();
    assert_eq!(first.len(), 3);
    let second = reader.next_batch(100, 1, Duration::ZERO).unwrap().unwrap();
    assert_eq!(second.len(), 1, "a line longer than the limit goes alone");
    assert_eq!(numbers(&[first.clone(), second.clone()]), vec![0, 1, 2, 3]);
    assert!(reader.commit(second.end()).is_ok());
    assert_eq!(writer.depth().lines, 6);
    let rest = reader
        .next_batch(100, 1 << 20, Duration::ZERO)
        .unwrap()
        .unwrap();
    assert_eq!(numbers(&[rest]), (4..10).collect::<Vec<_>>());
}

#[test]
fn a_waiting_reader_wakes_for_new_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut writer, mut reader) = open(tmp.path(), "t", &SpoolOptions::default()).unwrap();
    let (waiting, waits) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        waiting.send(()).unwrap();
        // An hour: only the wakeup of the sync ends this wait, so a missed wakeup
        // hangs the test instead of being measured.
        let batch = reader
            .next_batch(10, 10_000, Duration::from_secs(3600))
            .unwrap();
        batch.map(|b| b.len())
    });
    waits.recv().unwrap();
    writer.append(&line(1)).unwrap();
    writer.sync().unwrap();
    assert_eq!(thread.join().unwrap(), Some(1));
    assert!(!writer.wait_drained(Duration::from_millis(10)));
}

#[test]
fn output_names_must_be_directory_names() {
    assert!(output_dir(Path::new("/s"), "splunk-main_1.x").is_ok());
    for bad in ["", ".hidden", "a/b", "a b", ".."] {
        assert!(output_dir(Path::new("/s"), bad).is_err(), "{bad}");
    }
}
