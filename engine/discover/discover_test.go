package discover

// The mDNS tests run each side in its own network namespace (lantest), as
// a child process started with `ip netns exec`: a goroutine cannot move
// into a namespace safely, so the test binary re-executes itself
// (EZD_CHILD names the part it plays). The independent implementation on
// the other side is Debian's python3-zeroconf.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"ezio/disks/disktest"
	"ezio/engine"
	"ezio/engine/discover/lantest"
	"ezio/engine/server"
)

const python = "/usr/bin/python3"

func TestMain(m *testing.M) {
	switch os.Getenv("EZD_CHILD") {
	case "":
		os.Exit(m.Run())
	case "announce":
		os.Exit(childAnnounce())
	case "browse":
		os.Exit(childBrowse())
	case "resolve":
		os.Exit(childResolve())
	}
	fmt.Fprintln(os.Stderr, "unknown EZD_CHILD")
	os.Exit(2)
}

// childAnnounce announces the Info in EZD_INFO, says "ready" and keeps
// announcing until its standard input closes (at most a minute).
func childAnnounce() int {
	var in Info
	if err := json.Unmarshal([]byte(os.Getenv("EZD_INFO")), &in); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stop, err := Announce(ctx, in)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer stop()
	fmt.Println("ready")
	go func() { io.Copy(io.Discard, os.Stdin); cancel() }()
	<-ctx.Done()
	return 0
}

func childBrowse() int {
	ss, err := Browse(context.Background(), 3*time.Second)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	json.NewEncoder(os.Stdout).Encode(ss)
	return 0
}

// childResolve prints {"url","image","error","no_server","ambiguous"}.
func childResolve() int {
	base, image, err := Resolve(context.Background(), os.Getenv("EZD_SPEC"), 3*time.Second)
	out := map[string]any{"url": base, "image": image}
	if err != nil {
		var amb *AmbiguousError
		out["error"] = err.Error()
		out["no_server"] = errors.Is(err, ErrNoServer)
		out["ambiguous"] = errors.As(err, &amb)
	}
	json.NewEncoder(os.Stdout).Encode(out)
	return 0
}

// startAnnouncer runs Announce inside ns until the test ends.
func startAnnouncer(t *testing.T, ns *lantest.NS, in Info) {
	t.Helper()
	b, _ := json.Marshal(in)
	cmd := ns.Command(context.Background(), os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "EZD_CHILD=announce", "EZD_INFO="+string(b))
	startReady(t, cmd)
}

// startReady starts cmd and waits for it to print "ready"; closing its
// standard input at the end of the test stops it.
func startReady(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	t.Cleanup(func() {
		stdin.Close()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		ok := false
		for sc.Scan() {
			if sc.Text() == "ready" && !ok {
				ok = true
				ready <- true
			}
		}
		if !ok {
			ready <- false
		}
		cmd.Wait()
		close(exited)
	}()
	select {
	case ok := <-ready:
		if !ok {
			<-exited
			t.Fatalf("%v ended before it was ready: %s", cmd.Args, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%v not ready after 30 s: %s", cmd.Args, stderr.String())
	}
}

// runChild runs the test binary as child mode in ns and returns its output.
func runChild(t *testing.T, ns *lantest.NS, mode string, env ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := ns.Command(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), "EZD_CHILD="+mode), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s in %s: %v\n%s", mode, ns.Name, err, stderr.String())
	}
	return out
}

func browseIn(t *testing.T, ns *lantest.NS) []Server {
	t.Helper()
	var ss []Server
	out := runChild(t, ns, "browse")
	if err := json.Unmarshal(out, &ss); err != nil {
		t.Fatalf("browse output %q: %v", out, err)
	}
	return ss
}

func resolveIn(t *testing.T, ns *lantest.NS, spec string) map[string]any {
	t.Helper()
	var r map[string]any
	out := runChild(t, ns, "resolve", "EZD_SPEC="+spec)
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("resolve output %q: %v", out, err)
	}
	return r
}

