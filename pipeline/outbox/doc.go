// Package outbox is the durable, ordered, bounded on-disk queue in front of
// every destination (each MQTT broker, the time-series database, each alert
// path). A message is appended before it is sent and acknowledged only after
// the destination confirmed it (MQTT PUBACK, HTTP 2xx), so it survives a
// crash of the gateway and is delivered after the restart.
//
// # Guarantees
//
//   - Order: messages are delivered in Append order (Seq order), which
//     implies per-key order. Seq starts at 1, is strictly increasing and is
//     not reused across restarts: on Open, NextSeq is the largest of the state
//     file's value, the last seq found in the segments plus one and the base
//     of the newest segment file plus one (also of one that could not be
//     read).
//   - Durability: Append writes the record to the operating system before it
//     returns (it survives a SIGKILL of the process at once) and fsyncs at
//     most every Options.SyncEvery (a power loss loses at most that window);
//     with SyncEvery 0 every Append is fsynced before it returns.
//   - At least once: while messages flow, acknowledgements are persisted in
//     a state file at most once a second (and on Sync, on Close and before a
//     segment file is deleted), so messages acknowledged shortly before a
//     crash, or acknowledged out of order beyond the head, are delivered
//     again after a restart. Consumers must tolerate duplicates (the Seq,
//     carried on the wire, lets them detect one).
//   - Bounds: over MaxBytes or MaxAge the oldest telemetry is dropped and
//     counted; alerts and control messages are never dropped, not even above
//     MaxBytes (then Stats.OverBound is set). Disk usage can exceed MaxBytes
//     by about one segment while a partly dropped segment waits to be
//     compacted. When the disk is full, telemetry is dropped and alerts and
//     control messages are held in memory, delivered from there, and written
//     as soon as the disk has room again.
//
// # On-disk format
//
// One directory per outbox holds:
//
//	LOCK                         flock(2)ed while open: one process per outbox
//	state                        acked head, next seq, dropped total (40 bytes)
//	00000000000000000001.seg     segment files, named by their base seq
//	00000000000000004711.seg
//	*.unreadable-<time>          files or tails facgw could not read, kept aside
//
// All integers are little endian; checksums are CRC-32C (Castagnoli).
//
// A segment starts with a 24-byte header:
//
//	0  [4]byte  magic "FGOB"
//	4  uint16   format version (1)
//	6  uint16   header length (24)
//	8  uint64   base seq: no record in the file has a smaller seq
//	16 uint32   flags (0 in version 1)
//	20 uint32   CRC-32C of bytes 0..19
//
// followed by records, each
//
//	0  uint32   body length n
//	4  uint32   CRC-32C of the body
//	8  body (n bytes):
//	   0  uint64  seq
//	   8  int64   append time, Unix nanoseconds UTC
//	   16 uint8   class (0 telemetry, 1 alert, 2 control)
//	   17 uint8   flags (bit 0: retain)
//	   18 uint16  key length k
//	   20 uint16  topic length t
//	   22 key (k bytes), topic (t bytes), payload (n-22-k-t bytes)
//
// Records are only ever appended; a file is rewritten only by compaction,
// which writes a new file with the records still due and renames it over the
// old one, so either version is complete after a crash. Seqs increase
// strictly through a file and from one file to the next.
//
// The state file is
//
//	0  [4]byte  magic "FGOS"
//	4  uint16   format version (1)
//	6  uint16   length (40)
//	8  uint64   head: every seq below it is acknowledged or dropped
//	16 uint64   next seq to assign
//	24 uint64   telemetry dropped since the outbox was created
//	32 uint32   reserved (0)
//	36 uint32   CRC-32C of bytes 0..35
//
// and is replaced atomically (write state.tmp, fsync, rename, fsync the
// directory).
//
// # Recovery
//
// Open reads every segment sequentially. A segment whose header has another
// magic, an unknown version or a bad checksum is renamed to
// <name>.unreadable-<time> and logged, never deleted, and Open continues. A
// record that is incomplete or fails its checksum ends the valid part of a
// file: in the newest segment it is the torn write of a crash and is
// truncated away (with a warning); in an older segment the bytes from there
// on are first copied to <name>.unreadable-<time>. Everything before it is
// kept. Records below the state's head are treated as acknowledged; fully
// acknowledged segments are deleted. Appends after Open go to a new segment.
//
// # Memory
//
// The outbox keeps an index of 13 bytes per message on disk (offset, append
// time, class and state) and reads payloads from the files on Peek; 3 million
// queued messages cost about 40 MB of RAM whatever their payload size.
package outbox
