package runloop

import (
	"context"
	"errors"
	"testing"
)

func TestLoop(t *testing.T) {
	l := New()
	ctx, end, err := l.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.Begin(context.Background()); !errors.Is(err, ErrRunning) {
		t.Errorf("second Begin during a run: got %v, want ErrRunning", err)
	}
	closed := make(chan bool)
	go func() { closed <- l.Close() }()
	<-ctx.Done() // Close cancels the run
	select {
	case <-closed:
		t.Fatal("Close returned before the run ended")
	default:
	}
	end()
	if !<-closed {
		t.Error("first Close: got false, want true")
	}
	if l.Close() || !l.Closed() {
		t.Error("second Close: got true or not closed, want false and closed")
	}
	if _, _, err := l.Begin(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Begin after Close: got %v, want ErrClosed", err)
	}

	l = New()
	_, end, _ = l.Begin(context.Background())
	end()
	if _, end, err := l.Begin(context.Background()); err != nil {
		t.Errorf("Begin after a run ended: %v", err)
	} else {
		end()
	}
}
