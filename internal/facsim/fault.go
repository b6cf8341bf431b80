package facsim

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gosnmp/gosnmp"

	profiles "github.com/facgw/facgw/firmware-profiles"
	"github.com/facgw/facgw/internal/mbserver"
	"github.com/facgw/facgw/internal/snmpagent"
)

// Fault kinds a device can be switched to; see FaultKinds.
const (
	FaultNone      = "none"
	FaultSilent    = "silent"
	FaultLate      = "late"
	FaultException = "exception"
	FaultGarbage   = "garbage"
	FaultDrop      = "drop"
	FaultError     = "error"
	FaultTruncated = "truncated"
)

// DefaultLateDelay is the reply delay of a late fault given without one.
const DefaultLateDelay = 2 * time.Second

// FaultKind describes one fault kind, its parameter and the protocols
// (profile protocols: modbus, snmp) of the devices it applies to.
type FaultKind struct {
	Name        string   `json:"name"`
	Param       string   `json:"param,omitempty"`
	Description string   `json:"description"`
	Protocols   []string `json:"protocols"`
}

var (
	bothProtocols = []string{profiles.Modbus, profiles.SNMP}
	modbusOnly    = []string{profiles.Modbus}
	snmpOnly      = []string{profiles.SNMP}
)

// FaultKinds lists the device faults, in the order the API shows them.
var FaultKinds = []FaultKind{
	{FaultNone, "", "answer normally (clears a fault)", bothProtocols},
	{FaultSilent, "", "read requests and never answer; a Modbus connection stays open (the client times out)", bothProtocols},
	{FaultLate, "delay such as 2s (default 2s)", "answer every request after the delay", bothProtocols},
	{FaultException, "code such as 4 or 0x0B (default 4, server device failure)", "answer every request with a Modbus exception", modbusOnly},
	{FaultGarbage, "mode: cycle (default), random, length, bytecount, txid, truncated or funconly",
		"answer with a malformed frame (SNMP: random bytes that are no SNMP message, or with mode truncated the first half of the reply)", bothProtocols},
	{FaultDrop, "", "close the connection when a request for the device arrives", modbusOnly},
	{FaultError, "SNMP error status such as genErr (default), tooBig, noSuchName or its number 1..18",
		"answer every SNMP request with the error status, error index 1, without executing it", snmpOnly},
	{FaultTruncated, "", "answer with the first half of the correct reply (Modbus: garbage:truncated)", bothProtocols},
}

// snmpStatuses are the SNMP error statuses (RFC 3416) by number.
var snmpStatuses = []string{"noError", "tooBig", "noSuchName", "badValue", "readOnly", "genErr", "noAccess", "wrongType",
	"wrongLength", "wrongEncoding", "wrongValue", "noCreation", "inconsistentValue", "resourceUnavailable",
	"commitFailed", "undoFailed", "authorizationError", "notWritable", "inconsistentName"}

// parseStatus parses an SNMP error status by name (any case) or number.
func parseStatus(s string) (uint8, bool) {
	if n, err := strconv.ParseUint(s, 10, 8); err == nil {
		return uint8(n), n >= 1 && int(n) < len(snmpStatuses)
	}
	for i, name := range snmpStatuses {
		if i > 0 && strings.EqualFold(name, s) {
			return uint8(i), true
		}
	}
	return 0, false
}

var garbageModes = map[string]mbserver.GarbageMode{
	"cycle":     mbserver.GarbageCycle,
	"random":    mbserver.GarbageRandom,
	"length":    mbserver.GarbageLength,
	"bytecount": mbserver.GarbageByteCount,
	"txid":      mbserver.GarbageTxID,
	"truncated": mbserver.GarbageTruncated,
	"funconly":  mbserver.GarbageFuncOnly,
}

// Fault is a device fault with its parameter.
type Fault struct {
	// Kind is one of the Fault* constants.
	Kind string `json:"kind"`
	// Delay is the reply delay of a late fault.
	Delay time.Duration `json:"-"`
	// Code is the exception code of an exception fault.
	Code uint8 `json:"code,omitempty"`
	// Garbage is the malformed-reply mode of a garbage fault.
	Garbage string `json:"garbage,omitempty"`
	// Status is the SNMP error status name of an error fault.
	Status string `json:"status,omitempty"`
}

// fits reports whether the fault applies to a device speaking protocol.
func (f Fault) fits(protocol string) bool {
	for _, k := range FaultKinds {
		if k.Name == f.Kind {
			return slices.Contains(k.Protocols, protocol)
		}
	}
	return false
}

