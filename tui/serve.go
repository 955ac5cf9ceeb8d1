package tui

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/huh"

	"ezio/disks/diskimage"
	"ezio/engine"
	"ezio/engine/discover"
	"ezio/engine/server"
	"ezio/engine/torrentfile"
	"ezio/tui/format"
)

// ServeValues are what the Serve form asks; kept between visits.
type ServeValues struct {
	// Torrent is a torrent file, whose data is Source, or a disk image
	// directory (ezio-disk.json and each partition's data: no Source).
	Torrent, Source string
	// Host is the address to serve on ("" = every interface), Port the
	// tracker and image server's port.
	Host, Port string
	NoTracker  bool
	// Expect is how many clients the room has ("" or 0: not said);
	// UploadLimit caps what this machine sends, like "50MiB" a second.
	Expect, UploadLimit string
	// NoAnnounce keeps the server off mDNS (clients then need its
	// address); ExitWhenDone stops serving once the Expect clients are
	// done and none still needs data, as `ezio seed --exit-when-done`.
	NoAnnounce, ExitWhenDone bool
	// Verify hashes the whole source before serving (ezio seed --verify).
	Verify bool
	// Netboot boots a disk image's room from the network (serve_netboot.go).
	Netboot NetbootValues
}

// ServeFlow asks for a torrent and its data, or a disk image directory,
// and how to serve it, then opens the seeder's dashboard.
type ServeFlow struct {
	c      *Common
	deps   *Deps
	v      *ServeValues
	hosts  []localAddr
	form   *huh.Form
	formID int
	busy   string
	// tracker is the form's "run the tracker" answer (the opposite of
	// v.NoTracker, so that the zero value of ServeValues runs it);
	// announce likewise of v.NoAnnounce.
	tracker, announce bool
	// nameOf is the image name of the torrent or disk image last typed,
	// for the client command shown on the form, and whether it is a disk.
	nameOf struct {
		path, name string
		disk       bool
	}
	// onRecord counts the machines deployed before, for the image in dir.
	onRecord struct {
		dir string
		n   int
	}
}

// serveStartedMsg carries the started seeder (or why it did not start).
type serveStartedMsg struct {
	flow   *ServeFlow
	dash   Screen
	err    error
	doing  string
	hint   string
	expect int
	// problem, when set, is err in the wizard's words already.
	problem *problem
}

// localAddr is one address of this machine a server may listen on.
type localAddr struct{ iface, ip string }

// listLocalAddrs is localAddrs, hostName os.Hostname; tests pin them.
var (
	listLocalAddrs = localAddrs
	hostName       = os.Hostname
)

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
		v.Port = strconv.Itoa(server.DefaultTrackerPort)
	}
	s := &ServeFlow{c: c, deps: deps, v: v, hosts: listLocalAddrs()}
	s.build()
	return s
}

