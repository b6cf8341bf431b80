// Package demo builds the self-contained demo `make run` starts: the
// simulated facility in-process, embedded MQTT brokers, and a gateway
// config pointed at them. Tests use it to run the same setup.
package demo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"time"

	"github.com/facgw/facgw/internal/config"
	"github.com/facgw/facgw/internal/facsim"
	"github.com/facgw/facgw/pipeline/mqtt"
)

// Info says where the demo's parts listen.
type Info struct {
	// Sim is the running simulator.
	Sim *facsim.Sim
	// SimURL is the simulator's HTTP control API.
	SimURL string
	// Traps is the gateway's trap listener address, "" without one.
	Traps string
	// Brokers are the embedded brokers as "name=host:port".
	Brokers []string
	// Receiver is the webhook receiver the demo's webhook paths post to;
	// nil without one.
	Receiver *Receiver
}

// Options tune Start for tests.
type Options struct {
	// Manual stops the simulator's clock: values move only on Sim.Step.
	Manual bool
	// Seed seeds the simulator (0: random).
	Seed uint64
}

// Start starts the simulated facility in-process on free loopback
// ports and points every configured device with the same id at its
// simulated twin; it also starts one embedded MQTT broker per configured
// broker and points the broker at it, so the demo shows redundant
// publishing without installing anything. Everything stops when ctx ends.
func Start(ctx context.Context, cfg *config.Config, file string, log *slog.Logger, opts Options) (*Info, error) {
	info := &Info{}
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
			info.Brokers = append(info.Brokers, b.Name+"="+eb.Addr())
			go func() {
				<-ctx.Done()
				eb.Close()
			}()
		}
	}
	if a := cfg.Alerting; a != nil && len(a.Webhook) > 0 {
		// One receiver for every webhook path, as an operations team's
		// endpoint would be; it checks the first path's signature.
		rcv, err := StartReceiver(a.Webhook[0].Secret.Reveal(), log.With("component", "demo-receiver"))
		if err != nil {
			return nil, fmt.Errorf("demo: webhook receiver: %w", err)
		}
		for i := range a.Webhook {
			a.Webhook[i].URL, a.Webhook[i].Secret, a.Webhook[i].CAFile = rcv.URL(), a.Webhook[0].Secret, ""
		}
		info.Receiver = rcv
		go func() {
			<-ctx.Done()
			rcv.Close()
		}()
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
	sim, err := facsim.Start(ctx, fac, facsim.Options{Registry: cfg.Profiles, FreePorts: true, Manual: opts.Manual, Seed: opts.Seed,
		Logger: log.With("component", "facsim")})
	if err != nil {
		return nil, err
	}
	info.Sim = sim
	addrs := sim.Addrs()
	for i := range cfg.Devices {
		d := &cfg.Devices[i]
		if a, ok := addrs[d.ID]; ok && (d.Transport == config.TransportTCP || d.Transport == config.TransportSNMP) {
			d.Address = a
		} else if !d.Disabled {
			log.Warn("demo: device has no simulated twin", "device", d.ID)
		}
	}
	if cfg.Traps != nil {
		// A free UDP port for the gateway's trap listener, and every
		// simulated SNMP agent sends its traps there.
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			sim.Close()
			return nil, fmt.Errorf("demo: %w", err)
		}
		cfg.Traps.Listen = pc.LocalAddr().String()
		pc.Close()
		for _, st := range sim.Devices() {
			if st.SNMP == nil {
				continue
			}
			// v2c where the agent has a community, else v3 as its first
			// user (the demo config lists that user under traps.users).
			r := facsim.TrapReceiver{Addr: cfg.Traps.Listen, Version: "2c"}
			if !slices.Contains(st.SNMP.Versions, "2c") && len(st.SNMP.Users) > 0 {
				r = facsim.TrapReceiver{Addr: cfg.Traps.Listen, Version: "3", User: st.SNMP.Users[0].Name}
			}
			if err := sim.SetTrapReceivers(st.ID, []facsim.TrapReceiver{r}); err != nil {
				sim.Close()
				return nil, fmt.Errorf("demo: %w", err)
			}
		}
		info.Traps = cfg.Traps.Listen
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
	info.SimURL = "http://" + ln.Addr().String()
	return info, nil
}
