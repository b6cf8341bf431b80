package config

import (
	"strings"
	"testing"
)

func TestHTTPHistory(t *testing.T) {
	tests := []struct {
		name, http string
		want       int
		errs       []string
	}{
		{"default", "  listen: 127.0.0.1:9000\n", DefaultHistory, nil},
		{"set", "  history: 120\n", 120, nil},
		{"zero keeps none", "  history: 0\n", 0, nil},
		{"the maximum", "  history: 100000\n", MaxHistory, nil},
		{"negative", "  history: -1\n", 0, []string{`x.yaml:6:3: http.history: history must be 0..100000 samples per point, got -1`}},
		{"too many", "  history: 100001\n", 0, []string{`x.yaml:6:3: http.history: history must be 0..100000 samples per point, got 100001`}},
		{"not a number", "  history: lots\n", 0, []string{"x.yaml:6:12: http.history"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("x.yaml", []byte(httpHead+"http:\n"+tt.http), testRegistry(t))
			if tt.errs == nil {
				if err != nil {
					t.Fatal(err)
				}
				if cfg.HTTP.History != tt.want {
					t.Errorf("got history %d, want %d", cfg.HTTP.History, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("got no error, want %q", tt.errs)
			}
			got := strings.Join(messages(err), "\n")
			for _, w := range tt.errs {
				if !strings.Contains(got, w) {
					t.Errorf("got errors:\n%s\nwant one containing %q", got, w)
				}
			}
		})
	}
}