func (s *ServeFlow) build() {
	v := s.v
	s.tracker = !v.NoTracker
	s.announce = !v.NoAnnounce
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
	// A directory is a disk image or nothing this form can serve.
	served := func(p string) error {
		if err := exists(p); err != nil {
			return err
		}
		fi, _ := os.Stat(trimmed(p))
		switch _, disk := s.image(); {
		case !fi.IsDir():
			return nil
		case !disk:
			return fmt.Errorf("this directory is not a disk image (no %s in it)", diskimage.ManifestFile)
		case s.deps.SeedDisk == nil:
			return errors.New("disk images cannot be served from here")
		}
		return nil
	}
	disk := func() bool { _, d := s.image(); return d }
	hosts := []huh.Option[string]{huh.NewOption("every interface", "")}
	for _, h := range s.hosts {
		hosts = append(hosts, huh.NewOption(h.ip+" ("+h.iface+")", h.ip))
	}
	groups := []*huh.Group{
		huh.NewGroup(
			huh.NewInput().Title("Torrent file or disk image").Description("a torrent made by Capture or Build a torrent, or a disk image directory").Value(&v.Torrent).Validate(served),
			&skippedFor{Field: huh.NewInput().Title("Image data").Description("the extent directory, image file or partition the torrent describes").Value(&v.Source).Validate(func(p string) error {
				if disk() {
					return nil
				}
				return exists(p)
			}), skip: disk, title: "Image data", note: "in the disk image directory: each partition's torrent and data"},
		),
		huh.NewGroup(
			huh.NewSelect[string]().Title("Serve on").Inline(true).Options(hosts...).Value(&v.Host),
			huh.NewInput().Title("Port of the image server").Value(&v.Port).Validate(positive(1, 65535)),
			&skippedFor{Field: huh.NewConfirm().Title("Run the tracker here?").
				Description("yes: clients need only this address; no: the torrent's own").
				Affirmative("Yes").Negative("No").Value(&s.tracker), skip: disk, title: "Run the tracker here?",
				note: "yes, for a disk image: clients get its table and torrents here"},
			huh.NewInput().Title("Clients expected").Description("how many machines the room has; empty: not said").Value(&v.Expect).Validate(optional(positive(1, 100000))),
			huh.NewInput().Title("Upload limit per second").Description("e.g. 50MiB, to leave room on the LAN; empty: none").Value(&v.UploadLimit).Validate(func(s string) error {
				_, err := parseRate(s)
				return err
			}),
		),
		huh.NewGroup(verifyQuestion(&v.Verify)),
	}
	groups = append(groups, s.netbootGroups(disk)...)
	groups = append(groups,
		// Finding the server and ending by itself need the tracker: it is
		// what clients reach and what counts the room.
		huh.NewGroup(
			huh.NewConfirm().Title("Announce this server on the LAN?").
				Description("yes: clients find it by themselves (mDNS), nobody types its address").
				Affirmative("Yes").Negative("No").Value(&s.announce),
		).WithHideFunc(func() bool { return !s.serves() }),
		huh.NewGroup(
			huh.NewConfirm().Title("Stop serving when the room is done?").
				Description("once the expected clients are done and none still needs data").
				Affirmative("Yes").Negative("No").Value(&v.ExitWhenDone),
		).WithHideFunc(func() bool { return !s.serves() || expectOf(v.Expect) == 0 }),
	)
	s.form, s.formID = newForm(s.c, groups...)
}

// serves tells whether the tracker and image server will run: as
// answered for a torrent, always for a disk image.
func (s *ServeFlow) serves() bool {
	_, disk := s.image()
	return s.tracker || disk
}

func expectOf(s string) int {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 0 {
		return 0
	}
	return n
}

func optional(check func(string) error) func(string) error {
	return func(s string) error {
		if strings.TrimSpace(s) == "" {
			return nil
		}
		return check(strings.TrimSpace(s))
	}
}

// parseRate reads a byte rate with the one size rule (torrentfile.ParseSize);
// empty means no limit.
func parseRate(s string) (int64, error) {
	if strings.TrimSpace(s) == "" {
		return 0, nil
	}
	n, err := torrentfile.ParseSize(strings.TrimSuffix(strings.TrimSpace(s), "ps"))
	if err != nil {
		return 0, fmt.Errorf("a rate like 50MiB, or empty for none")
	}
	return n, nil
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
			s.v.NoAnnounce = !s.announce
			if _, disk := s.image(); disk {
				s.v.NoTracker = false // a disk image is served with it
				return s, s.startDisk()
			}
			return s, s.start()
		}
		return s, nil
	case serveStartedMsg:
		if msg.flow != s {
			return s, nil
		}
		s.busy = ""
		if msg.problem != nil {
			return s, errorScreen(*msg.problem, s)
		}
		if msg.err != nil {
			hint := msg.hint
			if hint == "" {
				hint = "Check that the data matches the torrent; Capture or Build a torrent make both."
			}
			return s, showError("Could not "+msg.doing, msg.err, hint, s)
		}
		// Forgetting the deployed machines is done once, not on every
		// later visit.
		s.v.Netboot.Redeploy = false
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

// tuning is the wizard's tuning with the form's upload limit, and
// BitTorrent on the address served on.
func (s *ServeFlow) tuning() engine.Tuning {
	v, tu := s.v, s.deps.Tuning
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
	return tu
}

