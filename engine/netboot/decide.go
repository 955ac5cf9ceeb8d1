// Package netboot boots a room of machines over the network into ezio's
// deploy environment: the decision of what a machine boots (this file), the
// per-machine records, the iPXE script, proxy and full DHCP, TFTP for the
// first stage and the HTTP routes for everything after it.
package netboot

import (
	"net"
	"net/url"
	"strings"

	"github.com/insomniacslk/dhcp/iana"
)

// Client is what a DHCP request tells about a machine that wants to boot.
type Client struct {
	MAC net.HardwareAddr
	// Arch is the client system architecture (option 93); HasArch is
	// false when the request carried none (not a PXE firmware).
	Arch    iana.Arch
	HasArch bool
	// PXE: the vendor class (option 60) starts with "PXEClient"; HTTP:
	// with "HTTPClient" (UEFI HTTP boot).
	PXE, HTTP bool
	// IPXE: the user class (option 77) is "iPXE": the first stage runs
	// already and can fetch its script over HTTP.
	IPXE bool
}

// Kind is what a boot answer hands out.
type Kind int

const (
	// NoBoot: no offer at all (not a network-boot client, an
	// architecture we have nothing for, or a machine sent to its disk
	// that cannot be told so).
	NoBoot Kind = iota
	// TFTPFile: the boot file name of iPXE's first stage, over TFTP.
	TFTPFile
	// HTTPURL: a URL the client fetches over HTTP (an iPXE script, or
	// the EFI iPXE binary for UEFI HTTP boot).
	HTTPURL
)

// Boot is the answer for one client.
type Boot struct {
	Kind Kind
	File string // TFTP file name or URL
	// Local: the machine has a verified deploy and goes to its own disk.
	Local bool
	// VendorClass to send back (option 60): "PXEClient" or "HTTPClient".
	VendorClass string
}

// First-stage files of Debian's ipxe package.
const (
	BIOSFile = "undionly.kpxe"
	EFIFile  = "snponly.efi"
)

// Architectures (RFC 4578 and IANA's registry) that ezio boots.
const (
	archBIOS      = iana.INTEL_X86PC
	archEFIIA32   = iana.EFI_IA32
	archEFIx64    = iana.EFI_X86_64
	archEFIBC     = iana.EFI_BC
	archHTTPx64   = iana.Arch(16) // x64 UEFI HTTP boot
	archHTTPIA32  = iana.Arch(15)
	scriptPath    = "/netboot/boot.ipxe"
	httpIPXEPath  = "/netboot/ipxe/"
	vendorPXE     = "PXEClient"
	vendorHTTPCli = "HTTPClient"
)

// ScriptURL is where a machine's iPXE script is, on the server at base
// (http://HOST:PORT).
func ScriptURL(base string, mac net.HardwareAddr) string {
	return base + scriptPath + "?mac=" + url.QueryEscape(mac.String())
}

// Decide says what the client boots. base is the HTTP server's URL as the
// client reaches it; deployed is whether the machine has a verified
// deploy on record (it then goes to its own disk). A pure function of
// its inputs, so that each case is a unit test.
func Decide(c Client, base string, deployed bool) Boot {
	if !c.PXE && !c.HTTP && !c.IPXE {
		return Boot{}
	}
	vendor := vendorPXE
	if c.HTTP {
		vendor = vendorHTTPCli
	}
	if c.IPXE {
		// Its script says "exit 1" to a deployed machine: the firmware
		// then tries the next boot device, the disk.
		return Boot{Kind: HTTPURL, File: ScriptURL(base, c.MAC), Local: deployed, VendorClass: vendor}
	}
	if !c.HasArch {
		return Boot{}
	}
	// A deployed machine gets iPXE too, whose script then exits: the
	// firmware moves on to the disk at once, where a firmware that hears
	// no offer would wait out its PXE timeouts first (minutes under UEFI).
	switch c.Arch {
	case archBIOS:
		return Boot{Kind: TFTPFile, File: BIOSFile, VendorClass: vendor, Local: deployed}
	case archEFIx64, archEFIBC:
		return Boot{Kind: TFTPFile, File: EFIFile, VendorClass: vendor, Local: deployed}
	case archHTTPx64:
		return Boot{Kind: HTTPURL, File: base + httpIPXEPath + EFIFile, VendorClass: vendorHTTPCli, Local: deployed}
	}
	// 32-bit UEFI and anything else: Debian ships no first stage for it.
	return Boot{}
}

// ClientOf reads a Client out of the fields of a DHCP request.
func ClientOf(mac net.HardwareAddr, vendorClass string, userClasses []string, archs []iana.Arch) Client {
	c := Client{MAC: mac}
	c.PXE = strings.HasPrefix(vendorClass, vendorPXE)
	c.HTTP = strings.HasPrefix(vendorClass, vendorHTTPCli)
	for _, u := range userClasses {
		if u == "iPXE" {
			c.IPXE = true
		}
	}
	if len(archs) > 0 {
		c.Arch, c.HasArch = archs[0], true
	}
	return c
}

// ArchName is a short name of an architecture for the status page.
func ArchName(c Client) string {
	switch {
	case !c.HasArch && c.IPXE:
		return "iPXE"
	case !c.HasArch:
		return ""
	case c.Arch == archBIOS:
		return "BIOS"
	case c.Arch == archEFIx64 || c.Arch == archEFIBC:
		return "UEFI"
	case c.Arch == archHTTPx64 || c.Arch == archHTTPIA32:
		return "UEFI HTTP"
	case c.Arch == archEFIIA32:
		return "UEFI 32-bit"
	}
	return c.Arch.String()
}
