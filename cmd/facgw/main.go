// Command facgw is the facility telemetry gateway.
//
//	facgw run -config FILE [-demo]   poll devices and serve the state page
//	facgw check -config FILE         validate config and profiles
//	facgw profiles [-v]              list firmware profiles
//	facgw probe [-json] [-profile NAME|FILE] URL   poll one device once
//	facgw passwd < PASSWORD          print a bcrypt hash for http.users
//	facgw rules test FILE...         run rule unit tests
//	facgw rules list [-config FILE]  list the rules a config runs
//	facgw replay -config FILE REC    replay recorded telemetry through the rules
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	profiles "github.com/facgw/facgw/firmware-profiles"
	"github.com/facgw/facgw/internal/config"
	"github.com/facgw/facgw/internal/demo"
	"github.com/facgw/facgw/internal/gateway"
	"github.com/facgw/facgw/internal/sdnotify"
	"golang.org/x/sys/unix"
)

// version is set by the build (-ldflags "-X main.version=...").
var version = "dev"

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

func realMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "run":
		return run(args[1:], stdout, stderr)
	case "check":
		return check(args[1:], stdout, stderr)
	case "profiles":
		return listProfiles(args[1:], stdout, stderr)
	case "probe":
		return probe(args[1:], stdout, stderr)
	case "rules":
		return rulesCmd(args[1:], stdout, stderr)
	case "replay":
		return replay(args[1:], stdout, stderr)
	case "loadshed":
		return loadshedCmd(args[1:], stdout, stderr)
	case "passwd":
		return passwd(args[1:], os.Stdin, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "facgw", version)
		return 0
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return 0
	}
	fmt.Fprintf(stderr, "facgw: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: facgw COMMAND [flags]

commands:
  run -config FILE [-demo]    poll the configured devices and serve the state page
  check -config FILE          validate the config and every profile it uses
  profiles [-v]               list firmware profiles and their variants
  probe [-json] [-profile NAME|FILE] URL
                              poll one device once and print its points
  rules test FILE...          run rule unit tests (see docs/rules.md)
  rules list [-config FILE]   list the rules a config runs (default: every shipped rule)
  replay [-config FILE] [-format csv|mqtt-json] RECORDING
                              feed recorded telemetry through the rules, print the alert timeline
  loadshed plan -config FILE  print what each load-shed policy would shed, in order
  passwd < PASSWORD           print the bcrypt hash of a password read from stdin
  version                     print the version
`)
}

// loadConfig loads the shipped profiles and the config, which may add
// profile directories.
func loadConfig(file string) (*config.Config, *profiles.Registry, error) {
	reg, err := profiles.Shipped()
	if err != nil {
		return nil, nil, err
	}
	cfg, err := config.Load(file, reg)
	if err != nil {
		return nil, nil, err
	}
	return cfg, reg, nil
}

func check(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("config", "/etc/facgw/facgw.yaml", "config file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, reg, err := loadConfig(*file)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintln(stderr, "warning:", w)
	}
	nrules := 0
	if cfg.RuleSet != nil {
		for _, r := range cfg.RuleSet.Rules() {
			if !cfg.RuleSet.Disabled(r.ID) {
				nrules++
			}
		}
	}
	fmt.Fprintf(stdout, "%s: ok: site %s, gateway %s, %d devices, %d profiles loaded, %d alert rules, %d alert delivery paths\n",
		*file, cfg.Site, cfg.Gateway, len(cfg.Devices), len(reg.List()), nrules, cfg.PathCount())
	return 0
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("config", "/etc/facgw/facgw.yaml", "config file")
	demoFlag := fs.Bool("demo", false, "start the simulated demo facility in-process and poll it")
	facility := fs.String("facility", "deploy/facility.yaml", "simulated facility for -demo")
	logJSON := fs.Bool("log-json", false, "log JSON lines instead of text")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var h slog.Handler = slog.NewTextHandler(stderr, nil)
	// Under systemd stderr goes to the journal: one JSON object per line.
	if *logJSON || os.Getenv("JOURNAL_STREAM") != "" {
		h = slog.NewJSONHandler(stderr, nil)
	}
	log := slog.New(h)
	cfg, reg, err := loadConfig(*file)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// SIGHUP reloads the configuration (systemctl reload). Caught from
	// here on, so an early one cannot kill the process; it is acted on
	// once the gateway runs.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	var di *demo.Info
	if *demoFlag {
		// The demo (simulator, embedded brokers, webhook receiver) outlives
		// the gateway's shutdown, so the gateway's last messages and its
		// offline status still reach the brokers; it stops when run returns.
		demoCtx, stopDemo := context.WithCancel(context.Background())
		defer stopDemo()
		if di, err = demo.Start(demoCtx, cfg, *facility, log, demo.Options{}); err != nil {
			fmt.Fprintln(stderr, "facgw:", err)
			return 1
		}
	}
	gopts := gateway.Options{Log: log, Version: version}
	if di != nil {
		// Only a real demo: a nil *demo.Info in the interface would not
		// read as nil.
		gopts.Demo = di
	}
	gw, err := gateway.New(cfg, reg, gopts)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	gw.SetLoader(func() (*config.Config, *profiles.Registry, error) {
		next, nreg, err := loadConfig(*file)
		if err == nil && di != nil {
			pointAtDemo(next, cfg, di)
		}
		return next, nreg, err
	})
	err = gw.Run(ctx, func() {
		fmt.Fprintf(stdout, "\nfacgw %s: site %s, gateway %s\n", version, cfg.Site, cfg.Gateway)
		fmt.Fprintf(stdout, "  dashboard:      http://%s/\n", gw.HTTPAddr())
		fmt.Fprintf(stdout, "  state (JSON):   http://%s/api/v1/state\n", gw.HTTPAddr())
		fmt.Fprintf(stdout, "  metrics:        http://%s/metrics\n", gw.HTTPAddr())
		if di != nil {
			for _, b := range di.Brokers {
				name, addr, _ := strings.Cut(b, "=")
				host, port, _ := net.SplitHostPort(addr)
				fmt.Fprintf(stdout, "  MQTT broker %s:  %s   (mosquitto_sub -h %s -p %s -t '%s/#' -v)\n", name, addr, host, port, cfg.MQTT.Prefix)
			}
			if di.Traps != "" {
				fmt.Fprintf(stdout, "  SNMP traps:     udp %s (the simulated agents send theirs here; see /api/v1/events)\n", di.Traps)
			}
			if di.Receiver != nil {
				fmt.Fprintf(stdout, "  alert webhook:  %s (the demo's receiver: it logs every alert it gets)\n", di.Receiver.URL())
			}
			fmt.Fprintf(stdout, "  alerts (JSON):  http://%s/api/v1/alerts  (log in as operator / facgw-demo-operator to acknowledge)\n", gw.HTTPAddr())
			fmt.Fprintf(stdout, "  simulator API:  %s/api/devices  (scenarios: POST %s/api/scenario)\n", di.SimURL, di.SimURL)
			fmt.Fprintf(stdout, "  try:  curl -d '{\"device\":\"bms-rack1\",\"scenario\":\"thermal-runaway\"}' %s/api/scenario\n", di.SimURL)
		}
		fmt.Fprintln(stdout, "Ctrl-C to stop.")
		// Ready once the config is loaded, the outboxes are open and
		// polling has started; then the watchdog, fed by the main loop.
		if err := sdnotify.Notify(fmt.Sprintf("READY=1\nSTATUS=polling %d devices", len(cfg.Devices))); err != nil {
			log.Warn("sd_notify", "err", err)
		}
		go func() {
			<-ctx.Done()
			_ = sdnotify.Notify("STOPPING=1")
		}()
		go reloadOnHUP(ctx, hup, gw, log)
		if iv := sdnotify.WatchdogInterval(); iv > 0 {
			go func() {
				if err := sdnotify.Watchdog(ctx, iv, gw.Hub().Heartbeat); err != nil {
					log.Error("watchdog: the main loop stopped; systemd will restart facgw", "err", err)
				}
			}()
		}
	})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}

// reloadOnHUP reloads the configuration on each SIGHUP until ctx ends,
// telling systemd (Type=notify) with RELOADING=1 and the monotonic time,
// then READY=1 once done, as sd_notify(3) asks. A refused configuration
// is logged by the gateway and shown in /api/v1/state; the old one keeps
// running, so the service is ready again either way.
func reloadOnHUP(ctx context.Context, hup <-chan os.Signal, gw *gateway.Gateway, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		}
		var ts unix.Timespec
		state := "RELOADING=1"
		if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err == nil {
			state += fmt.Sprintf("\nMONOTONIC_USEC=%d", ts.Nano()/1000)
		}
		if err := sdnotify.Notify(state); err != nil {
			log.Warn("sd_notify", "err", err)
		}
		status := "STATUS=configuration reloaded"
		if _, err := gw.ReloadConfig(); err != nil {
			status = "STATUS=configuration reload refused; the previous configuration runs (see /api/v1/state)"
		}
		if err := sdnotify.Notify("READY=1\n" + status); err != nil {
			log.Warn("sd_notify", "err", err)
		}
	}
}

// pointAtDemo points a reloaded demo config where the running demo
// points: its devices at their simulated twins and its brokers, traps and
// alert paths at the demo's own (changes to those sections in the file
// wait for a restart in demo mode).
func pointAtDemo(next, running *config.Config, di *demo.Info) {
	addrs := di.Sim.Addrs()
	for i := range next.Devices {
		d := &next.Devices[i]
		if a, ok := addrs[d.ID]; ok && (d.Transport == config.TransportTCP || d.Transport == config.TransportSNMP) {
			d.Address = a
		}
	}
	next.MQTT, next.Traps, next.Alerting = running.MQTT, running.Traps, running.Alerting
}
