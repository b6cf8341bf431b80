package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"

	"strings"
	"text/tabwriter"
	"time"

	mbdrv "github.com/facgw/facgw/drivers/modbus"
	snmpdrv "github.com/facgw/facgw/drivers/snmp"
	profiles "github.com/facgw/facgw/firmware-profiles"
	"github.com/facgw/facgw/internal/point"
)

// probe polls one device once and prints its decoded points, so an
// engineer can try a profile against real hardware.
func probe(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	prof := fs.String("profile", "", "profile model name or YAML file (default: identify the device)")
	firmware := fs.String("firmware", "", "firmware version, to choose the profile variant without reading it")
	profileDir := fs.String("profile-dir", "", "extra directory of profiles")
	timeout := fs.Duration("timeout", 10*time.Second, "bound on the whole probe")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: facgw probe [-json] [-profile NAME|FILE] [-firmware V] URL")
		fmt.Fprintln(stderr, "  URL: modbus-tcp://HOST:PORT?unit=N  or  modbus-rtu:///dev/ttyUSB0?baud=9600&parity=E&unit=N")
		fmt.Fprintln(stderr, "       snmp://HOST:161?version=2c&community=public  or  snmp://USER@HOST:161?version=3&auth=SHA-256&authpass=..&priv=AES&privpass=..")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	reg, err := profiles.Shipped()
	if err != nil {
		fmt.Fprintln(stderr, "facgw probe:", err)
		return 1
	}
	if *profileDir != "" {
		if err := reg.AddDir(*profileDir); err != nil {
			fmt.Fprintln(stderr, "facgw probe:", err)
			return 1
		}
	}
	var profile *profiles.Profile
	switch {
	case *prof == "":
	case strings.HasSuffix(*prof, ".yaml") || strings.HasSuffix(*prof, ".yml"):
		if profile, err = reg.AddFile(*prof); err != nil {
			fmt.Fprintln(stderr, "facgw probe:", err)
			return 1
		}
	default:
		var ok bool
		if profile, ok = reg.Get(*prof); !ok {
			fmt.Fprintf(stderr, "facgw probe: unknown profile %q (see facgw profiles)\n", *prof)
			return 2
		}
	}
	dev, closeDev, err := probeDevice(fs.Arg(0), profile, *firmware, reg)
	if err != nil {
		fmt.Fprintln(stderr, "facgw probe:", err)
		return 2
	}
	defer closeDev()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	// The first poll identifies the device when needed; then every group.
	var pts []point.Point
	first := dev.Poll(ctx, "default")
	res := dev.Resolved()
	if res == nil {
		for _, p := range first {
			fmt.Fprintf(stderr, "facgw probe: %s\n", p.Reason)
			break
		}
		if len(first) == 0 {
			fmt.Fprintln(stderr, "facgw probe: device not identified")
		}
		return 1
	}
	pts = append(pts, first...)
	for _, g := range res.Groups() {
		if g != "default" {
			pts = append(pts, dev.Poll(ctx, g)...)
		}
	}
	bad := 0
	for _, p := range pts {
		if p.Quality != point.Good {
			bad++
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		doc := map[string]any{"profile": res.Profile.Model, "firmware": res.Firmware, "points": pts}
		if res.Variant != nil {
			doc["variant"] = res.Variant.Firmware
		}
		if err := enc.Encode(doc); err != nil {
			return 1
		}
	} else {
		fmt.Fprintf(stdout, "profile %s", res.Profile.Model)
		if res.Firmware != "" {
			fmt.Fprintf(stdout, ", firmware %s", res.Firmware)
		}
		if res.Variant != nil {
			fmt.Fprintf(stdout, " (variant %s)", res.Variant.Firmware)
		}
		fmt.Fprintf(stdout, ", %d points, %d not good\n", len(pts), bad)
		tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "POINT\tVALUE\tQUALITY\tREASON")
		for _, p := range pts {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.Name, p.Format(), p.Quality, p.Reason)
		}
		tw.Flush()
	}
	if bad == len(pts) {
		return 1
	}
	return 0
}

// listProfiles prints every profile and its variants.
func listProfiles(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("profiles", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("profile-dir", "", "extra directory of profiles")
	verbose := fs.Bool("v", false, "also list every point")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	reg, err := profiles.Shipped()
	if err != nil {
		fmt.Fprintln(stderr, "facgw profiles:", err)
		return 1
	}
	if *dir != "" {
		if err := reg.AddDir(*dir); err != nil {
			fmt.Fprintln(stderr, "facgw profiles:", err)
			return 1
		}
	}
	for _, p := range reg.List() {
		fmt.Fprintln(stdout, p.Describe())
		if *verbose {
			for _, pt := range p.Points {
				fmt.Fprintf(stdout, "    %-32s %-8s %5d %-6s %s\n", pt.Name, pt.Table, pt.Address, pt.Type, pt.Unit)
			}
		}
	}
	return 0
}

// probeable is what probe needs of a driver's device.
type probeable interface {
	Poll(ctx context.Context, group string) []point.Point
	Resolved() *profiles.Resolved
}

// probeDevice builds a device for a URL: modbus-tcp://, modbus-rtu:// or
// snmp://. profile nil means identify it.
func probeDevice(raw string, profile *profiles.Profile, firmware string, reg *profiles.Registry) (probeable, func(), error) {
	if strings.HasPrefix(raw, "snmp://") {
		cfg, err := snmpdrv.ParseURL(raw)
		if err != nil {
			return nil, nil, err
		}
		cfg.ID, cfg.Profile, cfg.Auto, cfg.Firmware, cfg.Registry = "probe", profile, profile == nil, firmware, reg
		if profile != nil && profile.Protocol != "snmp" {
			return nil, nil, fmt.Errorf("profile %s speaks %s, not snmp", profile.Model, profile.Protocol)
		}
		if err := cfg.Validate(); err != nil {
			return nil, nil, err
		}
		d := snmpdrv.NewDevice(cfg)
		return d, func() { d.Close() }, nil
	}
	target, err := mbdrv.ParseURL(raw)
	if err != nil {
		return nil, nil, err
	}
	if profile != nil && profile.Protocol != "modbus" {
		return nil, nil, fmt.Errorf("profile %s speaks %s, not modbus", profile.Model, profile.Protocol)
	}
	conn := target.Conn()
	d := mbdrv.NewDevice(mbdrv.DeviceConfig{ID: "probe", Unit: target.Unit, Profile: profile, Auto: profile == nil, Firmware: firmware, Registry: reg, Retries: 1}, conn)
	return d, func() { conn.Close() }, nil
}
