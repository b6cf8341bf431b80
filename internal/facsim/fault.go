package facsim

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/facgw/facgw/internal/mbserver"
)

// Fault kinds a device can be switched to; see FaultKinds.
const (
	FaultNone      = "none"
	FaultSilent    = "silent"
	FaultLate      = "late"
	FaultException = "exception"
	FaultGarbage   = "garbage"
	FaultDrop      = "drop"
)

// DefaultLateDelay is the reply delay of a late fault given without one.
const DefaultLateDelay = 2 * time.Second

// FaultKind describes one fault kind and its parameter.
type FaultKind struct {
	Name        string `json:"name"`
	Param       string `json:"param,omitempty"`
	Description string `json:"description"`
}

// FaultKinds lists the device faults, in the order the API shows them.
var FaultKinds = []FaultKind{
	{FaultNone, "", "answer normally (clears a fault)"},
	{FaultSilent, "", "read requests and never answer; the connection stays open (the client times out)"},
	{FaultLate, "delay such as 2s (default 2s)", "answer every request after the delay"},
	{FaultException, "code such as 4 or 0x0B (default 4, server device failure)", "answer every request with a Modbus exception"},
	{FaultGarbage, "mode: cycle (default), random, length, bytecount, txid, truncated or funconly", "answer with a malformed frame"},
	{FaultDrop, "", "close the connection when a request for the device arrives"},
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
// for garbage. Kinds without a parameter reject one.
func ParseFault(kind, param string) (Fault, error) {
	kind, param = strings.TrimSpace(kind), strings.TrimSpace(param)
	f := Fault{Kind: kind}
	switch kind {
	case FaultNone, FaultSilent, FaultDrop:
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
	default:
		return Fault{}, fmt.Errorf("facsim: unknown fault %q (known: %s)", kind, faultNames())
	}
	return f, nil
}

func faultNames() string {
	names := make([]string, len(FaultKinds))
	for i, k := range FaultKinds {
		names[i] = k.Name
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
	}
	return mbserver.Fault{}
}
