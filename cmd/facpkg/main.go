// Command facpkg builds the Debian package of facgw with nfpm (as a library,
// so `make package` needs no external tool):
//
//	go run ./cmd/facpkg -bin bin/facgw -out dist
//
// writes dist/facgw_<version>_<arch>.deb. The package installs the binary,
// the systemd unit, the example config as /etc/facgw/facgw.yaml (a conffile
// that upgrades never overwrite), the docs and the firmware profiles (for
// reference: the binary embeds them), and the maintainer scripts of
// deploy/debian. It does not start the service: the config needs the site's
// details first.
package main

import (
	"cmp"
	"compress/gzip"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers the "deb" packager
	"github.com/goreleaser/nfpm/v2/files"
)

// options are the inputs of [build].
type options struct {
	Version string // Debian version, or a git describe output (normalised)
	Arch    string // Debian architecture, e.g. amd64, arm64
	Bin     string // the built facgw binary
	Out     string // output directory, created if missing
	Root    string // the repository root (deploy/, docs/, firmware-profiles/)
}

const (
	homepage   = "https://github.com/facgw/facgw"
	maintainer = "facgw developers"
	// maintainerEmail: Debian's changelog format needs an address and the
	// project has none yet; .invalid (RFC 2606) says so plainly. Bugs go
	// to the homepage's issues.
	maintainerEmail = "maintainers@facgw.invalid"
	license         = "Apache-2.0" // deploy/debian/copyright
	description     = `datacenter facility telemetry gateway
 facgw polls facility equipment (UPSes, battery management systems, CRAC
 units, PDUs, fire panels, switches) over Modbus TCP/RTU and SNMP, receives
 SNMP traps, and publishes the readings to MQTT brokers and InfluxDB, with
 on-disk outboxes that survive broker outages.

 The service is installed but not started: edit /etc/facgw/facgw.yaml for
 the site, validate it with "facgw check -config /etc/facgw/facgw.yaml",
 then run "systemctl enable --now facgw".`
)

func main() {
	var o options
	flag.StringVar(&o.Version, "version", defaultVersion(), "package version (default: git describe --tags --always, or 0.0.0~dev)")
	flag.StringVar(&o.Arch, "arch", "amd64", "Debian architecture of the binary")
	flag.StringVar(&o.Bin, "bin", "bin/facgw", "the built facgw binary")
	flag.StringVar(&o.Out, "out", "dist/", "output directory")
	flag.Parse()
	if flag.NArg() != 0 {
		fmt.Fprintf(os.Stderr, "facpkg: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}
	o.Root = "."
	path, err := build(o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "facpkg: %v\n", err)
		os.Exit(1)
	}
	fmt.Println(path)
}

// defaultVersion is `git describe --tags --always`, or 0.0.0~dev outside a
// git checkout.
func defaultVersion() string {
	out, err := exec.Command("git", "describe", "--tags", "--always").Output()
	if err != nil || strings.TrimSpace(string(out)) == "" {
		return "0.0.0~dev"
	}
	return strings.TrimSpace(string(out))
}

var (
	describeRe   = regexp.MustCompile(`^(.+)-([0-9]+)-g([0-9a-f]+)$`)
	commitRe     = regexp.MustCompile(`^[0-9a-f]{7,40}$`)
	debVersionRe = regexp.MustCompile(`^[0-9][A-Za-z0-9.+~]*$`)
)

// debVersion turns a tag or git describe output into a Debian upstream
// version: v1.2.3 -> 1.2.3, v1.2.3-4-gabc1234 -> 1.2.3+4.gabc1234 (sorts
// after 1.2.3), v1.3.0-rc1 -> 1.3.0~rc1 (sorts before 1.3.0), and a bare
// commit abc1234 (no tags yet) -> 0.0.0~gitabc1234.
func debVersion(v string) (string, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return "", errors.New("empty version")
	}
	if commitRe.MatchString(v) && strings.ContainsAny(v, "abcdef") {
		return "0.0.0~git" + v, nil
	}
	if m := describeRe.FindStringSubmatch(v); m != nil {
		v = m[1] + "+" + m[2] + ".g" + m[3]
	}
	if len(v) > 1 && v[0] == 'v' && v[1] >= '0' && v[1] <= '9' {
		v = v[1:]
	}
	v = strings.ReplaceAll(v, "-", "~")
	if v[0] < '0' || v[0] > '9' {
		v = "0.0.0~git" + v
	}
	if !debVersionRe.MatchString(v) {
		return "", fmt.Errorf("version %q is not a valid Debian version", v)
	}
	return v, nil
}

