package backoff

import (
	"testing"
	"time"
)

func TestDelay(t *testing.T) {
	tests := []struct {
		n    int
		want time.Duration
	}{{0, 100 * time.Millisecond}, {1, 100 * time.Millisecond}, {2, 200 * time.Millisecond}, {4, 800 * time.Millisecond}, {10, time.Second}, {1000, time.Second}}
	for _, tt := range tests {
		if got := Delay(100*time.Millisecond, time.Second, tt.n); got != tt.want {
			t.Errorf("Delay(n=%d): got %s, want %s", tt.n, got, tt.want)
		}
	}
	for i := 0; i < 100; i++ {
		if d := Jittered(time.Second, time.Minute, 3); d < 3*time.Second || d > 4*time.Second {
			t.Fatalf("Jittered: got %s, want 3s..4s", d)
		}
	}
}

func TestTracker(t *testing.T) {
	var tr Tracker
	now := time.Unix(1000, 0)
	tr.Failed(now, "timeout", time.Second, time.Minute)
	if _, waiting := tr.Waiting(now); waiting {
		t.Fatal("waiting after one failure, want a retry at the next poll")
	}
	tr.Failed(now, "timeout", time.Second, time.Minute)
	reason, waiting := tr.Waiting(now.Add(time.Second))
	if !waiting || reason != "timeout (2 failed polls, next try in 3s)" {
		t.Fatalf("after two failures: got %q %v, want waiting 4s from the failure", reason, waiting)
	}
	if _, waiting := tr.Waiting(now.Add(4 * time.Second)); waiting {
		t.Fatal("still waiting after the backoff")
	}
	tr.Succeeded()
	tr.Failed(now, "timeout", time.Second, time.Minute)
	if _, waiting := tr.Waiting(now); waiting {
		t.Fatal("a success did not reset the count")
	}
}
