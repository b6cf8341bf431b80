// Package demotest starts, for a test, what `make run` starts: the demo
// facility in-process (its clock stepped by hand), the embedded brokers,
// the webhook receiver and a gateway built from deploy/demo.yaml.
package demotest

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	profiles "github.com/facgw/facgw/firmware-profiles"
	"github.com/facgw/facgw/internal/config"
	"github.com/facgw/facgw/internal/demo"
	"github.com/facgw/facgw/internal/gateway"
)

// Demo is a running demo.
type Demo struct {
	Info    *demo.Info
	Gateway *gateway.Gateway
	Config  *config.Config
	// Base is the gateway's HTTP root, "http://127.0.0.1:port".
	Base string
}

// Start runs the demo of the repository at root (a path such as "../..")
// until the test ends, and returns once every device has been polled.
// The config is deploy/demo.yaml with test settings (a free HTTP port, a
// temp state directory, 50 ms polls, 2 s before a point is stale), then
// whatever mutate changes. Skipped with -short.
func Start(t testing.TB, root string, mutate func(*config.Config)) *Demo {
	t.Helper()
	if testing.Short() {
		t.Skip("end to end: skipped with -short")
	}
	reg, err := profiles.Shipped()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(filepath.Join(root, "deploy", "demo.yaml"), reg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.StateDir = t.TempDir()
	// Poll fast so a test needs few wall-clock seconds; the cadence is not
	// what is under test.
	for i := range cfg.Devices {
		cfg.Devices[i].Poll = map[string]time.Duration{"default": 50 * time.Millisecond, "safety": 50 * time.Millisecond}
	}
	// At 50 ms, three intervals would make a point stale after a 150 ms
	// hiccup of a loaded CI machine, and the fire rules (rightly) refuse
	// stale votes: allow 2 s without a refresh.
	cfg.Defaults.StaleAfter = 40
	if mutate != nil {
		mutate(cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	info, err := demo.Start(ctx, cfg, filepath.Join(root, "deploy", "facility.yaml"), log, demo.Options{Manual: true, Seed: 7})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	gw, err := gateway.New(cfg, reg, gateway.Options{Log: log, Version: "test", Demo: info})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		gw.Run(ctx, nil)
		close(done)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	WaitFor(t, "http listener", func() bool { return gw.HTTPAddr() != "" })
	for _, d := range cfg.Devices {
		WaitFor(t, d.ID+" polled", func() bool { return len(gw.State().Points(d.ID)) > 0 })
	}
	return &Demo{Info: info, Gateway: gw, Config: cfg, Base: "http://" + gw.HTTPAddr()}
}

// WaitFor polls cond until it holds. The bound (60 s) only turns a hang
// into a failure; no assertion depends on how long anything took.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