// start loads the torrent and starts the seeder in the background.
func (s *ServeFlow) start() tea.Cmd {
	v, tu := *s.v, s.tuning()
	expect := expectOf(v.Expect)
	s.busy = "reading " + trimmed(v.Torrent) + " and starting to serve"
	ctx, deps, c, flow, host := s.deps.Ctx, s.deps, s.c, s, s.clientHost()
	return func() tea.Msg {
		mi, err := engine.LoadTorrent(ctx, trimmed(v.Torrent))
		if err != nil {
			return serveStartedMsg{flow: flow, err: err, doing: "read the torrent"}
		}
		if err := verifySource(ctx, v, mi); err != nil {
			return serveStartedMsg{flow: flow, err: err, doing: "check the source", hint: server.StuckAdvice}
		}
		j, err := deps.Seed(ctx, engine.SeedOptions{
			Torrent: mi, Source: trimmed(v.Source), TrackerListen: v.listen(), NoTracker: v.NoTracker,
			Expect: expect, Tuning: tu, Logger: deps.Logger,
		})
		if err != nil {
			return serveStartedMsg{flow: flow, err: err, doing: "serve the image"}
		}
		d := NewDashboard(c, engine.RoleSeed, "seed "+format.Name(j.Name()), j)
		d.expect = expect
		d.howTo = clientInstructions(j.ServerURL(), host, j.Name())
		if u := j.ServerURL(); u != "" {
			if inst, err := announce(ctx, deps, &v, u, j.Name(), j.Done()); err != nil {
				d.howTo = append(d.howTo, "not announced on the LAN, clients need this address: "+err.Error())
			} else if inst != "" {
				d.howTo = roomInstructions(u, host, j.Name(), inst)
			}
		}
		if v.ExitWhenDone && expect > 0 && !v.NoTracker {
			go watchRoom(ctx, j, expect)
		}
		return serveStartedMsg{flow: flow, dash: d}
	}
}

// announce puts the server at serverURL on the LAN (DNS-SD _ezio._tcp)
// with its one image, as `ezio seed` does, until done closes; it returns
// the instance name, "" when the form said not to announce.
func announce(ctx context.Context, deps *Deps, v *ServeValues, serverURL, image string, done <-chan struct{}) (string, error) {
	if v.NoAnnounce || deps.Announce == nil {
		return "", nil
	}
	inst := instanceName()
	stop, err := deps.Announce(ctx, discover.Info{Name: inst, BaseURL: serverURL, Listen: v.listen(), Images: []string{image}, Logger: deps.Logger})
	if err != nil {
		return "", err
	}
	go func() { <-done; stop() }()
	return inst, nil
}

// image is the name of the image typed so far ("" if it cannot be read
// yet) and whether it is a disk image directory; read once per path.
func (s *ServeFlow) image() (name string, disk bool) {
	p := trimmed(s.v.Torrent)
	if p == "" {
		return "", false
	}
	if p != s.nameOf.path {
		s.nameOf.path, s.nameOf.name, s.nameOf.disk = p, "", false
		fi, err := os.Stat(p)
		switch {
		case err != nil:
		case fi.IsDir() && diskimage.IsDiskImage(p):
			s.nameOf.disk = true
			if m, err := diskimage.LoadDir(p); err == nil {
				s.nameOf.name = m.Name
			}
		case fi.Mode().IsRegular():
			if mi, err := engine.LoadTorrent(s.deps.Ctx, p); err == nil {
				if info, err := mi.UnmarshalInfo(); err == nil {
					s.nameOf.name = info.Name
				}
			}
		}
	}
	return s.nameOf.name, s.nameOf.disk
}

// watchRoom stops a seeder once expect clients have completed and no
// client that still needs data is connected (as `ezio seed
// --exit-when-done` does).
func watchRoom(ctx context.Context, j *engine.Job, expect int) {
	engine.RoomWatch{Expect: expect}.Run(ctx, j)
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
	name, disk := s.image()
	target := "/dev/sdX --yes"
	if disk {
		target = diskTarget
	}
	if name != "" && s.serves() && s.announce {
		// Announced: the command every client can run, no address in it;
		// in place of the blank line, so that the form's last line (its
		// error) stays on screen.
		lines = append(lines, "  "+st.Muted.Render("or ")+st.Text.Render("ezio deploy auto:"+name+" "+target)+
			st.Muted.Render("  mDNS ")+st.Text.Render(instanceName()))
	} else {
		lines = append(lines, "")
	}
	lines = append(lines, indent(strings.Split(s.form.View(), "\n"), 1)...)
	return c.page(lines, s)
}
