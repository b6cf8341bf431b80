// Command facsim serves a simulated facility: the devices of a facility
// file on loopback Modbus TCP listeners and SNMP agents (UDP), with values
// that move plausibly, and an HTTP control API to switch scenarios, device
// faults and SNMP trap receivers at run time. The simulator itself is
// package internal/facsim; this file only wires flags, signals and the
// HTTP listener to it, and prints where each device is served.
//
//	facsim [-facility deploy/facility.yaml] [-http 127.0.0.1:15080]
//	       [-scenario device=name]... [-fault device=kind[:param]]...
//	       [-speed 1] [-seed N] [-tick 200ms] [-free-ports] [-v]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/facgw/facgw/internal/facsim"
)

const defaultFacility = "deploy/facility.yaml"

// repeated collects a flag given several times.
type repeated []string

func (r *repeated) String() string     { return strings.Join(*r, ",") }
func (r *repeated) Set(s string) error { *r = append(*r, s); return nil }

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run() error {
	var scenarios, faults repeated
	file := flag.String("facility", defaultFacility, "facility file; when the default is absent, the built-in copy of it is used")
	httpAddr := flag.String("http", "127.0.0.1:15080", "loopback address of the HTTP control API (empty: none)")
	flag.Var(&scenarios, "scenario", "initial scenario as device=name, or =name for every device it applies to (repeatable)")
	flag.Var(&faults, "fault", "initial fault as device=kind[:param], such as crac-1=late:2s, ups-a=exception:4 or ups-c=error:genErr (repeatable)")
	speed := flag.Float64("speed", 1, "simulated seconds per real second")
	seed := flag.Uint64("seed", 0, "random seed (0: pick one and print it)")
	tick := flag.Duration("tick", facsim.DefaultTick, "model step period")
	freePorts := flag.Bool("free-ports", false, "listen on free ports instead of the facility's")
	verbose := flag.Bool("v", false, "log debug events")
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("facsim: unexpected arguments %q", flag.Args())
	}

	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	fac, err := facsim.LoadFacility(*file)
	if errors.Is(err, fs.ErrNotExist) && !flagSet("facility") {
		log.Info("facsim: no facility file, using the built-in demo facility", "file", *file)
		fac, err = facsim.DefaultFacility()
	}
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	sim, err := facsim.Start(ctx, fac, facsim.Options{Speed: *speed, Seed: *seed, Tick: *tick, FreePorts: *freePorts, Logger: log})
	if err != nil {
		return err
	}
	defer sim.Close()

	for _, s := range scenarios {
		dev, name, ok := strings.Cut(s, "=")
		if !ok {
			return fmt.Errorf("facsim: -scenario %q: want device=name", s)
		}
		if err := sim.SetScenario(dev, name); err != nil {
			return err
		}
	}
	for _, f := range faults {
		dev, spec, ok := strings.Cut(f, "=")
		if !ok || dev == "" {
			return fmt.Errorf("facsim: -fault %q: want device=kind[:param]", f)
		}
		kind, param, _ := strings.Cut(spec, ":")
		if err := sim.SetFault(dev, kind, param); err != nil {
			return err
		}
	}

	var srv *http.Server
	if *httpAddr != "" {
		if err := facsim.CheckLoopback(*httpAddr); err != nil {
			return fmt.Errorf("facsim: -http: %w", err)
		}
		ln, err := net.Listen("tcp", *httpAddr)
		if err != nil {
			return fmt.Errorf("facsim: control API: %w", err)
		}
		srv = &http.Server{Handler: sim.Handler(), ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("facsim: control API stopped", "err", err)
			}
		}()
		fmt.Printf("control API  http://%s/api/devices\n", ln.Addr())
	}

	printDevices(os.Stdout, sim.Devices())
	fmt.Printf("seed %d, speed %g; Ctrl-C stops\n", sim.Seed(), *speed)

	<-ctx.Done()
	if srv != nil {
		shutdown, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	}
	return nil
}

// printDevices prints one line per device: id, profile, where it is
// served (modbus-tcp address and unit id, or snmp UDP address with the
// versions it answers, its v3 users and engine id, and its trap
// receivers), scenario and fault. No community or passphrase is printed.
func printDevices(out io.Writer, devs []facsim.DeviceStatus) {
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	for _, d := range devs {
		where := fmt.Sprintf("modbus-tcp %s\tunit %d", d.Address, d.Unit)
		if s := d.SNMP; s != nil {
			where = fmt.Sprintf("snmp udp %s\tv%s", d.Address, strings.Join(s.Versions, ",v"))
			for _, u := range s.Users {
				where += " user " + u.Name
			}
			if len(s.Users) > 0 {
				where += " engine 0x" + s.EngineID
			}
			for _, r := range s.Traps {
				where += " traps->" + r.Addr
			}
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", d.ID, d.Profile, where, d.Scenario, d.Fault)
	}
	w.Flush()
}

func flagSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