const pyBrowse = `
import json, socket, sys, time
from zeroconf import Zeroconf, ServiceBrowser, IPVersion
TYPE = "_ezio._tcp.local."
zc = Zeroconf(ip_version=IPVersion.V4Only)
names = []
class L:
    def add_service(self, zc, t, name): names.append(name)
    def remove_service(self, zc, t, name): pass
    def update_service(self, zc, t, name): pass
ServiceBrowser(zc, TYPE, L())
deadline = time.time() + 15
while not names and time.time() < deadline:
    time.sleep(0.1)
out = []
for name in names:
    info = zc.get_service_info(TYPE, name, timeout=5000)
    if info is None:
        out.append({"name": name, "resolved": False})
        continue
    out.append({
        "name": name, "resolved": True, "port": info.port, "server": info.server,
        "addresses": [socket.inet_ntoa(a) for a in info.addresses],
        "properties": {k.decode(): (v.decode() if v is not None else None) for k, v in info.properties.items()},
    })
zc.close()
print(json.dumps(out))
`

const pyRegister = `
import socket, sys
from zeroconf import Zeroconf, ServiceInfo, IPVersion
ip, port, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
zc = Zeroconf(ip_version=IPVersion.V4Only)
info = ServiceInfo("_ezio._tcp.local.", name + "._ezio._tcp.local.",
    addresses=[socket.inet_aton(ip)], port=port, server="pyseeder.local.",
    properties={"version": "9.9.9", "url": "http://%s:%d" % (ip, port), "images": "sda1,sda2"})
zc.register_service(info)
print("ready", flush=True)
sys.stdin.read()
zc.unregister_service(info)
zc.close()
`

func writeScript(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func needZeroconf(t *testing.T) {
	t.Helper()
	lantest.Need(t, python+":python3")
	if err := exec.Command(python, "-c", "import zeroconf").Run(); err != nil {
		disktest.SkipOrFail(t, "this test needs Debian's python3-zeroconf for %s: %v", python, err)
	}
}

// An independent implementation browses for our service and resolves it
// with its TXT records.
func TestPythonZeroconfResolvesAnnounce(t *testing.T) {
	needZeroconf(t)
	a, b := lantest.Pair(t)
	images := []string{"sda1", "sda2", "win11"}
	name := fmt.Sprintf("ezio on test %d", os.Getpid())
	// An unspecified host: announce on every interface with its own address.
	startAnnouncer(t, a, Info{Name: name, BaseURL: "http://0.0.0.0:7001", Images: images, Version: "1.2.3"})

	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	cmd := b.Command(ctx, python, writeScript(t, "browse.py", pyBrowse))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python browse: %v\n%s", err, stderr.String())
	}
	var got []struct {
		Name       string
		Resolved   bool
		Port       int
		Server     string
		Addresses  []string
		Properties map[string]string
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("python output %q: %v", out, err)
	}
	if len(got) != 1 {
		t.Fatalf("python-zeroconf found %d services, want 1: %s", len(got), out)
	}
	g := got[0]
	seederIP := a.Addrs[firstKey(a.Addrs)]
	if g.Name != name+"._ezio._tcp.local." || !g.Resolved || g.Port != 7001 {
		t.Errorf("found %+v, want %q resolved on port 7001", g, name)
	}
	if !reflect.DeepEqual(g.Addresses, []string{seederIP}) {
		t.Errorf("addresses %v, want [%s]", g.Addresses, seederIP)
	}
	want := map[string]string{"version": "1.2.3", "url": "http://" + seederIP + ":7001", "images": "sda1,sda2,win11"}
	if !reflect.DeepEqual(g.Properties, want) {
		t.Errorf("TXT %v, want %v", g.Properties, want)
	}
}

// Our browser finds a service that the independent implementation
// registers, and reads its TXT records.
func TestBrowseFindsPythonZeroconf(t *testing.T) {
	needZeroconf(t)
	a, b := lantest.Pair(t)
	ip := a.Addrs[firstKey(a.Addrs)]
	cmd := a.Command(context.Background(), python, writeScript(t, "register.py", pyRegister), ip, "7002", "py seeder")
	startReady(t, cmd)

	ss := browseIn(t, b)
	if len(ss) != 1 {
		t.Fatalf("found %d servers, want 1: %+v", len(ss), ss)
	}
	s := ss[0]
	want := Server{
		Name: "py seeder", BaseURL: "http://" + ip + ":7002", Version: "9.9.9",
		Images: []string{"sda1", "sda2"}, Host: "pyseeder.local", Addrs: []string{ip},
		Interface: firstKey(b.Addrs),
	}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("found\n %+v\nwant\n %+v", s, want)
	}
}

