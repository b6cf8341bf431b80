package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/facgw/facgw/internal/config"
	"github.com/facgw/facgw/internal/facsim"
)

// startDemo starts the simulated facility in-process on free loopback
// ports and points every configured device with the same id at its
// simulated twin. It returns the simulator's control URL. The simulator
// stops when ctx ends.
func startDemo(ctx context.Context, cfg *config.Config, file string, log *slog.Logger) (string, error) {
	var fac *facsim.Facility
	var err error
	if _, statErr := os.Stat(file); statErr == nil {
		fac, err = facsim.LoadFacility(file)
	} else {
		fac, err = facsim.DefaultFacility()
	}
	if err != nil {
		return "", err
	}
	sim, err := facsim.Start(ctx, fac, facsim.Options{Registry: cfg.Profiles, FreePorts: true, Logger: log.With("component", "facsim")})
	if err != nil {
		return "", err
	}
	addrs := sim.Addrs()
	for i := range cfg.Devices {
		d := &cfg.Devices[i]
		if a, ok := addrs[d.ID]; ok && d.Transport == config.TransportTCP {
			d.Address = a
		} else if !d.Disabled {
			log.Warn("demo: device has no simulated twin", "device", d.ID)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		sim.Close()
		return "", fmt.Errorf("demo: %w", err)
	}
	srv := &http.Server{Handler: sim.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("demo: simulator http", "err", err)
		}
	}()
	go func() {
		<-ctx.Done()
		srv.Close()
		sim.Close()
	}()
	return "http://" + ln.Addr().String(), nil
}
