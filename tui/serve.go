package tui

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/huh"

	"ezio/engine"
)

// ServeValues are what the Serve form asks; kept between visits.
type ServeValues struct {
	Torrent, Source string
	// Host is the address to serve on ("" = every interface), Port the
	// tracker and image server's port.
	Host, Port string
	NoTracker  bool
	// Expect is how many clients the room has ("" or 0: not said);
	// UploadLimit caps what this machine sends, like "50MiB" a second.
	Expect, UploadLimit string
}

// ServeFlow asks for a torrent, its data and how to serve it, then opens
// the seeder's dashboard.
type ServeFlow struct {
	c      *Common
	deps   *Deps
	v      *ServeValues
	hosts  []localAddr
	form   *huh.Form
	formID int
	busy   string
	// tracker is the form's "run the tracker" answer (the opposite of
	// v.NoTracker, so that the zero value of ServeValues runs it).
	tracker bool
}

// serveStartedMsg carries the started seeder (or why it did not start).
type serveStartedMsg struct {
	flow   *ServeFlow
	dash   *Dashboard
	err    error
	doing  string
	expect int
}

// localAddr is one address of this machine a server may listen on.
type localAddr struct{ iface, ip string }

// listLocalAddrs is localAddrs; tests pin it.
var listLocalAddrs = localAddrs

// localAddrs lists this machine's IPv4 addresses, loopback last.
func localAddrs() []localAddr {
	var out, lo []localAddr
	ifs, _ := net.Interfaces()
	for _, i := range ifs {
		if i.Flags&net.FlagUp == 0 {
			continue
		}
		as, _ := i.Addrs()
		for _, a := range as {
			n, ok := a.(*net.IPNet)
			if !ok || n.IP.To4() == nil {
				continue
			}
			la := localAddr{i.Name, n.IP.String()}
			if n.IP.IsLoopback() {
				lo = append(lo, la)
			} else {
				out = append(out, la)
			}
		}
	}
	return append(out, lo...)
}

func NewServeFlow(c *Common, deps *Deps, v *ServeValues) *ServeFlow {
	if v.Port == "" {
		v.Port = strconv.Itoa(engine.DefaultTrackerPort)
	}
	s := &ServeFlow{c: c, deps: deps, v: v, hosts: listLocalAddrs()}
	s.build()
	return s
}

func (s *ServeFlow) build() {
	v := s.v
	s.tracker = !v.NoTracker
	nonEmpty := func(what string) func(string) error {
		return func(s string) error {
			if strings.TrimSpace(s) == "" {
				return fmt.Errorf("%s is needed", what)
			}
			return nil
		}
	}
	exists := func(s string) error {
		if err := nonEmpty("a path")(s); err != nil {
			return err
		}
		if _, err := os.Stat(strings.TrimSpace(s)); err != nil {
			return fmt.Errorf("%s: no such file or device", s)
		}
		return nil
	}
	hosts := []huh.Option[string]{huh.NewOption("every interface", "")}
	for _, h := range s.hosts {
		hosts = append(hosts, huh.NewOption(h.ip+" ("+h.iface+")", h.ip))
	}
	s.form, s.formID = newForm(s.c,
		huh.NewGroup(
			huh.NewInput().Title("Torrent file").Description("made by Capture or Build a torrent").Value(&v.Torrent).Validate(exists),
			huh.NewInput().Title("Image data").Description("the extent directory, image file or partition the torrent describes").Value(&v.Source).Validate(exists),
		),
		huh.NewGroup(
			huh.NewSelect[string]().Title("Serve on").Inline(true).Options(hosts...).Value(&v.Host),
			huh.NewInput().Title("Port of the image server").Value(&v.Port).Validate(positive(1, 65535)),
			huh.NewConfirm().Title("Run the tracker here?").
				Description("yes: clients need only this address; no: the torrent's own").
				Affirmative("Yes").Negative("No").Value(&s.tracker),
			huh.NewInput().Title("Clients expected").Description("how many machines the room has; empty: not said").Value(&v.Expect).Validate(optional(positive(1, 100000))),
			huh.NewInput().Title("Upload limit per second").Description("e.g. 50MiB, to leave room on the LAN; empty: none").Value(&v.UploadLimit).Validate(func(s string) error {
				_, err := parseRate(s)
				return err
			}),
		),
	)
}

func optional(check func(string) error) func(string) error {
	return func(s string) error {
		if strings.TrimSpace(s) == "" {
			return nil
		}
		return check(strings.TrimSpace(s))
	}
}

// parseRate reads a byte rate: "50MiB", "50M", "800k", "1G", or bytes;
// the units are binary (M = MiB). Empty or 0 means no limit.
func parseRate(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "/s"), "ps")
	if t == "" {
		return 0, nil
	}
	t = strings.TrimSuffix(strings.TrimSuffix(t, "b"), "i")
	mult := 1.0
	if n := len(t); n > 0 {
		switch t[n-1] {
		case 'k':
			mult, t = 1<<10, t[:n-1]
		case 'm':
			mult, t = 1<<20, t[:n-1]
		case 'g':
			mult, t = 1<<30, t[:n-1]
		}
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(t), 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("a rate like 50MiB, or empty for none")
	}
	return int64(f * mult), nil
}

// Init rebuilds the form from the kept values (after an error too).
func (s *ServeFlow) Init() tea.Cmd {
	s.busy = ""
	s.build()
	return s.form.Init()
}

