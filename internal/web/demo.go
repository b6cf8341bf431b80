package web

import (
	"net/http"
)

// Demo is the simulated facility of `facgw run -demo`. Its endpoints exist
// only in demo mode, so a newcomer can make a fire alarm travel through the
// system from the dashboard; a production gateway has no simulator to
// drive. Methods must be safe for concurrent use.
type Demo interface {
	// DemoScenarios lists the scenarios and the devices each applies to.
	DemoScenarios() []DemoScenario
	// TriggerScenario switches device (every device the scenario applies
	// to when "") to the scenario. An unknown device or scenario, or one
	// that does not apply, is an error wrapping ErrInvalid.
	TriggerScenario(device, scenario string) ([]string, error)
}

// DemoScenario is a scenario of the simulator.
type DemoScenario struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	// Devices are the ids of the simulated devices it applies to.
	Devices []string `json:"devices"`
}

// ScenarioRequest is the body of POST /api/v1/demo/scenario.
type ScenarioRequest struct {
	Device   string `json:"device"`
	Scenario string `json:"scenario"`
}

func demoRoutes(mux *http.ServeMux, d Demo, opts Options) {
	mux.Handle("GET /api/v1/demo/scenarios", opts.require(RoleViewer, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sc := d.DemoScenarios()
		if sc == nil {
			sc = []DemoScenario{}
		}
		writeJSON(w, sc)
	})))
	mux.Handle("POST /api/v1/demo/scenario", opts.require(RoleOperator, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req ScenarioRequest
		if !readJSON(w, r, &req) {
			return
		}
		if req.Scenario == "" {
			writeError(w, http.StatusBadRequest, `"scenario" is required`)
			return
		}
		ids, err := d.TriggerScenario(req.Device, req.Scenario)
		if err != nil {
			writeErr(w, err)
			return
		}
		opts.logger().Info("demo: scenario triggered from the dashboard", "device", req.Device, "scenario", req.Scenario, "by", opts.who(r), "devices", ids)
		writeJSON(w, map[string]any{"devices": ids, "scenario": req.Scenario})
	})))
}