// build writes the .deb into o.Out and returns its path.
func build(o options) (string, error) {
	version, err := debVersion(o.Version)
	if err != nil {
		return "", err
	}
	if o.Arch == "" {
		return "", errors.New("empty architecture")
	}
	root, err := filepath.Abs(cmp.Or(o.Root, "."))
	if err != nil {
		return "", err
	}
	bin, err := filepath.Abs(o.Bin)
	if err != nil {
		return "", err
	}
	if fi, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("binary: %w (run make build first)", err)
	} else if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("binary %s is not a regular file", bin)
	}

	contents, err := packageContents(root, bin)
	if err != nil {
		return "", err
	}
	changelog, err := writeChangelog(version)
	if err != nil {
		return "", err
	}
	defer os.Remove(changelog)
	contents = append(contents, &files.Content{Source: changelog, Destination: "/usr/share/doc/facgw/changelog.Debian.gz",
		FileInfo: &files.ContentFileInfo{Owner: "root", Group: "root", Mode: 0o644}})
	scripts := filepath.Join(root, "deploy", "debian")
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		if _, err := os.Stat(filepath.Join(scripts, s)); err != nil {
			return "", fmt.Errorf("maintainer script: %w", err)
		}
	}

	info := &nfpm.Info{
		Name:          "facgw",
		Arch:          o.Arch,
		Platform:      "linux",
		Version:       version,
		VersionSchema: "none", // debVersion already made it a Debian version
		Section:       "net",
		Priority:      "optional",
		Maintainer:    maintainer + " <" + maintainerEmail + ">",
		Description:   description,
		Homepage:      homepage,
		License:       license,
		Overridables: nfpm.Overridables{
			Depends:  []string{"adduser"},
			Contents: contents,
			Umask:    0o022,
			Scripts: nfpm.Scripts{
				PostInstall: filepath.Join(scripts, "postinst"),
				PreRemove:   filepath.Join(scripts, "prerm"),
				PostRemove:  filepath.Join(scripts, "postrm"),
			},
			Deb: nfpm.Deb{
				Compression: "gzip",
				Fields:      map[string]string{"License": license},
			},
		},
	}
	info = nfpm.WithDefaults(info)
	if err := nfpm.PrepareForPackager(info, "deb"); err != nil {
		return "", err
	}
	pkg, err := nfpm.Get("deb")
	if err != nil {
		return "", err
	}

	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(o.Out, fmt.Sprintf("facgw_%s_%s.deb", version, o.Arch))
	tmp, err := os.CreateTemp(o.Out, ".facgw-*.deb.tmp")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if err := pkg.Package(info, tmp); err != nil {
		tmp.Close()
		return "", fmt.Errorf("deb: %w", err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", err
	}
	return path, nil
}

