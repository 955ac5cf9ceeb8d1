package discover

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/ipv4"
)

// The browsing side asks with miekg/dns messages itself instead of using
// hashicorp/mdns's client, which found nothing that python-zeroconf
// announces: miekg/dns refuses the NSEC record python-zeroconf puts among
// the additional records (an empty type bitmap block) and so drops the
// SRV, TXT and A records beside it, and the client then files records
// under the name it saw last, so an A record read before the SRV that
// points at it is lost too. Here every readable record of every response
// is kept and joined afterwards, and whatever is still missing is asked
// for by name. The answering side (announce.go) is hashicorp/mdns's.

var mdnsGroup = &net.UDPAddr{IP: net.IPv4(224, 0, 0, 251), Port: 5353}

// instance is what the answers say about one service instance.
type instance struct {
	name  string // full instance name, in miekg/dns's escaped form
	host  string // SRV target
	port  int
	txt   []string
	addrs []netip.Addr
	// hasSRV and hasTXT tell a record with empty content from no record.
	hasSRV, hasTXT bool
}

// records collects answers, by name.
type records struct {
	ptr map[string]bool // instance names under the service
	srv map[string]*dns.SRV
	txt map[string][]string
	a   map[string]map[netip.Addr]bool
}

func newRecords() *records {
	return &records{ptr: map[string]bool{}, srv: map[string]*dns.SRV{}, txt: map[string][]string{}, a: map[string]map[netip.Addr]bool{}}
}

func (r *records) add(rrs []dns.RR, service string) {
	for _, rr := range rrs {
		name := strings.ToLower(rr.Header().Name)
		gone := rr.Header().Ttl == 0 // a goodbye: the record is withdrawn
		switch rr := rr.(type) {
		case *dns.PTR:
			if name == service {
				if gone {
					delete(r.ptr, rr.Ptr)
				} else {
					r.ptr[rr.Ptr] = true
				}
			}
		case *dns.SRV:
			if gone {
				delete(r.srv, name)
			} else {
				r.srv[name] = rr
			}
		case *dns.TXT:
			if gone {
				delete(r.txt, name)
			} else {
				r.txt[name] = rr.Txt
			}
		case *dns.A:
			if a, ok := netip.AddrFromSlice(rr.A.To4()); ok {
				if r.a[name] == nil {
					r.a[name] = map[netip.Addr]bool{}
				}
				if gone {
					delete(r.a[name], a)
				} else {
					r.a[name][a] = true
				}
			}
		}
	}
}

// instances joins the records and lists what is still unknown.
func (r *records) instances() (done []instance, missing []dns.Question) {
	for name := range r.ptr {
		in := instance{name: name}
		key := strings.ToLower(name)
		if srv := r.srv[key]; srv != nil {
			in.hasSRV, in.host, in.port = true, srv.Target, int(srv.Port)
		} else {
			missing = append(missing, dns.Question{Name: name, Qtype: dns.TypeSRV, Qclass: dns.ClassINET})
		}
		if txt, ok := r.txt[key]; ok {
			in.hasTXT, in.txt = true, txt
		} else {
			missing = append(missing, dns.Question{Name: name, Qtype: dns.TypeTXT, Qclass: dns.ClassINET})
		}
		if in.hasSRV {
			for a := range r.a[strings.ToLower(in.host)] {
				in.addrs = append(in.addrs, a)
			}
			sort.Slice(in.addrs, func(i, j int) bool { return in.addrs[i].Less(in.addrs[j]) })
			if len(in.addrs) == 0 {
				missing = append(missing, dns.Question{Name: in.host, Qtype: dns.TypeA, Qclass: dns.ClassINET})
			}
		}
		if in.hasSRV && in.hasTXT {
			done = append(done, in)
		}
	}
	sort.Slice(done, func(i, j int) bool { return done[i].name < done[j].name })
	return done, missing
}

// query asks on one interface until ctx ends: the service's PTR once a
// second, and by name whatever an instance still lacks. It uses a
// one-shot query from an ephemeral port (RFC 6762 section 5.1), so
// responders answer by unicast and no socket on port 5353 is needed.
func query(ctx context.Context, ifi net.Interface) ([]instance, error) {
	ips := ipv4Addrs(ifi)
	if len(ips) == 0 {
		return nil, errors.New("no IPv4 address")
	}
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: ips[0]})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	pc := ipv4.NewPacketConn(conn)
	if err := pc.SetMulticastInterface(&ifi); err != nil {
		return nil, err
	}
	pc.SetMulticastTTL(255)
	pc.SetMulticastLoopback(true)

	service := Service + "." + Domain
	recs := newRecords()
	send := func(qs []dns.Question) error {
		m := new(dns.Msg)
		m.Id = dns.Id()
		m.Question = qs
		b, err := m.Pack()
		if err != nil {
			return err
		}
		_, err = conn.WriteToUDP(b, mdnsGroup)
		return err
	}
	ptr := []dns.Question{{Name: service, Qtype: dns.TypePTR, Qclass: dns.ClassINET}}
	if err := send(ptr); err != nil {
		return nil, err
	}
	go func() {
		<-ctx.Done()
		conn.SetReadDeadline(time.Now())
	}()

	buf := make([]byte, 9000)
	next := time.Now().Add(time.Second)
	asked := time.Now()
	for ctx.Err() == nil {
		wait := time.Until(next)
		if _, missing := recs.instances(); len(missing) > 0 && time.Since(asked) > 400*time.Millisecond {
			// Give the rest of a burst of answers a moment, then ask.
			send(missing)
			asked = time.Now()
		}
		conn.SetReadDeadline(time.Now().Add(min(wait, 200*time.Millisecond)))
		n, _, err := conn.ReadFromUDP(buf)
		if time.Now().After(next) {
			send(ptr)
			next = time.Now().Add(time.Second)
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return nil, err
		}
		if rrs, ok := unpackResponse(buf[:n]); ok {
			recs.add(rrs, service)
		}
	}
	done, _ := recs.instances()
	return done, nil
}

// unpackResponse returns the records of a DNS response, skipping those
// miekg/dns cannot read rather than losing the whole section: it refuses
// the NSEC records python-zeroconf adds (an empty type bitmap block), and
// would drop the SRV, TXT and A records beside them.
func unpackResponse(b []byte) ([]dns.RR, bool) {
	var m dns.Msg
	if err := m.Unpack(b); err == nil {
		return append(append(m.Answer, m.Ns...), m.Extra...), m.Response
	}
	if len(b) < 12 || b[2]&0x80 == 0 {
		return nil, false
	}
	qd := int(binary.BigEndian.Uint16(b[4:]))
	rrs := int(binary.BigEndian.Uint16(b[6:])) + int(binary.BigEndian.Uint16(b[8:])) + int(binary.BigEndian.Uint16(b[10:]))
	off := 12
	for i := 0; i < qd; i++ {
		_, next, err := dns.UnpackDomainName(b, off)
		if err != nil || next+4 > len(b) {
			return nil, false
		}
		off = next + 4
	}
	var out []dns.RR
	for i := 0; i < rrs && off < len(b); i++ {
		_, next, err := dns.UnpackDomainName(b, off)
		if err != nil || next+10 > len(b) {
			break
		}
		end := next + 10 + int(binary.BigEndian.Uint16(b[next+8:]))
		if end > len(b) {
			break
		}
		if rr, _, err := dns.UnpackRR(b[:end], off); err == nil {
			out = append(out, rr)
		}
		off = end
	}
	return out, true
}