// String returns the fault as kind[:param], the form ParseFault and the
// -fault flag take.
func (f Fault) String() string {
	switch f.Kind {
	case FaultLate:
		return f.Kind + ":" + f.Delay.String()
	case FaultException:
		return fmt.Sprintf("%s:%d", f.Kind, f.Code)
	case FaultGarbage:
		return f.Kind + ":" + f.Garbage
	case FaultError:
		return f.Kind + ":" + f.Status
	case "":
		return FaultNone
	}
	return f.Kind
}

// cutParam splits "kind:param".
func cutParam(s string) (kind, param string, ok bool) {
	return strings.Cut(strings.TrimSpace(s), ":")
}

// ParseFault builds a fault from its kind and parameter (empty for the
// default): a duration for late, an exception code for exception, a mode
// for garbage, an SNMP error status for error. Kinds without a parameter
// reject one.
func ParseFault(kind, param string) (Fault, error) {
	kind, param = strings.TrimSpace(kind), strings.TrimSpace(param)
	f := Fault{Kind: kind}
	switch kind {
	case FaultNone, FaultSilent, FaultDrop, FaultTruncated:
		if param != "" {
			return Fault{}, fmt.Errorf("facsim: fault %q takes no parameter, got %q", kind, param)
		}
	case FaultLate:
		f.Delay = DefaultLateDelay
		if param != "" {
			d, err := time.ParseDuration(param)
			if err != nil || d <= 0 {
				return Fault{}, fmt.Errorf("facsim: fault late wants a positive delay such as 2s, got %q", param)
			}
			f.Delay = d
		}
	case FaultException:
		f.Code = byte(mbserver.ServerDeviceFailure)
		if param != "" {
			c, err := strconv.ParseUint(param, 0, 8)
			if err != nil || c == 0 {
				return Fault{}, fmt.Errorf("facsim: fault exception wants a code 1..255 such as 4 or 0x0B, got %q", param)
			}
			f.Code = uint8(c)
		}
	case FaultGarbage:
		f.Garbage = "cycle"
		if param != "" {
			if _, ok := garbageModes[param]; !ok {
				return Fault{}, fmt.Errorf("facsim: unknown garbage mode %q (known: cycle, random, length, bytecount, txid, truncated, funconly)", param)
			}
			f.Garbage = param
		}
	case FaultError:
		f.Status = snmpStatuses[gosnmp.GenErr]
		if param != "" {
			n, ok := parseStatus(param)
			if !ok {
				return Fault{}, fmt.Errorf("facsim: fault error wants an SNMP error status such as genErr, tooBig or 1..18, got %q", param)
			}
			f.Status = snmpStatuses[n]
		}
	default:
		return Fault{}, fmt.Errorf("facsim: unknown fault %q (known: %s)", kind, faultNames(""))
	}
	return f, nil
}

// faultNames lists the fault kinds applying to protocol ("" for all).
func faultNames(protocol string) string {
	var names []string
	for _, k := range FaultKinds {
		if protocol == "" || slices.Contains(k.Protocols, protocol) {
			names = append(names, k.Name)
		}
	}
	return strings.Join(names, ", ")
}

// server converts the fault into mbserver's form.
func (f Fault) server() mbserver.Fault {
	switch f.Kind {
	case FaultSilent:
		return mbserver.Fault{Kind: mbserver.FaultSilent}
	case FaultLate:
		return mbserver.Fault{Kind: mbserver.FaultLate, Delay: f.Delay}
	case FaultException:
		return mbserver.Fault{Kind: mbserver.FaultException, Exception: mbserver.ExceptionCode(f.Code)}
	case FaultGarbage:
		return mbserver.Fault{Kind: mbserver.FaultGarbage, Garbage: garbageModes[f.Garbage]}
	case FaultDrop:
		return mbserver.Fault{Kind: mbserver.FaultDrop}
	case FaultTruncated:
		return mbserver.Fault{Kind: mbserver.FaultGarbage, Garbage: mbserver.GarbageTruncated}
	}
	return mbserver.Fault{}
}

// agent converts the fault into snmpagent's form.
func (f Fault) agent() snmpagent.Fault {
	switch f.Kind {
	case FaultSilent:
		return snmpagent.Fault{Kind: snmpagent.FaultSilent}
	case FaultLate:
		return snmpagent.Fault{Kind: snmpagent.FaultLate, Delay: f.Delay}
	case FaultGarbage:
		if f.Garbage == "truncated" {
			return snmpagent.Fault{Kind: snmpagent.FaultTruncated}
		}
		return snmpagent.Fault{Kind: snmpagent.FaultGarbage}
	case FaultTruncated:
		return snmpagent.Fault{Kind: snmpagent.FaultTruncated}
	case FaultError:
		n, _ := parseStatus(f.Status)
		return snmpagent.Fault{Kind: snmpagent.FaultError, Status: gosnmp.SNMPError(n)}
	}
	return snmpagent.Fault{}
}