// writeChangelog writes a gzipped Debian changelog entry for version to a
// temp file and returns its path. The history itself is the git log; the
// entry dates from SOURCE_DATE_EPOCH when set, so a rebuild is identical.
func writeChangelog(version string) (string, error) {
	when := time.Now().UTC()
	if e := os.Getenv("SOURCE_DATE_EPOCH"); e != "" {
		sec, err := strconv.ParseInt(e, 10, 64)
		if err != nil {
			return "", fmt.Errorf("SOURCE_DATE_EPOCH %q: %w", e, err)
		}
		when = time.Unix(sec, 0).UTC()
	}
	text := fmt.Sprintf("facgw (%s) unstable; urgency=medium\n\n  * Built from the facgw repository; the changes are its git history\n    (%s).\n\n -- %s <%s>  %s\n",
		version, homepage, maintainer, maintainerEmail, when.Format(time.RFC1123Z))
	f, err := os.CreateTemp("", "facgw-changelog-*.gz")
	if err != nil {
		return "", err
	}
	zw, _ := gzip.NewWriterLevel(f, gzip.BestCompression)
	zw.ModTime = when
	_, err = io.WriteString(zw, text)
	if cerr := zw.Close(); err == nil {
		err = cerr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// packageContents lists the files of the package, sources as absolute paths.
func packageContents(root, bin string) (files.Contents, error) {
	file := func(src, dst string, mode os.FileMode) *files.Content {
		return &files.Content{
			Source:      src,
			Destination: dst,
			FileInfo:    &files.ContentFileInfo{Owner: "root", Group: "root", Mode: mode},
		}
	}
	c := files.Contents{
		file(bin, "/usr/bin/facgw", 0o755),
		file(filepath.Join(root, "deploy", "facgw.service"), "/lib/systemd/system/facgw.service", 0o644),
		{
			Source:      filepath.Join(root, "deploy", "facgw.example.yaml"),
			Destination: "/etc/facgw/facgw.yaml",
			Type:        files.TypeConfigNoReplace,
			// postinst makes it root:facgw 0640 once the group exists.
			FileInfo: &files.ContentFileInfo{Owner: "root", Group: "root", Mode: 0o644},
		},
		file(filepath.Join(root, "README.md"), "/usr/share/doc/facgw/README.md", 0o644),
		file(filepath.Join(root, "deploy", "debian", "copyright"), "/usr/share/doc/facgw/copyright", 0o644),
	}

	docs, err := glob(root, "docs/*.md")
	if err != nil {
		return nil, err
	}
	for _, d := range docs {
		c = append(c, file(filepath.Join(root, d), "/usr/share/doc/facgw/"+d, 0o644))
	}

	profiles, err := glob(root, "firmware-profiles/*/*.yaml")
	if err != nil {
		return nil, err
	}
	n := 0
	for _, p := range profiles {
		rel := strings.TrimPrefix(p, "firmware-profiles/")
		if strings.HasPrefix(rel, "testdata/") {
			continue
		}
		c = append(c, file(filepath.Join(root, p), "/usr/share/facgw/firmware-profiles/"+rel, 0o644))
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("no firmware profiles under %s", filepath.Join(root, "firmware-profiles"))
	}

	// The rule packs are compiled into the binary; the files are there to
	// read and to copy as the start of a site's own rules.
	packs, err := glob(root, "rules/packs/*.yaml")
	if err != nil {
		return nil, err
	}
	for _, p := range packs {
		c = append(c, file(filepath.Join(root, p), "/usr/share/facgw/rules/"+strings.TrimPrefix(p, "rules/packs/"), 0o644))
	}
	// net-snmp looks in /usr/share/snmp/mibs by default, so snmptrapd and
	// snmptranslate find facgw's notifications with -m +FACGW-MIB.
	c = append(c, file(filepath.Join(root, "deploy", "mib", "FACGW-MIB.txt"), "/usr/share/snmp/mibs/FACGW-MIB.txt", 0o644))
	return c, nil
}

// glob matches pattern (slash-separated, relative to root) and returns the
// matches relative to root, sorted, failing if there are none.
func glob(root, pattern string) ([]string, error) {
	m, err := filepath.Glob(filepath.Join(root, filepath.FromSlash(pattern)))
	if err != nil {
		return nil, err
	}
	if len(m) == 0 {
		return nil, fmt.Errorf("no files match %s under %s", pattern, root)
	}
	rel := make([]string, len(m))
	for i, p := range m {
		r, err := filepath.Rel(root, p)
		if err != nil {
			return nil, err
		}
		rel[i] = filepath.ToSlash(r)
	}
	sort.Strings(rel)
	return rel, nil
}
