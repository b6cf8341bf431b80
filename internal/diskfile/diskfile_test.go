package diskfile

import (
	"errors"
	"path/filepath"
	"runtime"
	"testing"
)

func TestLockIsExclusive(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" {
		t.Skip("no flock")
	}
	path := filepath.Join(t.TempDir(), "lock")
	a, err := Lock(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Lock(path); !errors.Is(err, ErrLocked) {
		t.Errorf("second lock: got %v, want ErrLocked", err)
	}
	a.Close()
	b, err := Lock(path)
	if err != nil {
		t.Errorf("lock after release: %v", err)
	} else {
		b.Close()
	}
}

func TestSyncDir(t *testing.T) {
	if err := SyncDir(t.TempDir()); err != nil {
		t.Errorf("sync an existing dir: %v", err)
	}
	if err := SyncDir(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("sync a missing dir: got nil, want an error")
	}
}
