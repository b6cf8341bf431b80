package facsim

import (
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"

	profiles "github.com/facgw/facgw/firmware-profiles"
)

// Scenario names.
const (
	ScenarioNormal         = "normal"
	ScenarioUtilityFailure = "utility-failure"
	ScenarioRestore        = "restore"
	ScenarioBypass         = "bypass"
	ScenarioOverload       = "overload"
	ScenarioThermalRunaway = "thermal-runaway"
	ScenarioCRACFailure    = "crac-failure"
	ScenarioFireAlarm      = "fire-alarm"
	ScenarioLinkDown       = "link-down"
)

// Scenario describes a scenario and the device classes it applies to.
type Scenario struct {
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Classes     []string `json:"classes"` // empty: every class
}

func (s *Scenario) fits(class string) bool {
	return len(s.Classes) == 0 || slices.Contains(s.Classes, class)
}

// Scenarios lists the scenarios, in the order the API shows them. Scenario
// times are simulated time: Options.Speed compresses them.
var Scenarios = []Scenario{
	{ScenarioNormal, "nominal operation; switching to it resets the device at once (a fire panel resets its latched alarm, " +
		"a PDU switches every outlet on, a switch brings its links up)", nil},
	{ScenarioUtilityFailure, "mains fails: a UPS goes on battery (input bad, input 0 V), runtime counts down with the load and charge falls; " +
		"low battery near the end, output off when depleted. A BMS discharges its rack", []string{"ups", "battery"}},
	{ScenarioRestore, "mains returns: back online, the battery recharges at about 1 %/min", []string{"ups", "battery"}},
	{ScenarioBypass, "the UPS transfers the load to bypass: on_bypass set, online cleared, no battery behind the load", []string{"ups"}},
	{ScenarioOverload, "the load climbs to about 110 % and the overload bit is set", []string{"ups"}},
	{ScenarioThermalRunaway, "a cell vents: off-gas rises at once (offgas alarm past the BMS threshold), after 2 min the hottest cell " +
		"climbs from 3 degC/min, accelerating (cell over-temperature alarm past the threshold, contactor opens), later the cell voltage collapses", []string{"battery"}},
	{ScenarioCRACFailure, "the unit shuts down on a fault: unit fault alarm, fans stop, compressor off, supply air warms toward the " +
		"return air, high supply temperature alarm once above the threshold", []string{"cooling"}},
	{ScenarioFireAlarm, "smoke: VESDA obscuration rises through Alert, Action, Fire 1 and Fire 2 with level and bits following " +
		"(about 2 min to Fire 1); every fire panel alarms (zone 1) when a detector reaches Fire 1, or at once if the panel is named", []string{"fire"}},
	{ScenarioLinkDown, "the switch's uplink goes down: ifOperStatus down(2), its traffic stops, a linkDown trap; " +
		"normal brings it back up with a linkUp trap", []string{"switch"}},
}

func scenarioByName(name string) *Scenario {
	for i := range Scenarios {
		if Scenarios[i].Name == name {
			return &Scenarios[i]
		}
	}
	return nil
}

// scenarioNames lists the scenarios applying to class ("" for all).
func scenarioNames(class string) string {
	var names []string
	for _, s := range Scenarios {
		if class == "" || s.fits(class) {
			names = append(names, s.Name)
		}
	}
	return strings.Join(names, ", ")
}

// model is the physics of one device class. A model is driven by one
// goroutine at a time (the Sim's lock).
type model interface {
	// setScenario switches the scenario and returns the one in effect (a
	// model may refuse a switch, as a rack in thermal runaway does not
	// return to normal discharge); direct is false when the switch was
	// made for a whole class rather than naming the device.
	setScenario(name string, direct bool) string
	// step advances the model by dt seconds of simulated time.
	step(dt float64, in *inputs)
	// values stores the model's current values by canonical point name.
	// A point the profile lacks is ignored by the caller.
	values(out map[string]any)
}

// tabler is implemented by models that serve table columns (SNMP profiles
// walk them): columns stores the value of each column point by name, one
// value per row. A Modbus profile has no columns, so the Modbus writer
// never asks.
type tabler interface {
	columns(out map[string]column)
}

// column is the value of a table column point: one value per row (rows
// are indexed 1, 2, ...) and the rows' labels, served in the point's
// row_label column (nil: the index names the row). Columns of one table
// take their rows from the first column the model gives.
type column struct {
	labels []string
	vals   []any
}

// commander is implemented by models with writable points (a PDU's
// outlet command): command applies a manager's SET of code to row (1..)
// of the point, or returns an error, which the agent answers with
// wrongValue, leaving everything unchanged.
type commander interface {
	command(point string, row int, code int64) error
}

// reactor is implemented by models that react at once to the facility's
// signals of the same step (a panel to a detector's Fire 1 relay).
type reactor interface {
	react(in *inputs)
}