// Resolve across two machines: by image name, "auto" with several images
// refused, an image nobody has, and no server at all.
func TestResolveInNamespaces(t *testing.T) {
	lantest.Need(t)
	a, b := lantest.Pair(t)
	ip := a.Addrs[firstKey(a.Addrs)]
	startAnnouncer(t, a, Info{BaseURL: "http://" + ip + ":7003", Images: []string{"sda1", "sda2"}})

	r := resolveIn(t, b, "auto:sda2")
	if r["url"] != "http://"+ip+":7003" || r["image"] != "sda2" || r["error"] != nil {
		t.Errorf("auto:sda2 = %v", r)
	}
	r = resolveIn(t, b, "auto:nope")
	if e, _ := r["error"].(string); !strings.Contains(e, "no server on this network offers the image nope") || r["no_server"] == true {
		t.Errorf("auto:nope = %v", r)
	}
	// "auto" with two images asks the server's /images.json, which is not
	// running here: unreachable, never a guess.
	r = resolveIn(t, b, "auto")
	if r["error"] == nil || r["url"] != "" {
		t.Errorf("auto with two images and no HTTP server = %v", r)
	}

	_, d := lantest.Pair(t)
	r = resolveIn(t, d, "auto")
	if r["no_server"] != true || r["error"] != ErrNoServer.Error() {
		t.Errorf("auto with nobody announcing = %v", r)
	}
}

// Two seeders offering the same image: auto:NAME refuses and names both.
func TestResolveRefusesTwoServers(t *testing.T) {
	lantest.Need(t)
	// The client has a cable to each seeder: it searches both networks.
	s1, s2, client := lantest.New(t), lantest.New(t), lantest.New(t)
	lantest.Link(t, s1, client, "10.77.2")
	lantest.Link(t, s2, client, "10.77.3")
	startAnnouncer(t, s1, Info{Name: "ezio one", BaseURL: "http://10.77.2.1:7004", Images: []string{"sda1"}})
	startAnnouncer(t, s2, Info{Name: "ezio two", BaseURL: "http://10.77.3.1:7004", Images: []string{"sda1", "sdb1"}})

	ss := browseIn(t, client)
	if len(ss) != 2 || ss[0].Name != "ezio one" || ss[1].Name != "ezio two" {
		t.Fatalf("browse found %+v, want ezio one and ezio two", ss)
	}
	r := resolveIn(t, client, "auto:sda1")
	e, _ := r["error"].(string)
	if r["ambiguous"] != true || !strings.Contains(e, "ezio one at http://10.77.2.1:7004") || !strings.Contains(e, "ezio two at http://10.77.3.1:7004") {
		t.Errorf("auto:sda1 offered twice = %v", r)
	}
	r = resolveIn(t, client, "auto:sdb1")
	if r["url"] != "http://10.77.3.1:7004" || r["image"] != "sdb1" {
		t.Errorf("auto:sdb1 offered once = %v", r)
	}
}

// A seeder bound to one address answers only on that address's network.
func TestAnnounceOnlyOnServedInterface(t *testing.T) {
	lantest.Need(t)
	seeder, lab, office := lantest.TwoNetworks(t)
	// As ezio seed does: the server's own URL says 127.0.0.1, the address
	// it was told to listen on says which network.
	startAnnouncer(t, seeder, Info{Name: "lab seeder", BaseURL: "http://127.0.0.1:7005", Listen: "10.77.4.1:7005", Images: []string{"sda1"}})

	if ss := browseIn(t, lab); len(ss) != 1 || ss[0].BaseURL != "http://10.77.4.1:7005" {
		t.Errorf("lab found %+v, want the seeder at 10.77.4.1", ss)
	}
	if ss := browseIn(t, office); len(ss) != 0 {
		t.Errorf("office found %+v, want nothing: the seeder serves the lab only", ss)
	}
}

// A seeder listening on every address answers on each of its networks
// with the URL that works there.
func TestAnnounceEverywhereGivesEachNetworkItsURL(t *testing.T) {
	lantest.Need(t)
	seeder, lab, office := lantest.TwoNetworks(t)
	startAnnouncer(t, seeder, Info{Name: "two-armed", BaseURL: "http://127.0.0.1:7006", Listen: ":7006", Images: []string{"sda1"}})

	for ns, want := range map[*lantest.NS]string{lab: "http://10.77.4.1:7006", office: "http://10.77.5.1:7006"} {
		ss := browseIn(t, ns)
		if len(ss) != 1 || ss[0].BaseURL != want || ss[0].Name != "two-armed" {
			t.Errorf("%s found %+v, want two-armed at %s only", ns.Name, ss, want)
		}
	}
}

