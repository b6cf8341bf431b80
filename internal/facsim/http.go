package facsim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// Handler returns the HTTP control API. Serve it on loopback only: it
// switches scenarios and faults without authentication.
//
//	GET  /api/devices    devices with protocol, address, unit or SNMP agent (versions, users, engine id,
//	                     trap receivers), scenario, fault and the values served
//	GET  /api/scenarios  scenarios with description and the classes they apply to
//	GET  /api/faults     fault kinds with their parameter and the protocols they apply to
//	POST /api/scenario   {"device":"bms-rack1","scenario":"thermal-runaway"}; no device: every device of the scenario's classes
//	POST /api/fault      {"device":"crac-1","fault":"late","delay":"2s"}, "code":4 for exception, "garbage":"txid",
//	                     "status":"noSuchName" for an SNMP error; no device: every device the fault applies to
//	POST /api/traps      {"device":"ups-c","receivers":[{"addr":"127.0.0.1:10162","version":"2c","community":"public"}]}
//	                     replaces an SNMP device's trap receivers ([] stops its traps); no device: every SNMP device
//
// Unknown devices, scenarios, faults and fields are answered with 400 and
// a JSON {"error": "..."}; successful switches with the ids switched.
func (s *Sim) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/devices", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Devices())
	})
	mux.HandleFunc("GET /api/scenarios", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, Scenarios)
	})
	mux.HandleFunc("GET /api/faults", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, FaultKinds)
	})
	mux.HandleFunc("POST /api/scenario", s.postScenario)
	mux.HandleFunc("POST /api/fault", s.postFault)
	mux.HandleFunc("POST /api/traps", s.postTraps)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "facsim control API\n\n"+
			"GET  /api/devices\nGET  /api/scenarios\nGET  /api/faults\n"+
			"POST /api/scenario {\"device\":\"bms-rack1\",\"scenario\":\"thermal-runaway\"}\n"+
			"POST /api/fault    {\"device\":\"crac-1\",\"fault\":\"late\",\"delay\":\"2s\"}\n"+
			"POST /api/traps    {\"device\":\"ups-c\",\"receivers\":[{\"addr\":\"127.0.0.1:10162\",\"version\":\"2c\",\"community\":\"public\"}]}\n")
	})
	return mux
}

// scenarioRequest is the body of POST /api/scenario.
type scenarioRequest struct {
	Device   string `json:"device"`
	Scenario string `json:"scenario"`
}

// faultRequest is the body of POST /api/fault.
type faultRequest struct {
	Device  string `json:"device"`
	Fault   string `json:"fault"`
	Delay   string `json:"delay"`
	Code    *int   `json:"code"`
	Garbage string `json:"garbage"`
	Status  string `json:"status"`
}

// trapsRequest is the body of POST /api/traps.
type trapsRequest struct {
	Device    string          `json:"device"`
	Receivers *[]TrapReceiver `json:"receivers"`
}

// switchResponse answers a successful switch.
type switchResponse struct {
	Devices  []string `json:"devices"`
	Scenario string   `json:"scenario,omitempty"`
	Fault    string   `json:"fault,omitempty"`
}

func (s *Sim) postScenario(w http.ResponseWriter, r *http.Request) {
	var req scenarioRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if req.Scenario == "" {
		writeError(w, http.StatusBadRequest, errors.New(`facsim: "scenario" is required`))
		return
	}
	s.mu.Lock()
	ids, err := s.setScenario(req.Device, req.Scenario)
	s.mu.Unlock()
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	writeJSON(w, http.StatusOK, switchResponse{Devices: ids, Scenario: req.Scenario})
}

func (s *Sim) postFault(w http.ResponseWriter, r *http.Request) {
	var req faultRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if req.Fault == "" {
		writeError(w, http.StatusBadRequest, errors.New(`facsim: "fault" is required`))
		return
	}
	f, err := faultFromRequest(&req)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	s.mu.Lock()
	ids, err := s.applyFault(req.Device, f)
	s.mu.Unlock()
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	writeJSON(w, http.StatusOK, switchResponse{Devices: ids, Fault: f.String()})
}

func (s *Sim) postTraps(w http.ResponseWriter, r *http.Request) {
	var req trapsRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if req.Receivers == nil {
		writeError(w, http.StatusBadRequest, errors.New(`facsim: "receivers" is required ([] stops the traps)`))
		return
	}
	s.mu.Lock()
	ids, err := s.setTrapReceivers(req.Device, *req.Receivers)
	s.mu.Unlock()
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	writeJSON(w, http.StatusOK, switchResponse{Devices: ids})
}

// faultFromRequest checks that only the fault's own parameter is given
// and parses it.
func faultFromRequest(req *faultRequest) (Fault, error) {
	params := map[string]string{}
	if req.Delay != "" {
		params["delay"] = req.Delay
	}
	if req.Code != nil {
		params["code"] = strconv.Itoa(*req.Code)
	}
	if req.Garbage != "" {
		params["garbage"] = req.Garbage
	}
	if req.Status != "" {
		params["status"] = req.Status
	}
	own := map[string]string{FaultLate: "delay", FaultException: "code", FaultGarbage: "garbage", FaultError: "status"}[req.Fault]
	for name := range params {
		if name != own {
			if _, err := ParseFault(req.Fault, ""); err != nil {
				return Fault{}, err
			}
			return Fault{}, fmt.Errorf("facsim: fault %q takes no %q", req.Fault, name)
		}
	}
	if req.Code != nil && (*req.Code < 1 || *req.Code > 255) {
		return Fault{}, fmt.Errorf("facsim: fault exception wants a code 1..255, got %d", *req.Code)
	}
	if req.Delay != "" {
		if _, err := time.ParseDuration(req.Delay); err != nil {
			return Fault{}, fmt.Errorf("facsim: fault late wants a delay such as 2s, got %q", req.Delay)
		}
	}
	return ParseFault(req.Fault, params[own])
}

// decodeBody decodes a JSON body strictly: unknown fields are errors.
func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("facsim: bad request body: %w", err)
	}
	return nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, map[string]string{"error": err.Error()})
}
