package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// measureFsync times, n times each, the two kinds of durable write an
// alert event costs the gateway before its paths hear of it, on the disk
// of dir (the gateway's state_dir is in the same temp dir in a facbench
// run):
//
//   - an outbox append: a record of about an alert event's size appended
//     to an open segment file and fsynced (one per Path outbox and one per
//     MQTT broker's outbox);
//   - a ledger rewrite: a ledger.json as full as a busy site's (written
//     by the ledger itself, prefillLedger) written to a temp file,
//     fsynced, renamed over the old one and the directory fsynced.
//
// It prints one row per step with the median, p90, p99 and max.
func measureFsync(w io.Writer, dir string, n int) error {
	tmp, err := os.MkdirTemp(dir, "facbench-fsync")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	ledgerDir := filepath.Join(tmp, "ledger")
	if err := prefillLedger(ledgerDir, 500); err != nil {
		return err
	}
	ledger, err := os.ReadFile(filepath.Join(ledgerDir, "ledger.json"))
	if err != nil {
		return err
	}
	record := make([]byte, 700) // an alert event as JSON, with the record's header
	for i := range record {
		record[i] = 'x'
	}

	seg, err := os.OpenFile(filepath.Join(tmp, "segment"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return err
	}
	defer seg.Close()
	var appendWrite, appendSync []time.Duration
	for range n {
		t0 := time.Now()
		if _, err := seg.Write(record); err != nil {
			return err
		}
		t1 := time.Now()
		if err := seg.Sync(); err != nil {
			return err
		}
		appendWrite, appendSync = append(appendWrite, t1.Sub(t0)), append(appendSync, time.Since(t1))
	}

	var wr, fs, rn, ds, total []time.Duration
	path := filepath.Join(ledgerDir, "ledger.json")
	for range n {
		t0 := time.Now()
		f, err := os.OpenFile(path+".tmp", os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
		if err != nil {
			return err
		}
		if _, err := f.Write(ledger); err != nil {
			f.Close()
			return err
		}
		t1 := time.Now()
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
		f.Close()
		t2 := time.Now()
		if err := os.Rename(path+".tmp", path); err != nil {
			return err
		}
		t3 := time.Now()
		d, err := os.Open(ledgerDir)
		if err != nil {
			return err
		}
		err = d.Sync()
		d.Close()
		if err != nil {
			return err
		}
		t4 := time.Now()
		wr, fs, rn, ds, total = append(wr, t1.Sub(t0)), append(fs, t2.Sub(t1)), append(rn, t3.Sub(t2)), append(ds, t4.Sub(t3)), append(total, t4.Sub(t0))
	}

	fmt.Fprintf(w, "fsync on the disk of %s, %d times each (ms)\n", dir, n)
	fmt.Fprintln(w, "| step | samples | median | p90 | p99 | max |\n|---|---|---|---|---|---|")
	writeRow(w, fmt.Sprintf("outbox append: write %d B", len(record)), summarize(appendWrite))
	writeRow(w, "outbox append: fsync", summarize(appendSync))
	writeRow(w, fmt.Sprintf("ledger rewrite: write %d KB to the temp file", len(ledger)/1024), summarize(wr))
	writeRow(w, "ledger rewrite: fsync the temp file", summarize(fs))
	writeRow(w, "ledger rewrite: rename", summarize(rn))
	writeRow(w, "ledger rewrite: fsync the directory", summarize(ds))
	writeRow(w, "ledger rewrite: all four", summarize(total))
	return nil
}
