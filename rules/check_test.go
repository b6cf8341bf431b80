package rules

import (
	"strings"
	"testing"

	profiles "github.com/facgw/facgw/firmware-profiles"
)

func TestCheck(t *testing.T) {
	reg, err := profiles.Shipped()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		rule string
		want string // "" for no error
	}{
		{"a point of the class", "select: {class: battery}\nwhen: bms.offgas_ppm > 50", ""},
		{"a typo, with did-you-mean", "select: {class: battery}\nwhen: bms.offgas_pmm > 50",
			`t.yaml:5:5: rules[0].when: no point "bms.offgas_pmm" in the profiles of class battery (did you mean "bms.offgas_ppm"?)`},
		{"a point of another class", "select: {class: battery}\nwhen: ups.status.on_battery",
			`rules[0].when: no point "ups.status.on_battery" in the profiles of class battery`},
		{"a point of a variant", "select: {profile: generic-liion-bms}\nwhen: bms.h2_ppm > 100", ""},
		{"one profile", "select: {profile: generic-vesda}\nwhen: vesda.fire2 || firepanel.alarm",
			`rules[0].when: no point "firepanel.alarm" in profile generic-vesda`},
		{"clear is checked", "select: {class: ups}\nwhen: battery.runtime < 10\nclear: battery.runtme > 15",
			`t.yaml:6:5: rules[0].clear: no point "battery.runtme" in the profiles of class ups (did you mean "battery.runtime"?)`},
		{"templates are checked", "select: {class: ups}\nwhen: battery.runtime < 10\nsummary: '{{ value \"battery.charg\" }}'",
			`rules[0].summary: no point "battery.charg" in the profiles of class ups (did you mean "battery.charge"?)`},
		{"an unknown profile", "select: {profile: generic-vesd}\nwhen: vesda.fire1",
			`t.yaml:4:14: rules[0].select.profile: unknown profile "generic-vesd" (did you mean "generic-vesda"?)`},
		{"profile and class disagree", "select: {profile: generic-vesda, class: battery}\nwhen: vesda.fire1",
			`rules[0].select.class: profile generic-vesda has class "fire", so no device matches both`},
		{"a row of an SNMP column", "select: {class: switch}\nwhen: 'point(\"if.oper_status.uplink-1\") == \"down\"'", ""},
		{"a counter row's rate", "select: {class: switch}\nwhen: 'point(\"if.in_octets.Gi1/0/1.rate\") > 1e6'", ""},
		{"a counter's rate", "select: {class: ups}\nwhen: ups.input.line_bads.rate > 0", ""},
		{"a column prefix alone is no row", "select: {class: switch}\nwhen: 'point(\"if.oper\") == \"down\"'",
			`no point "if.oper" in the profiles of class switch (did you mean "if.oper_status"?)`},
		{"devices only: any profile", "select: {devices: [bms-1]}\nwhen: vesda.fire1 || bms.alarm.offgas", ""},
		{"devices only: a name no profile has", "select: {devices: [bms-1]}\nwhen: bms.alarm.offgass",
			`no point "bms.alarm.offgass" in any loaded profile (did you mean "bms.alarm.offgas"?)`},
		{"group rules read across classes", "group_by: [room]\nwhen: count_true(vesda.fire1, firepanel.alarm, bms.alarm.offgas) >= 2", ""},
		{"a class no profile has is not checked", "select: {class: sensor}\nwhen: anything.at_all", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Check(rulePack(t, tt.rule), reg)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("got error %v, want none", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("got error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestCheckTestdata: the packs the package tests with read real points.
func TestCheckTestdata(t *testing.T) {
	reg, err := profiles.Shipped()
	if err != nil {
		t.Fatal(err)
	}
	set, err := LoadFiles("testdata/packs/fire.yaml", "testdata/packs/power.yaml", "testdata/packs/quality.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := Check(set, reg); err != nil {
		t.Errorf("got %v, want no error", err)
	}
}
