package notify

import (
	"testing"
	"time"

	"github.com/facgw/facgw/internal/alert"
)

// BenchmarkSubmit measures one alert transition end to end up to the disk:
// recorded in the ledger (file rewritten and fsynced) and enqueued to two
// paths (an fsynced outbox append each). The ledger holds 20 active
// episodes and a full history, as a busy site would; each iteration fires
// or resolves one of them.
func BenchmarkSubmit(b *testing.B) {
	c := newClock()
	l, err := OpenLedgerWith(LedgerOptions{Dir: b.TempDir(), Now: c.now})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	var targets []Target
	for _, name := range []string{"alertmanager", "webhook"} {
		p, err := NewPath(PathOptions{Name: name, Kind: name, Dir: b.TempDir(), Sender: &fakeSender{}})
		if err != nil {
			b.Fatal(err)
		}
		defer p.Close()
		targets = append(targets, p)
	}
	d := NewDispatcher(l, targets, DispatcherOptions{Site: "pangyo-b3", Gateway: "gw-1", Now: c.now})
	const episodes = 40
	evs := make([]alert.Event, episodes)
	for i := range evs {
		evs[i] = firing("power/ups-on-battery", "ups-"+string(rune('a'+i%26))+string(rune('a'+i/26)), alert.Major, t0)
	}
	for i := 0; i < DefaultRecent; i++ { // fill the history
		if _, err := d.Submit([]alert.Event{evs[i%episodes]}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		ev := evs[i%episodes]
		if (i/episodes)%2 == 0 {
			ev = resolved(ev, t0.Add(time.Minute))
		}
		if _, err := d.Submit([]alert.Event{ev}); err != nil {
			b.Fatal(err)
		}
	}
}
