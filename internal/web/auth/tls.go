package auth

import (
	"crypto/tls"
	"fmt"
)

// LoadTLS returns the server TLS configuration for a certificate and key
// in PEM files: TLS 1.2 at least (older versions have known weaknesses and
// every browser and curl of the last decade speaks 1.2), with Go's default
// cipher suites, which are all forward-secret AEAD ones for TLS 1.2.
//
// The files are read once; a renewed certificate takes effect when the
// gateway builds its server again (restart or reload).
func LoadTLS(certFile, keyFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("auth: tls certificate %s and key %s: %w", certFile, keyFile, err)
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
	}, nil
}
