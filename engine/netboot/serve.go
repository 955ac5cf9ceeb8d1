package netboot

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/pin/tftp/v3"
)

// IPXEDir is where Debian's ipxe package puts iPXE's first stages.
var IPXEDir = "/usr/lib/ipxe"

// FindIPXE checks that the first-stage files are there, naming the
// Debian package that has them when they are not.
func FindIPXE(dir string) error {
	for _, f := range []string{BIOSFile, EFIFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			return fmt.Errorf("network boot needs iPXE's %s in %s: install the package ipxe (apt-get install ipxe)", f, dir)
		}
	}
	return nil
}

// Service is the server side of network boot for one disk image: the
// records, the decision, and the TFTP and HTTP files.
type Service struct {
	Records *Records
	Image   string // the disk image's name
	// ImageDir holds TargetsFile; EnvDir holds the deploy environment's
	// vmlinuz and initrd.gz; IPXEDir the first stages.
	ImageDir, EnvDir, IPXEDir string
	Then                      string // "reboot" or "poweroff"
	// Target is every machine's target disk ("" or "auto": the one
	// internal disk that fits); TargetsFile overrides it per MAC.
	Target string
	// Allowed says whether an address may boot (`--allow`); nil: all.
	Allowed func(netip.Addr) bool
	Logger  *slog.Logger
}

func (s *Service) log() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

func (s *Service) allowed(a netip.Addr) bool {
	return s.Allowed == nil || !a.IsValid() || s.Allowed(a.Unmap())
}

// Answer decides for a client seen by DHCP and records it: base is the
// HTTP server's URL on the interface the request came in on.
func (s *Service) Answer(base string) func(c Client, ip netip.Addr) Boot {
	return func(c Client, ip netip.Addr) Boot {
		if ip.IsValid() && !s.allowed(ip) {
			return Boot{}
		}
		deployed := s.Records.Deployed(c.MAC)
		b := Decide(c, base, deployed)
		if b.Kind == NoBoot && !b.Local {
			return b
		}
		_, err := s.Records.Update(c.MAC, func(m *Machine) {
			if a := ArchName(c); a != "" {
				m.Arch = a
			}
			if ip.IsValid() {
				m.IP = ip.String()
			}
			// A deployed machine keeps its state until its iPXE fetches the
			// script that sends it to its disk (script): "rebooted".
			if !deployed {
				m.State, m.Reason = StateBooting, ""
			}
		})
		if err != nil {
			s.log().Warn("netboot records not saved", "err", err)
		}
		return b
	}
}

// ServeTFTP serves the first stages over TFTP on addr (host:69).
func (s *Service) ServeTFTP(addr string) (stop func(), err error) {
	srv := tftp.NewServer(func(name string, rf io.ReaderFrom) error {
		if ot, ok := rf.(tftp.OutgoingTransfer); ok {
			ra := ot.RemoteAddr()
			if a, ok := netip.AddrFromSlice(ra.IP); ok && !s.allowed(a) {
				return errors.New("not allowed")
			}
		}
		f, err := s.firstStage(name)
		if err != nil {
			return err
		}
		defer f.Close()
		if st, err := f.Stat(); err == nil {
			if ot, ok := rf.(tftp.OutgoingTransfer); ok {
				ot.SetSize(st.Size())
			}
		}
		_, err = rf.ReadFrom(f)
		return err
	}, nil)
	srv.SetTimeout(3 * time.Second)
	conn, err := net.ListenPacket("udp4", addr)
	if err != nil {
		return nil, fmt.Errorf("TFTP on %s: %w", addr, err)
	}
	go srv.Serve(conn)
	return srv.Shutdown, nil
}

// firstStage opens one of the iPXE files by its plain name.
func (s *Service) firstStage(name string) (*os.File, error) {
	name = path.Base("/" + name)
	if name != BIOSFile && name != EFIFile && name != "ipxe.efi" {
		return nil, fs.ErrNotExist
	}
	return os.Open(filepath.Join(s.IPXEDir, name))
}

// Report is what the deploy environment tells the server about itself.
type Report struct {
	MAC        string `json:"mac"`
	State      string `json:"state"`
	Phase      string `json:"phase,omitempty"`
	Target     string `json:"target,omitempty"`
	BytesDone  int64  `json:"bytes_done,omitempty"`
	BytesTotal int64  `json:"bytes_total,omitempty"`
	Reason     string `json:"reason,omitempty"`
}

// Handler serves /netboot/: the iPXE scripts, the deploy environment, the
// first stages for UEFI HTTP boot, and the reports of booted machines.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /netboot/boot.ipxe", s.script)
	mux.HandleFunc("GET /netboot/vmlinuz", s.envFile("vmlinuz"))
	mux.HandleFunc("GET /netboot/initrd.gz", s.envFile("initrd.gz"))
	mux.HandleFunc("GET /netboot/ipxe/{file}", func(w http.ResponseWriter, r *http.Request) {
		f, err := s.firstStage(r.PathValue("file"))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		defer f.Close()
		http.ServeContent(w, r, r.PathValue("file"), time.Time{}, f)
	})
	mux.HandleFunc("POST /netboot/report", s.report)
	return mux
}

func (s *Service) script(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	mac, err := net.ParseMAC(r.URL.Query().Get("mac"))
	if err != nil {
		// Fetched by hand or by a first stage that knew no MAC: ask again
		// with the NIC's own.
		fmt.Fprint(w, "#!ipxe\nchain /netboot/boot.ipxe?mac=${netX/mac}\n")
		return
	}
	targets, err := Targets(s.ImageDir)
	if err != nil {
		s.log().Warn("netboot targets file", "err", err)
	}
	local := s.Records.Deployed(mac)
	if local {
		if _, err := s.Records.Update(mac, func(m *Machine) { m.State, m.Phase, m.Reason = StateRebooted, "", "" }); err != nil {
			s.log().Warn("netboot records not saved", "err", err)
		}
	}
	fmt.Fprint(w, Script(ScriptOptions{
		Base: "http://" + r.Host, Image: s.Image, MAC: mac, Target: cmp.Or(targets[mac.String()], s.Target),
		Then: s.Then, Local: local,
	}))
}

func (s *Service) envFile(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, filepath.Join(s.EnvDir, name))
	}
}

func (s *Service) report(w http.ResponseWriter, r *http.Request) {
	var rep Report
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&rep); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	mac, err := net.ParseMAC(rep.MAC)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	switch rep.State {
	case StateDeploying, StateVerified, StateFailed:
	default:
		http.Error(w, "unknown state "+rep.State, http.StatusBadRequest)
		return
	}
	_, err = s.Records.Update(mac, func(m *Machine) {
		m.State, m.Phase, m.Reason = rep.State, rep.Phase, rep.Reason
		if rep.State != StateVerified {
			m.Verified = time.Time{} // written again: no longer deployed
		}
		if rep.Target != "" {
			m.Target = rep.Target
		}
		if rep.BytesTotal > 0 {
			m.BytesDone, m.BytesTotal = rep.BytesDone, rep.BytesTotal
		}
		if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
			m.IP = ap.Addr().Unmap().String()
		}
	})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