// inputs are facility-wide signals that couple devices, such as a
// detector's Fire 1 relay wired to the fire panel. The Sim recomputes them
// after every model step and then lets reactors react to them.
type inputs struct {
	fire1     bool // some detector is at Fire 1 or above
	detectors bool // the facility has smoke detectors
}

// enumVal is a value for an enum point: the first code whose name is one
// of names (compared without case and punctuation), else code.
type enumVal struct {
	names []string
	code  int64
}

func enum(code int64, names ...string) enumVal { return enumVal{names, code} }

// secs is a duration in seconds; the writer converts it to the point's
// unit (s or min).
type secs float64

// absentOr serves the point's first absent sentinel when it has one (a
// device telling "not applicable"), else the fallback value.
type absentOr struct{ fallback any }

// unitVal is a quantity in a base unit (VA, W) that the writer converts
// for a point in the kilo unit (kVA, kW).
type unitVal struct {
	v    float64
	unit string
}

// counter is a counter reading (SNMP Counter32 or Counter64): it wraps
// modulo 2^32 or 2^64, never saturates.
type counter uint64

// sensorVal is one row of an ENTITY-SENSOR-MIB table: the sensor type
// (celsius 8, rpm 10, watts 6, ...), the value in that unit, the decimal
// places it is served with and whether the sensor works.
type sensorVal struct {
	typ  int64
	v    float64
	prec int
	ok   bool
}

// newModel returns the model for a device's class; devices of a class
// without a model serve their sim values only.
func newModel(spec *DeviceSpec, class string, res *profiles.Resolved, r *rand.Rand) model {
	h := hints{res}
	switch class {
	case "ups":
		return newUPS(h, r)
	case "battery":
		return newBMS(h, r)
	case "cooling":
		return newCRAC(h, r)
	case "fire":
		return newFire(h, r)
	case "pdu":
		if res.Profile.Protocol == profiles.Modbus {
			return newOutletBank(res, r)
		}
		return newPDU(spec.Outlets, r)
	case "switch":
		return newSwitch(spec.Ports, spec.Uplink, r)
	}
	return staticModel{}
}

type staticModel struct{}

func (staticModel) setScenario(string, bool) string { return ScenarioNormal }
func (staticModel) step(float64, *inputs)           {}
func (staticModel) values(map[string]any)           {}

// hints reads model parameters from a profile: a point's numeric sim
// value, where a point the model drives has one, is its nominal value
// (a 120 V output, a 60 Hz grid, a setpoint or an alarm threshold).
type hints struct{ res *profiles.Resolved }

func (h hints) has(name string) bool {
	_, ok := h.res.Point(name)
	return ok
}

// column reports whether the profile walks name as a table column.
func (h hints) column(name string) bool {
	p, ok := h.res.Point(name)
	return ok && p.IsColumn()
}

func (h hints) num(name string, def float64) float64 {
	p, ok := h.res.Point(name)
	if !ok {
		return def
	}
	if f, ok := toFloat(p.Sim); ok {
		return f
	}
	return def
}

// withUnit is num for a quantity in kilo units or plain ones: the sim value
// of a point in kVA or kW is scaled to VA or W.
func (h hints) withUnit(name string, def float64) float64 {
	p, ok := h.res.Point(name)
	if !ok {
		return def
	}
	f, ok := toFloat(p.Sim)
	if !ok {
		return def
	}
	if p.Unit == "kVA" || p.Unit == "kW" {
		f *= 1000
	}
	return f
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case uint64:
		return float64(x), true
	case float64:
		return x, true
	case string:
		f, err := strconv.ParseFloat(x, 64)
		return f, err == nil
	case bool:
		if x {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}

// ou is an Ornstein-Uhlenbeck process: a value wandering around mu with
// standard deviation sd, relaxing with time constant tau seconds, clamped
// to [lo, hi]. Its exact discretisation keeps it stable for any step.
type ou struct {
	x, mu, sd, tau, lo, hi float64
}

func newOU(mu, sd, tau, lo, hi float64) ou { return ou{mu, mu, sd, tau, lo, hi} }

func (o *ou) step(dt float64, r *rand.Rand) float64 {
	a := math.Exp(-dt / o.tau)
	o.x = o.mu + (o.x-o.mu)*a + o.sd*math.Sqrt(1-a*a)*r.NormFloat64()
	o.x = max(o.lo, min(o.hi, o.x))
	return o.x
}

// approach moves x toward target with time constant tau over dt.
func approach(x, target, tau, dt float64) float64 {
	return target + (x-target)*math.Exp(-dt/tau)
}

// round rounds to n decimals so served values do not jitter in digits no
// device reports.
func round(x float64, n int) float64 {
	p := math.Pow(10, float64(n))
	return math.Round(x*p) / p
}