func (s *ServeFlow) Update(msg tea.Msg) (Screen, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.KeyMsg:
		if key.Matches(msg, s.c.Keys.Back) {
			return s, func() tea.Msg { return backToMenuMsg{} }
		}
		if s.busy != "" {
			return s, nil
		}
	case formDoneMsg:
		if msg.id == s.formID {
			s.v.NoTracker = !s.tracker
			return s, s.start()
		}
		return s, nil
	case serveStartedMsg:
		if msg.flow != s {
			return s, nil
		}
		s.busy = ""
		if msg.err != nil {
			return s, showError("Could not "+msg.doing, msg.err, "Check that the data matches the torrent; Capture or Build a torrent make both.", s)
		}
		return s, show(msg.dash)
	}
	_, cmd := s.form.Update(msg)
	return s, cmd
}

// listen is the tracker and image server's address, HOST:PORT.
func (v *ServeValues) listen() string {
	return net.JoinHostPort(v.Host, strings.TrimSpace(v.Port))
}

// clientHost is the address clients type: the chosen one, or this
// machine's first LAN address when serving on every interface.
func (s *ServeFlow) clientHost() string {
	if s.v.Host != "" {
		return s.v.Host
	}
	if len(s.hosts) > 0 {
		return s.hosts[0].ip
	}
	return "127.0.0.1"
}

// start loads the torrent and starts the seeder in the background.
func (s *ServeFlow) start() tea.Cmd {
	v := *s.v
	tu := s.deps.Tuning
	rate, _ := parseRate(v.UploadLimit)
	if rate > 0 {
		tu.MaxUploadRate = rate
	}
	if v.Host != "" {
		// BitTorrent on the same address, on its configured port.
		port := strconv.Itoa(engine.DefaultPeerPort)
		if _, p, err := net.SplitHostPort(tu.ListenAddr); err == nil && p != "" {
			port = p
		}
		tu.ListenAddr = net.JoinHostPort(v.Host, port)
	}
	expect, _ := strconv.Atoi(strings.TrimSpace(v.Expect))
	s.busy = "reading " + trimmed(v.Torrent) + " and starting to serve"
	ctx, deps, c, flow, host := s.deps.Ctx, s.deps, s.c, s, s.clientHost()
	return func() tea.Msg {
		mi, err := engine.LoadTorrent(ctx, trimmed(v.Torrent))
		if err != nil {
			return serveStartedMsg{flow: flow, err: err, doing: "read the torrent"}
		}
		j, err := deps.Seed(ctx, engine.SeedOptions{
			Torrent: mi, Source: trimmed(v.Source), TrackerListen: v.listen(), NoTracker: v.NoTracker,
			Expect: expect, Tuning: tu, Logger: deps.Logger,
		})
		if err != nil {
			return serveStartedMsg{flow: flow, err: err, doing: "serve the image"}
		}
		d := NewDashboard(c, engine.RoleSeed, "seed "+j.Name(), j)
		d.expect = expect
		d.howTo = clientInstructions(j.ServerURL(), host, j.Name())
		return serveStartedMsg{flow: flow, dash: d}
	}
}

// clientInstructions is what to do on each client, exactly: the address
// to give the wizard's Deploy, and the command line.
func clientInstructions(serverURL, host, name string) []string {
	if serverURL == "" {
		return []string{"no image server here: clients use the torrent's own tracker"}
	}
	base := serverURL
	if h := strings.TrimPrefix(serverURL, "http://"); h != serverURL {
		if sh, port, err := net.SplitHostPort(h); err == nil {
			if ip := net.ParseIP(sh); ip != nil && (ip.IsLoopback() || ip.IsUnspecified()) && host != "" {
				sh = host
			}
			base = "http://" + net.JoinHostPort(sh, port)
		}
	}
	addr := strings.TrimPrefix(base, "http://")
	return []string{
		"on each client: Deploy this machine from " + addr,
		"or: ezio deploy " + base + "/torrents/" + name + ".torrent DISK",
		"status page: " + base + "/",
	}
}

func (s *ServeFlow) ShortHelp() []key.Binding {
	if s.busy != "" {
		return []key.Binding{as(s.c.Keys.ForceQuit, "quit")}
	}
	return formKeys(s.c, s.form, "menu")
}
func (s *ServeFlow) FullHelp() [][]key.Binding { return [][]key.Binding{s.ShortHelp()} }

func (s *ServeFlow) View() string {
	c, st := s.c, s.c.Styles
	lines := []string{c.titleBar("serve an image", ""), ""}
	if s.busy != "" {
		lines = append(lines, "  "+st.Accent.Render(st.Glyphs.Spinner[0])+" "+st.Text.Render(s.busy+"..."))
		return c.page(lines, s)
	}
	// Where clients will find this server, as answered so far.
	port := strings.TrimSpace(s.v.Port)
	lines[1] = "  " + st.Muted.Render("clients deploy from ") + st.Text.Render(net.JoinHostPort(s.clientHost(), port)) +
		st.Muted.Render("  status page ") + st.Text.Render("http://"+net.JoinHostPort(s.clientHost(), port)+"/")
	lines = append(lines, "")
	lines = append(lines, indent(strings.Split(s.form.View(), "\n"), 1)...)
	return c.page(lines, s)
}
