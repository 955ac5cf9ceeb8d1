package netboot

import (
	"net"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

var testMAC = net.HardwareAddr{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}

const testBase = "http://10.9.0.1:6969"

func TestDecideEachArchitecture(t *testing.T) {
	script := testBase + "/netboot/boot.ipxe?mac=52%3A54%3A00%3A12%3A34%3A56"
	cases := []struct {
		name     string
		c        Client
		deployed bool
		want     Boot
	}{
		{"BIOS PXE", Client{Arch: iana.INTEL_X86PC, HasArch: true, PXE: true}, false, Boot{Kind: TFTPFile, File: BIOSFile, VendorClass: "PXEClient"}},
		{"UEFI x64 PXE (7)", Client{Arch: iana.EFI_X86_64, HasArch: true, PXE: true}, false, Boot{Kind: TFTPFile, File: EFIFile, VendorClass: "PXEClient"}},
		{"UEFI BC PXE (9)", Client{Arch: iana.EFI_BC, HasArch: true, PXE: true}, false, Boot{Kind: TFTPFile, File: EFIFile, VendorClass: "PXEClient"}},
		{"UEFI HTTP boot (16)", Client{Arch: iana.EFI_X86_64_HTTP, HasArch: true, HTTP: true}, false, Boot{Kind: HTTPURL, File: testBase + "/netboot/ipxe/snponly.efi", VendorClass: "HTTPClient"}},
		{"iPXE on BIOS", Client{Arch: iana.INTEL_X86PC, HasArch: true, PXE: true, IPXE: true}, false, Boot{Kind: HTTPURL, File: script, VendorClass: "PXEClient"}},
		{"iPXE on UEFI", Client{Arch: iana.EFI_X86_64, HasArch: true, PXE: true, IPXE: true}, false, Boot{Kind: HTTPURL, File: script, VendorClass: "PXEClient"}},
		{"deployed BIOS PXE: iPXE, whose script exits", Client{Arch: iana.INTEL_X86PC, HasArch: true, PXE: true}, true, Boot{Kind: TFTPFile, File: BIOSFile, Local: true, VendorClass: "PXEClient"}},
		{"deployed UEFI PXE: iPXE, whose script exits", Client{Arch: iana.EFI_X86_64, HasArch: true, PXE: true}, true, Boot{Kind: TFTPFile, File: EFIFile, Local: true, VendorClass: "PXEClient"}},
		{"deployed iPXE: the script that exits", Client{Arch: iana.INTEL_X86PC, HasArch: true, PXE: true, IPXE: true}, true, Boot{Kind: HTTPURL, File: script, Local: true, VendorClass: "PXEClient"}},
		{"not a boot client", Client{}, false, Boot{}},
		{"32-bit UEFI: nothing to give", Client{Arch: iana.EFI_IA32, HasArch: true, PXE: true}, false, Boot{}},
		{"PXE without an arch", Client{PXE: true}, false, Boot{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.c.MAC = testMAC
			if got := Decide(tc.c, testBase, tc.deployed); got != tc.want {
				t.Fatalf("Decide = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestClientOfReadsIPXEAndArch(t *testing.T) {
	c := ClientOf(testMAC, "PXEClient:Arch:00007:UNDI:003016", []string{"iPXE"}, []iana.Arch{iana.EFI_X86_64})
	if !c.PXE || !c.IPXE || !c.HasArch || c.Arch != iana.EFI_X86_64 || c.HTTP {
		t.Fatalf("ClientOf = %+v", c)
	}
	if c := ClientOf(testMAC, "HTTPClient:Arch:00016", nil, nil); !c.HTTP || c.PXE || c.HasArch {
		t.Fatalf("HTTP client read as %+v", c)
	}
}

func TestScript(t *testing.T) {
	s := Script(ScriptOptions{Base: testBase, Image: "lab", MAC: testMAC, Then: "poweroff"})
	for _, want := range []string{
		"#!ipxe\n",
		"kernel " + testBase + "/netboot/vmlinuz initrd=initrd.gz ",
		"ezio.server=" + testBase + " ", "ezio.image=lab ", "ezio.mac=52:54:00:12:34:56 ",
		"ezio.target=auto ", "ezio.then=poweroff ", "console=ttyS0",
		"initrd --name initrd.gz " + testBase + "/netboot/initrd.gz\n",
		"boot\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("script lacks %q:\n%s", want, s)
		}
	}
	args := ParseCmdline(strings.SplitN(strings.Split(s, "\n")[2], " ", 3)[2])
	if args[ArgServer] != testBase || args[ArgTarget] != "auto" || args[ArgMAC] != testMAC.String() {
		t.Errorf("the script's kernel line reads back as %v", args)
	}
	local := Script(ScriptOptions{Base: testBase, MAC: testMAC, Local: true})
	if !strings.Contains(local, "\nexit 1\n") || strings.Contains(local, "kernel") {
		t.Errorf("a deployed machine's script does not just exit:\n%s", local)
	}
	if s := Script(ScriptOptions{Base: testBase, MAC: testMAC, Target: "/dev/vdb"}); !strings.Contains(s, "ezio.target=/dev/vdb ") {
		t.Errorf("override target not on the kernel line:\n%s", s)
	}
}

func TestRecordsSurviveRestartAndRedeployForgets(t *testing.T) {
	dir := t.TempDir()
	r, err := OpenRecords(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	other := net.HardwareAddr{0x52, 0x54, 0, 0, 0, 9}
	if _, err := r.Update(testMAC, func(m *Machine) { m.State = StateVerified }); err != nil {
		t.Fatal(err)
	}
	r.Update(other, func(m *Machine) { m.State, m.Reason = StateFailed, "disk too small" })
	r2, err := OpenRecords(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	if !r2.Deployed(testMAC) {
		t.Fatal("a verified machine is not deployed after a restart")
	}
	if m, _ := r2.Get(other); r2.Deployed(other) || m.Reason != "disk too small" {
		t.Fatalf("failed machine after restart: %+v", m)
	}
	r3, err := OpenRecords(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	if r3.Deployed(testMAC) || len(r3.List()) != 0 {
		t.Fatal("--redeploy kept the records")
	}
	if _, err := os.Stat(filepath.Join(dir, RecordsFile)); !os.IsNotExist(err) {
		t.Fatalf("records file still there after forgetting: %v", err)
	}
}

func TestTargetsFile(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, TargetsFile), []byte("# room 2\n52-54-00-12-34-56 /dev/vdb\n52:54:00:00:00:09 auto\n"), 0o644)
	got, err := Targets(dir)
	if err != nil || got[testMAC.String()] != "/dev/vdb" || got["52:54:00:00:00:09"] != "auto" {
		t.Fatalf("Targets = %v, %v", got, err)
	}
	os.WriteFile(filepath.Join(dir, TargetsFile), []byte("52:54:00:12:34:56 sdb\n"), 0o644)
	if _, err := Targets(dir); err == nil {
		t.Fatal("a target that is no /dev/ path was accepted")
	}
}

func request(t *testing.T, typ dhcpv4.MessageType, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	t.Helper()
	m, err := dhcpv4.New(append([]dhcpv4.Modifier{dhcpv4.WithHwAddr(testMAC), dhcpv4.WithMessageType(typ)}, mods...)...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func pxeMods(arch iana.Arch) []dhcpv4.Modifier {
	return []dhcpv4.Modifier{
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00000:UNDI:002001")),
		dhcpv4.WithOption(dhcpv4.OptClientArch(arch)),
	}
}

func TestProxyDHCPAnswersOnlyBootClients(t *testing.T) {
	dir := t.TempDir()
	recs, _ := OpenRecords(dir, false)
	svc := &Service{Records: recs}
	server := netip.MustParseAddr("10.9.0.1")
	d := &DHCP{cfg: DHCPConfig{ServerIP: server, Prefix: netip.MustParsePrefix("10.9.0.0/24"), Answer: svc.Answer(testBase)}, leases: map[string]netip.Addr{}}

	if r := d.Reply(request(t, dhcpv4.MessageTypeDiscover), 67); r != nil {
		t.Fatalf("proxyDHCP answered a plain client: %v", r.Summary())
	}
	offer := d.Reply(request(t, dhcpv4.MessageTypeDiscover, pxeMods(iana.INTEL_X86PC)...), 67)
	if offer == nil || offer.MessageType() != dhcpv4.MessageTypeOffer {
		t.Fatalf("no proxy offer to a BIOS PXE client: %v", offer)
	}
	if !offer.YourIPAddr.IsUnspecified() || offer.BootFileName != BIOSFile || offer.ClassIdentifier() != "PXEClient" || !offer.ServerIPAddr.Equal(net.ParseIP("10.9.0.1")) {
		t.Fatalf("proxy offer: %s", offer.Summary())
	}
	if m, _ := recs.Get(testMAC); m.State != StateBooting || m.Arch != "BIOS" {
		t.Fatalf("machine row after its first request: %+v", m)
	}
	ack := d.Reply(request(t, dhcpv4.MessageTypeRequest, append(pxeMods(iana.INTEL_X86PC), dhcpv4.WithClientIP(net.ParseIP("10.9.0.50")))...), PXEPort)
	if ack == nil || ack.MessageType() != dhcpv4.MessageTypeAck || ack.BootFileName != BIOSFile {
		t.Fatalf("no PXE ack on port 4011: %v", ack)
	}
	ipxe := d.Reply(request(t, dhcpv4.MessageTypeDiscover, append(pxeMods(iana.INTEL_X86PC), dhcpv4.WithOption(dhcpv4.OptUserClass("iPXE")))...), 67)
	if ipxe == nil || ipxe.BootFileName != ScriptURL(testBase, testMAC) {
		t.Fatalf("iPXE not sent to its script: %v", ipxe)
	}
	// Verified: the machine is back; its iPXE will be told to exit.
	recs.Update(testMAC, func(m *Machine) { m.State = StateVerified })
	if r := d.Reply(request(t, dhcpv4.MessageTypeDiscover, pxeMods(iana.INTEL_X86PC)...), 67); r == nil || r.BootFileName != BIOSFile {
		t.Fatalf("a deployed machine's PXE got %v", r)
	}
	if m, _ := recs.Get(testMAC); m.State != StateVerified {
		t.Fatalf("deployed machine back at PXE: state %q, want verified until its script", m.State)
	}
	// Its iPXE fetches the script: exit to the disk, and the row says so.
	rec := httptest.NewRecorder()
	svc.Handler().ServeHTTP(rec, httptest.NewRequest("GET", ScriptURL(testBase, testMAC), nil))
	if body := rec.Body.String(); !strings.Contains(body, "\nexit 1\n") {
		t.Fatalf("deployed machine's script:\n%s", body)
	}
	if m, _ := recs.Get(testMAC); m.State != StateRebooted {
		t.Fatalf("deployed machine sent to its disk: state %q, want rebooted", m.State)
	}
	// Reports move the row; a new write forgets the verified deploy.
	body := `{"mac":"52:54:00:12:34:56","state":"deploying","phase":"deploying","bytes_done":5,"bytes_total":10}`
	rec = httptest.NewRecorder()
	svc.Handler().ServeHTTP(rec, httptest.NewRequest("POST", "/netboot/report", strings.NewReader(body)))
	if m, _ := recs.Get(testMAC); rec.Code != 204 || m.State != StateDeploying || m.BytesDone != 5 || recs.Deployed(testMAC) {
		t.Fatalf("after a deploying report (%d): %+v", rec.Code, m)
	}
	rec = httptest.NewRecorder()
	svc.Handler().ServeHTTP(rec, httptest.NewRequest("POST", "/netboot/report", strings.NewReader(`{"mac":"52:54:00:12:34:56","state":"rebooted"}`)))
	if rec.Code != 400 {
		t.Fatalf("a machine reported itself rebooted: %d", rec.Code)
	}
}

func TestFullDHCPLeasesAndAddsBootFile(t *testing.T) {
	recs, _ := OpenRecords(t.TempDir(), false)
	svc := &Service{Records: recs}
	rg, err := ParseRange("10.9.0.100-10.9.0.101")
	if err != nil {
		t.Fatal(err)
	}
	d := &DHCP{cfg: DHCPConfig{ServerIP: netip.MustParseAddr("10.9.0.1"), Prefix: netip.MustParsePrefix("10.9.0.0/24"), Range: &rg, Answer: svc.Answer(testBase)}, leases: map[string]netip.Addr{}}
	offer := d.Reply(request(t, dhcpv4.MessageTypeDiscover, pxeMods(iana.EFI_X86_64)...), 67)
	if offer == nil || !offer.YourIPAddr.Equal(net.ParseIP("10.9.0.100")) || offer.BootFileName != EFIFile || offer.SubnetMask().String() != "ffffff00" {
		t.Fatalf("full DHCP offer to UEFI: %v", offer)
	}
	plain := request(t, dhcpv4.MessageTypeRequest, dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.ParseIP("10.9.0.100"))))
	ack := d.Reply(plain, 67)
	if ack == nil || ack.MessageType() != dhcpv4.MessageTypeAck || ack.BootFileName != "" {
		t.Fatalf("plain client (the deploy environment) not leased its address without a boot file: %v", ack)
	}
	wrong := request(t, dhcpv4.MessageTypeRequest, dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.ParseIP("10.9.0.77"))))
	if r := d.Reply(wrong, 67); r == nil || r.MessageType() != dhcpv4.MessageTypeNak {
		t.Fatalf("a request for another address was not refused: %v", r)
	}
	if _, err := ParseRange("10.9.0.9-10.9.0.1"); err == nil {
		t.Fatal("a reversed range was accepted")
	}
}

func TestFindIPXENamesThePackage(t *testing.T) {
	err := FindIPXE(t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "package ipxe") {
		t.Fatalf("FindIPXE on an empty dir = %v", err)
	}
}
