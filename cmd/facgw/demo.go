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
	"github.com/facgw/facgw/pipeline/mqtt"
)

// demoInfo says where the demo's parts listen.
type demoInfo struct {
	simURL  string
	brokers []string // "name=host:port"
}

// startDemo starts the simulated facility in-process on free loopback
// ports and points every configured device with the same id at its
// simulated twin; it also starts one embedded MQTT broker per configured
// broker and points the broker at it, so the demo shows redundant
// publishing without installing anything. Everything stops when ctx ends.
func startDemo(ctx context.Context, cfg *config.Config, file string, log *slog.Logger) (*demoInfo, error) {
	info := &demoInfo{}
	if cfg.MQTT != nil {
		for i := range cfg.MQTT.Brokers {
			b := &cfg.MQTT.Brokers[i]
			// The embedded broker logs every client disconnect as a
			// warning; only its errors belong in the demo's output.
			quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
			eb, err := mqtt.StartEmbeddedBroker("127.0.0.1:0", quiet.With("component", "demo-broker", "broker", b.Name))
			if err != nil {
				return nil, fmt.Errorf("demo: broker %s: %w", b.Name, err)
			}
			b.URL, b.TLS, b.Username, b.Password = "tcp://"+eb.Addr(), nil, "", config.Secret{}
			info.brokers = append(info.brokers, b.Name+"="+eb.Addr())
			go func() {
				<-ctx.Done()
				eb.Close()
			}()
		}
	}
	var fac *facsim.Facility
	var err error
	if _, statErr := os.Stat(file); statErr == nil {
		fac, err = facsim.LoadFacility(file)
	} else {
		fac, err = facsim.DefaultFacility()
	}
	if err != nil {
		return nil, err
	}
	sim, err := facsim.Start(ctx, fac, facsim.Options{Registry: cfg.Profiles, FreePorts: true, Logger: log.With("component", "facsim")})
	if err != nil {
		return nil, err
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
		return nil, fmt.Errorf("demo: %w", err)
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
	info.simURL = "http://" + ln.Addr().String()
	return info, nil
}
