// Package machine makes a freshly deployed disk a machine of its own:
// its Linux root gets the hostname this client chose and an empty
// machine-id (systemd makes a new one at first boot), and the site's own
// finishing script runs with the deployed partitions mounted. It works
// only inside the deployed filesystems, never following a link out of
// them onto the machine doing the deploy.
package machine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"golang.org/x/sys/unix"
)

// Facts are what a hostname pattern and a script know of this client.
type Facts struct {
	MAC    string // aa:bb:cc:dd:ee:ff, of the interface that reaches the server
	IP     string // its IPv4 address
	Serial string // the target disk's serial number
	Number int    // the room counter the server handed out (0: none)
}

// placeholder matches {name} in a hostname pattern.
var placeholder = regexp.MustCompile(`\{([a-z]*)\}`)

// Placeholders are the names a hostname pattern may use.
var Placeholders = []string{"mac", "ip", "serial", "n"}

// CheckPattern refuses a pattern with an unknown placeholder, and says
// whether it needs the server's room counter.
func CheckPattern(pattern string) (needsNumber bool, err error) {
	if strings.TrimSpace(pattern) == "" {
		return false, errors.New("the hostname pattern is empty")
	}
	for _, m := range placeholder.FindAllStringSubmatch(pattern, -1) {
		switch m[1] {
		case "mac", "ip", "serial":
		case "n":
			needsNumber = true
		default:
			return false, fmt.Errorf("the hostname pattern %q has an unknown placeholder {%s}; known: {mac} {ip} {serial} {n}", pattern, m[1])
		}
	}
	// A pattern with only literal text still makes a valid name?
	if _, err := Expand(pattern, Facts{MAC: "00:00:00:00:00:00", IP: "0.0.0.0", Serial: "0", Number: 1}); err != nil {
		return false, err
	}
	return needsNumber, nil
}

// Expand fills the pattern's placeholders from f and makes the result a
// valid hostname: lower case, letters, digits and hyphens ({mac} without
// colons, {ip} with hyphens for dots), at most 63 characters.
func Expand(pattern string, f Facts) (string, error) {
	var missing []string
	name := placeholder.ReplaceAllStringFunc(pattern, func(s string) string {
		v := ""
		switch s[1 : len(s)-1] {
		case "mac":
			v = strings.ReplaceAll(f.MAC, ":", "")
		case "ip":
			v = strings.ReplaceAll(f.IP, ".", "-")
		case "serial":
			v = f.Serial
		case "n":
			if f.Number > 0 {
				v = fmt.Sprint(f.Number)
			}
		}
		if v == "" {
			missing = append(missing, s)
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("hostname pattern %q: this client has no value for %s", pattern, strings.Join(missing, ", "))
	}
	name = strings.ToLower(name)
	name = regexp.MustCompile(`[^a-z0-9-]+`).ReplaceAllString(name, "-")
	name = strings.Trim(name, "-")
	if name == "" || len(name) > 63 {
		return "", fmt.Errorf("hostname pattern %q gives %q: a hostname is 1 to 63 letters, digits and hyphens", pattern, name)
	}
	return name, nil
}

// Root is a filesystem of the deployed disk with an operating system.
type Root struct {
	Dir  string `json:"-"`
	Node string `json:"node"`
	OS   string `json:"os"`             // "linux" or "windows"
	Name string `json:"name,omitempty"` // os-release PRETTY_NAME
	Done string `json:"done"`           // what was done to it
}

// Identify says whether the filesystem mounted at dir is a Linux root
// (it has /etc/os-release) or a Windows one (/Windows/System32).
func Identify(dir string) (kind, name string) {
	if b, err := readInRoot(dir, "etc/os-release"); err == nil {
		name = "Linux"
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
				name = strings.Trim(v, `"'`)
			}
		}
		return "linux", name
	}
	for _, p := range []string{"Windows/System32", "WINDOWS/system32", "windows/system32"} {
		if st, err := os.Stat(filepath.Join(dir, p)); err == nil && st.IsDir() {
			return "windows", "Windows"
		}
	}
	return "", ""
}

// SetHostname writes a Linux root's /etc/hostname and the 127.0.1.1 line
// of its /etc/hosts, and empties its /etc/machine-id.
func SetHostname(root, name string) error {
	if err := writeInRoot(root, "etc/hostname", []byte(name+"\n")); err != nil {
		return err
	}
	hosts, err := readInRoot(root, "etc/hosts")
	if err != nil && !errors.Is(err, unix.ENOENT) {
		return err
	}
	if err := writeInRoot(root, "etc/hosts", []byte(hostsWith(string(hosts), name))); err != nil {
		return err
	}
	return writeInRoot(root, "etc/machine-id", nil)
}

// hostsWith is an /etc/hosts whose 127.0.1.1 line names name (added after
// the localhost line when there was none).
func hostsWith(hosts, name string) string {
	line := "127.0.1.1\t" + name
	lines := strings.Split(strings.TrimRight(hosts, "\n"), "\n")
	if hosts == "" {
		lines = []string{"127.0.0.1\tlocalhost"}
	}
	for i, l := range lines {
		if f := strings.Fields(l); len(f) > 0 && f[0] == "127.0.1.1" {
			lines[i] = line
			return strings.Join(lines, "\n") + "\n"
		}
	}
	at := 0
	for i, l := range lines {
		if f := strings.Fields(l); len(f) > 0 && f[0] == "127.0.0.1" {
			at = i + 1
		}
	}
	lines = append(lines[:at], append([]string{line}, lines[at:]...)...)
	return strings.Join(lines, "\n") + "\n"
}

// openInRoot opens rel inside root, resolving every link as if root were
// /: a link in the deployed system never leads onto this machine.
func openInRoot(root, rel string, flags int) (*os.File, error) {
	dir, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", root, err)
	}
	defer unix.Close(dir)
	how := &unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV}
	if flags&unix.O_CREAT != 0 {
		how.Mode = 0o644 // openat2 refuses a mode without O_CREAT
	}
	fd, err := unix.Openat2(dir, rel, how)
	if err != nil {
		return nil, fmt.Errorf("%s in %s: %w", rel, root, err)
	}
	return os.NewFile(uintptr(fd), filepath.Join(root, rel)), nil
}

func readInRoot(root, rel string) ([]byte, error) {
	f, err := openInRoot(root, rel, unix.O_RDONLY)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var b strings.Builder
	buf := make([]byte, 64<<10)
	for b.Len() < 1<<20 {
		n, err := f.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return []byte(b.String()), nil
}

func writeInRoot(root, rel string, data []byte) error {
	f, err := openInRoot(root, rel, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
