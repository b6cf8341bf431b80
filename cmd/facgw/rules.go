package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/facgw/facgw/rules"
	"github.com/facgw/facgw/rules/ruletest"
)

// rulesCmd runs "facgw rules test FILE..." (rule unit tests) and "facgw
// rules check -config F" (compile the rules a config would run and list
// them).
func rulesCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: facgw rules test FILE... | facgw rules list [-config FILE]")
		return 2
	}
	switch args[0] {
	case "test":
		return rulesTest(args[1:], stdout, stderr)
	case "list":
		return rulesList(args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "facgw rules: unknown command %q (test or list)\n", args[0])
	return 2
}

func rulesTest(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("rules test", flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "usage: facgw rules test FILE...")
		return 2
	}
	code := 0
	for _, f := range fs.Args() {
		passed, err := ruletest.Run(f, stdout)
		if err != nil {
			fmt.Fprintln(stderr, err)
			code = 1
			continue
		}
		if !passed {
			code = 1
		}
	}
	return code
}

// rulesList prints the rules a config runs (or every shipped rule).
func rulesList(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("rules list", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("config", "", "config file (default: every shipped rule)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var rs *rules.RuleSet
	if *file != "" {
		cfg, _, err := loadConfig(*file)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		rs = cfg.RuleSet
	} else {
		var err error
		if rs, err = rules.Shipped(); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
	}
	for _, r := range rs.Rules() {
		if rs.Disabled(r.ID) {
			continue
		}
		fmt.Fprintf(stdout, "%-40s %-9s %-12s %s\n", r.ID, r.Severity, r.Class, oneLine(r.When))
	}
	return 0
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// replay feeds recorded telemetry through the rules of a config and prints
// the alert timeline.
func replay(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("config", "/etc/facgw/facgw.yaml", "config file: its devices and rules")
	format := fs.String("format", "", "input format: csv or mqtt-json (default: from the file name, .csv or else mqtt-json)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: facgw replay [-config FILE] [-format csv|mqtt-json] RECORDING (- for stdin)")
		return 2
	}
	cfg, _, err := loadConfig(*file)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	var devs []rules.Device
	for _, d := range cfg.Devices {
		rd := rules.Device{ID: d.ID, Profile: d.Profile, Labels: d.Labels}
		if p := d.ProfileDef(); p != nil {
			rd.Class = p.Class
		}
		devs = append(devs, rd)
	}
	in := io.Reader(os.Stdin)
	name := fs.Arg(0)
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			fmt.Fprintln(stderr, "facgw replay:", err)
			return 1
		}
		defer f.Close()
		in = f
	}
	if *format == "" {
		*format = ruletest.FormatMQTTJSON
		if strings.EqualFold(filepath.Ext(name), ".csv") {
			*format = ruletest.FormatCSV
		}
	}
	if err := ruletest.Replay(cfg.RuleSet, devs, in, *format, stdout); err != nil {
		fmt.Fprintln(stderr, "facgw replay:", err)
		return 1
	}
	return 0
}
