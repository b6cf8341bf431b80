package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/facgw/facgw/internal/testpeer"
)

func TestDebVersion(t *testing.T) {
	for in, want := range map[string]string{
		"0.0.0~dev":          "0.0.0~dev",
		"v1.2.3":             "1.2.3",
		"1.2.3":              "1.2.3",
		"v1.2.3-4-gabc1234":  "1.2.3+4.gabc1234",
		"v1.3.0-rc1":         "1.3.0~rc1",
		"v1.3.0-rc1-2-g0f1e": "1.3.0~rc1+2.g0f1e",
		"396ad3d":            "0.0.0~git396ad3d",
		"abc1234":            "0.0.0~gitabc1234",
		"release-x":          "0.0.0~gitrelease~x",
	} {
		got, err := debVersion(in)
		if err != nil || got != want {
			t.Errorf("debVersion(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "1.0 beta", "1.0/x", "1:2"} {
		if got, err := debVersion(in); err == nil {
			t.Errorf("debVersion(%q) = %q, want an error", in, got)
		}
	}
}

// TestPackageIntegration builds facgw and its .deb, inspects the package
// with dpkg-deb, extracts it and validates the shipped config with the
// shipped binary.
func TestPackageIntegration(t *testing.T) {
	if testing.Short() {
		t.Skip("builds facgw and a .deb")
	}
	testpeer.Require(t, "dpkg", "/usr/bin/dpkg-deb")

	tmp := t.TempDir()
	bin := filepath.Join(tmp, "facgw")
	if out, err := exec.Command("go", "build", "-o", bin, "../facgw").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	deb, err := build(options{Version: "v1.2.3-4-gabc1234", Arch: "amd64", Bin: bin, Out: t.TempDir(), Root: "../.."})
	if err != nil {
		t.Fatal(err)
	}
	if got := filepath.Base(deb); got != "facgw_1.2.3+4.gabc1234_amd64.deb" {
		t.Errorf("package file name %s", got)
	}

	dpkg := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("/usr/bin/dpkg-deb", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("dpkg-deb %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}

	// Control fields.
	control := dpkg("-f", deb)
	for _, want := range []string{
		"Package: facgw\n",
		"Version: 1.2.3+4.gabc1234\n",
		"Architecture: amd64\n",
		"Maintainer: facgw developers <maintainers@facgw.invalid>\n",
		"Depends: adduser\n",
		"Homepage: https://github.com/facgw/facgw\n",
		"License: Apache-2.0\n",
		"Description: datacenter facility telemetry gateway\n",
	} {
		if !strings.Contains(control, want) {
			t.Errorf("control lacks %q:\n%s", want, control)
		}
	}
	info := dpkg("-I", deb)
	for _, s := range []string{"conffiles", "postinst", "prerm", "postrm"} {
		if !regexp.MustCompile(`\s` + s + `\s`).MatchString(info) {
			t.Errorf("dpkg-deb -I lists no %s:\n%s", s, info)
		}
	}
	if got := strings.TrimSpace(dpkg("-I", deb, "conffiles")); got != "/etc/facgw/facgw.yaml" {
		t.Errorf("conffiles = %q, want /etc/facgw/facgw.yaml", got)
	}

	// Maintainer scripts: what the brief says they do, and valid sh.
	scripts := map[string][]string{
		"postinst": {
			"adduser --system --group --home /var/lib/facgw --no-create-home",
			"adduser --quiet facgw dialout",
			"install -d -m 0750 -o facgw -g facgw /var/lib/facgw",
			"[ -d /run/systemd/system ]",
			"systemctl daemon-reload",
		},
		"prerm":  {"remove", "systemctl stop facgw.service", "[ -d /run/systemd/system ]"},
		"postrm": {"purge)", "rm -rf /var/lib/facgw /etc/facgw", "deluser --system"},
	}
	for name, wants := range scripts {
		text := dpkg("-I", deb, name)
		for _, w := range wants {
			if !strings.Contains(text, w) {
				t.Errorf("%s lacks %q", name, w)
			}
		}
		code := regexp.MustCompile(`(?m)^\s*#.*$`).ReplaceAllString(text, "")
		if name == "postinst" && regexp.MustCompile(`systemctl (start|enable|restart|reload-or-restart) `).MatchString(code) {
			t.Errorf("postinst starts or enables the service:\n%s", text)
		}
		if out, err := exec.Command("sh", "-n", "-c", text).CombinedOutput(); err != nil {
			t.Errorf("%s is not valid sh: %v\n%s", name, err, out)
		}
	}

	// Files and modes.
	modes := map[string]string{}
	for _, line := range strings.Split(dpkg("-c", deb), "\n") {
		f := strings.Fields(line)
		if len(f) >= 6 {
			modes[strings.TrimPrefix(f[len(f)-1], ".")] = f[0] + " " + f[1]
		}
	}
	for path, want := range map[string]string{
		"/usr/bin/facgw":                                                    "-rwxr-xr-x root/root",
		"/lib/systemd/system/facgw.service":                                 "-rw-r--r-- root/root",
		"/etc/facgw/facgw.yaml":                                             "-rw-r--r-- root/root",
		"/usr/share/doc/facgw/README.md":                                    "-rw-r--r-- root/root",
		"/usr/share/doc/facgw/copyright":                                    "-rw-r--r-- root/root",
		"/usr/share/doc/facgw/changelog.Debian.gz":                          "-rw-r--r-- root/root",
		"/usr/share/doc/facgw/docs/config.md":                               "-rw-r--r-- root/root",
		"/usr/share/facgw/firmware-profiles/ups/apc-smart-ups-snmp.yaml":    "-rw-r--r-- root/root",
		"/usr/share/facgw/firmware-profiles/battery/generic-liion-bms.yaml": "-rw-r--r-- root/root",
		"/usr/share/facgw/rules/fire.yaml":                                  "-rw-r--r-- root/root",
		"/usr/share/snmp/mibs/FACGW-MIB.txt":                                "-rw-r--r-- root/root",
	} {
		if got := modes[path]; got != want {
			t.Errorf("%s: got %q, want %q", path, got, want)
		}
	}
	for path := range modes {
		if strings.Contains(path, "testdata") || strings.HasSuffix(path, ".go") {
			t.Errorf("package ships %s", path)
		}
	}

	// Extract, then check the shipped config with the shipped binary, its
	// /etc/facgw paths pointed at a temp dir holding the secret files.
	root := t.TempDir()
	dpkg("-x", deb, root)
	for _, name := range []string{"facgw.service", "facgw.example.yaml"} {
		want, err := os.ReadFile(filepath.Join("../../deploy", name))
		if err != nil {
			t.Fatal(err)
		}
		dst := map[string]string{"facgw.service": "lib/systemd/system/facgw.service", "facgw.example.yaml": "etc/facgw/facgw.yaml"}[name]
		got, err := os.ReadFile(filepath.Join(root, dst))
		if err != nil || string(got) != string(want) {
			t.Errorf("%s differs from deploy/%s (err %v)", dst, name, err)
		}
	}
	etc := t.TempDir()
	for _, f := range []string{"snmp-auth.pass", "snmp-priv.pass", "mqtt-ca.pem"} {
		if err := os.WriteFile(filepath.Join(etc, f), []byte("example-passphrase\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(filepath.Join(root, "etc/facgw/facgw.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(etc, "facgw.yaml")
	if err := os.WriteFile(cfg, []byte(strings.ReplaceAll(string(data), "/etc/facgw/", etc+"/")), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(root, "usr/bin/facgw"), "check", "-config", cfg)
	cmd.Env = append(os.Environ(),
		"FACGW_MQTT_PASSWORD=example-secret",
		"FACGW_INFLUX_TOKEN=example-secret",
		"FACGW_SNMP_TRAP_COMMUNITY=example-secret",
		"FACGW_SNMP_COMMUNITY=example-secret",
	)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ok: site pangyo-b3, gateway gw-1") {
		t.Fatalf("extracted facgw check: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}
