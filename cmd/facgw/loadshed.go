package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/facgw/facgw/rules/loadshed"
)

// loadshedCmd runs "facgw loadshed plan -config F": for each policy, what
// would be shed in which order, for review before arming.
func loadshedCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "plan" {
		fmt.Fprintln(stderr, "usage: facgw loadshed plan -config FILE")
		return 2
	}
	fs := flag.NewFlagSet("loadshed plan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("config", "", "config file")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if *file == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: facgw loadshed plan -config FILE")
		return 2
	}
	cfg, _, err := loadConfig(*file)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if cfg.Loadshed == nil {
		fmt.Fprintf(stdout, "%s: no loadshed section: nothing is ever shed\n", *file)
		return 0
	}
	loadshed.WritePlan(stdout, cfg.Loadshed)
	return 0
}
