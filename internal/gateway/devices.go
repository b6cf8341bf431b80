package gateway

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"time"

	mbdrv "github.com/facgw/facgw/drivers/modbus"
	snmpdrv "github.com/facgw/facgw/drivers/snmp"
	profiles "github.com/facgw/facgw/firmware-profiles"
	"github.com/facgw/facgw/internal/config"
	"github.com/facgw/facgw/pipeline"
)

// addDevice builds the driver for one configured device and its poll
// schedules, one per poll group.
func (g *Gateway) addDevice(dc *config.Device, reg *profiles.Registry) error {
	var prof *profiles.Profile
	groups := map[string]bool{}
	if dc.IsAuto() {
		// Groups are known only after identification: schedule every group
		// a profile of this protocol uses; unknown ones poll nothing.
		for _, p := range reg.List() {
			if p.Protocol == config.Protocol(dc.Transport) {
				for gname := range p.GroupNames() {
					groups[gname] = true
				}
			}
		}
	} else {
		var ok bool
		if prof, ok = reg.Get(dc.Profile); !ok {
			return fmt.Errorf("gateway: device %q: unknown profile %q", dc.ID, dc.Profile)
		}
		groups = prof.GroupNames()
	}
	var drv driver
	if dc.Transport == config.TransportSNMP {
		d, err := g.snmpDevice(dc, prof, reg)
		if err != nil {
			return err
		}
		drv = d
	} else {
		drv = mbdrv.NewDevice(mbdrv.DeviceConfig{ID: dc.ID, Unit: byte(dc.Unit), Profile: prof, Auto: dc.IsAuto(), Firmware: dc.Firmware,
			Registry: reg, Only: dc.Points, Retries: dc.Retries(), Backoff: dc.Backoff(), MaxBackoff: dc.MaxBackoff()}, g.modbusConn(dc))
	}
	g.devices = append(g.devices, &device{cfg: dc, drv: drv})
	names := make([]string, 0, len(groups))
	for n := range groups {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, gname := range names {
		iv := dc.Interval(gname)
		// A poll may take up to a timeout per retry of each read; bound it
		// by the larger of its interval and one full retry round so one
		// slow read does not lose the whole group.
		deadline := max(iv, dc.Timeout()*time.Duration(dc.Retries()+1))
		g.scheds = append(g.scheds, pipeline.Schedule{Source: drv, Group: gname, Interval: iv, Deadline: deadline})
	}
	return nil
}

// modbusConn returns the connection a Modbus device is polled over,
// shared by every device with the same address or serial port.
func (g *Gateway) modbusConn(dc *config.Device) *mbdrv.Conn {
	if conn := g.conns[dc.ConnKey()]; conn != nil {
		return conn
	}
	var conn *mbdrv.Conn
	if dc.Transport == config.TransportRTU {
		conn = mbdrv.NewRTUConn(mbdrv.SerialConfig{Port: dc.Serial.Port, Baud: dc.Serial.Baud, DataBits: dc.Serial.DataBits,
			Parity: dc.Serial.Parity, StopBits: dc.Serial.StopBits, Timeout: dc.Timeout()})
	} else {
		conn = mbdrv.NewTCPConn(mbdrv.TCPConfig{Address: dc.Address, Timeout: dc.Timeout()})
	}
	g.conns[dc.ConnKey()] = conn
	return conn
}

// snmpDevice builds an SNMP device: one session of its own, never shared
// (gosnmp #217/#417).
func (g *Gateway) snmpDevice(dc *config.Device, prof *profiles.Profile, reg *profiles.Registry) (*snmpdrv.Device, error) {
	host, portStr, err := net.SplitHostPort(dc.Address)
	if err != nil {
		return nil, fmt.Errorf("gateway: device %q: %w", dc.ID, err)
	}
	port, _ := strconv.Atoi(portStr)
	s := dc.SNMP
	cfg := snmpdrv.DeviceConfig{
		ID: dc.ID, Target: host, Port: uint16(port), Version: s.Version, Community: s.Community.Reveal(),
		V3: snmpdrv.V3Config{User: s.User, AuthProto: s.AuthProtocol, AuthPass: s.AuthPassword.Reveal(), PrivProto: s.PrivProtocol,
			PrivPass: s.PrivPassword.Reveal(), SecurityLevel: s.SecurityLevel, ContextName: s.Context},
		Timeout: dc.Timeout(), Retries: dc.Retries(), Backoff: dc.Backoff(), MaxBackoff: dc.MaxBackoff(),
		MaxVarbinds: s.MaxVarbinds, MaxRepetitions: s.MaxRepetitions,
		Profile: prof, Firmware: dc.Firmware, Auto: dc.IsAuto(), Registry: reg, Only: dc.Points,
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("gateway: device %q: %w", dc.ID, err)
	}
	return snmpdrv.NewDevice(cfg), nil
}
