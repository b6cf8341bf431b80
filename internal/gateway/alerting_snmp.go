package gateway

import (
	"github.com/facgw/facgw/internal/config"
	"github.com/facgw/facgw/pipeline/notify/snmpnotify"
)

// snmpSender builds the sender of one SNMP notification receiver.
func snmpSender(cfg *config.Config, s *config.SNMPNotify) (*snmpnotify.Sender, error) {
	return snmpnotify.New(snmpnotify.Options{
		Address: s.Address, Version: s.Version, Community: snmpnotify.Secret(s.Community.Reveal()), Inform: *s.Inform,
		User: s.User, SecurityLevel: s.SecurityLevel,
		AuthProtocol: s.AuthProtocol, AuthPassword: snmpnotify.Secret(s.AuthPassword.Reveal()),
		PrivProtocol: s.PrivProtocol, PrivPassword: snmpnotify.Secret(s.PrivPassword.Reveal()),
		EngineID: s.EngineID, Timeout: s.Timeout, Retries: s.Retries,
		Site: cfg.Site, Gateway: cfg.Gateway, EnterpriseOID: s.EnterpriseOID,
	})
}
