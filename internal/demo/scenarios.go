package demo

import (
	"fmt"
	"slices"

	"github.com/facgw/facgw/internal/facsim"
	"github.com/facgw/facgw/internal/web"
)

var _ web.Demo = (*Info)(nil)

// DemoScenarios implements web.Demo: the simulator's scenarios with the
// devices of the classes each applies to.
func (i *Info) DemoScenarios() []web.DemoScenario {
	devs := i.Sim.Devices()
	out := make([]web.DemoScenario, 0, len(facsim.Scenarios))
	for _, sc := range facsim.Scenarios {
		ds := web.DemoScenario{Name: sc.Name, Description: sc.Description, Devices: []string{}}
		for _, d := range devs {
			if len(sc.Classes) == 0 || slices.Contains(sc.Classes, d.Class) {
				ds.Devices = append(ds.Devices, d.ID)
			}
		}
		out = append(out, ds)
	}
	return out
}

// TriggerScenario implements web.Demo by switching the simulated device.
// The simulator's refusals (unknown device or scenario, a scenario of
// another class) are the request's fault.
func (i *Info) TriggerScenario(device, scenario string) ([]string, error) {
	if err := i.Sim.SetScenario(device, scenario); err != nil {
		return nil, fmt.Errorf("demo: %w: %w", web.ErrInvalid, err)
	}
	if device != "" {
		return []string{device}, nil
	}
	var ids []string
	for _, ds := range i.DemoScenarios() {
		if ds.Name == scenario {
			ids = ds.Devices
		}
	}
	return ids, nil
}