// FetchTorrent reads every form of source the wizard accepts, here from
// a real ezio server on loopback.
func TestFetchTorrentForms(t *testing.T) {
	srv, err := server.NewServer("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	dir := t.TempDir()
	img := filepath.Join(dir, "img")
	if err := os.WriteFile(img, []byte(strings.Repeat("ezio", 100000)), 0o644); err != nil {
		t.Fatal(err)
	}
	mi, err := engine.CreateTorrent(context.Background(), img, engine.CreateOptions{Name: "sda1", PieceLength: 1 << 16})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.AddImage(mi, 1); err != nil {
		t.Fatal(err)
	}
	want := mi.HashInfoBytes()
	_, port, _ := net.SplitHostPort(srv.Addr())
	tf := filepath.Join(dir, "sda1.torrent")
	f, _ := os.Create(tf)
	mi.Write(f)
	f.Close()
	for _, src := range []string{
		"127.0.0.1:" + port,
		"http://127.0.0.1:" + port + "/",
		"http://127.0.0.1:" + port + "/torrents/sda1.torrent",
		tf,
	} {
		ft, err := FetchTorrent(context.Background(), src, time.Second)
		if err != nil {
			t.Errorf("%s: %v", src, err)
			continue
		}
		if ft.MetaInfo.HashInfoBytes() != want {
			t.Errorf("%s: wrong torrent", src)
		}
	}
	// Nothing listens there: unreachable, for a retry (exit 3).
	hs := httptest.NewServer(http.NotFoundHandler())
	addr := hs.Listener.Addr().String()
	hs.Close()
	if _, err := FetchTorrent(context.Background(), addr, time.Second); err == nil || !Unreachable(err) {
		t.Errorf("closed port: %v, want an unreachable error", err)
	}
	if _, err := FetchTorrent(context.Background(), filepath.Join(dir, "missing.torrent"), time.Second); err == nil || Unreachable(err) {
		t.Errorf("missing file: %v, want a refusal", err)
	}
}

func TestAnnounceRefusesLoopbackListen(t *testing.T) {
	_, err := Announce(context.Background(), Info{BaseURL: "http://127.0.0.1:6969", Listen: "127.0.0.1:6969"})
	if err == nil || !strings.Contains(err.Error(), "no other machine can reach") {
		t.Errorf("announce of a loopback server: %v", err)
	}
}

func TestTXTKeepsToOneString(t *testing.T) {
	var images []string
	for i := 0; i < 40; i++ {
		images = append(images, fmt.Sprintf("image-number-%02d", i))
	}
	txt := TXT("0.1.0", "http://10.0.0.1:6969", images)
	if txt[0] != "version=0.1.0" || txt[1] != "url=http://10.0.0.1:6969" {
		t.Fatalf("txt = %q", txt)
	}
	list, ok := strings.CutPrefix(txt[2], "images=")
	if !ok || len(txt[2]) > 255 {
		t.Fatalf("images string %d bytes: %q", len(txt[2]), txt[2])
	}
	kept := strings.Split(list, ",")
	if !reflect.DeepEqual(kept, images[:len(kept)]) {
		t.Errorf("kept %q, want a prefix of the names", kept)
	}
	if len(txt) != 4 || txt[3] != fmt.Sprintf("images_more=%d", 40-len(kept)) {
		t.Errorf("txt tail %q, want images_more=%d", txt[3:], 40-len(kept))
	}
	// A next name would not have fitted.
	if len(txt[2])+1+len(images[len(kept)]) <= 255 {
		t.Errorf("stopped early at %d bytes", len(txt[2]))
	}
	if got := TXT("v", "u", []string{"a", "b"}); len(got) != 3 || got[2] != "images=a,b" {
		t.Errorf("short list: %q", got)
	}
}

func TestLabelEscaping(t *testing.T) {
	for _, s := range []string{"ezio on lab-pc", "a.b\\c (d); @e \"f\"", "caf\xc3\xa9"} {
		if got := unescapeLabel(escapeLabel(s)); got != s {
			t.Errorf("round trip of %q gave %q (escaped %q)", s, got, escapeLabel(s))
		}
	}
	if got := unescapeLabel(`ezio\032on\ x`); got != "ezio on x" {
		t.Errorf("decimal escapes: %q", got)
	}
}

func firstKey(m map[string]string) string {
	for k := range m {
		return k
	}
	return ""
}
