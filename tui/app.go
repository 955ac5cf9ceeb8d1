package tui

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/anacrolix/torrent/metainfo"
	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"

	"ezio/disks"
	"ezio/engine"
	"ezio/engine/discover"
	"ezio/engine/server"
)

// Screen is one page of the wizard. Screens change by messages, never by
// reaching into the root. Its help.KeyMap lists every key it answers to:
// the footer and the "?" page are drawn from it, so a key that works is a
// key that is shown. Init is called each time the screen is shown, also
// when Esc comes back to it from an error: it rebuilds what a finished
// form left behind, from the values the screen keeps.
type Screen interface {
	Init() tea.Cmd
	Update(tea.Msg) (Screen, tea.Cmd)
	View() string
	help.KeyMap
}

// Runner is a screen with work in progress that Ctrl-C must ask about.
type Runner interface {
	Running() bool
	Stop()
	// StopQuestion is what Ctrl-C asks, in the job's own words.
	StopQuestion() (question, consequence string)
}

// Messages between screens and the root.
type (
	// switchMsg shows a screen.
	switchMsg struct{ to Screen }
	// backToMenuMsg returns to the main menu.
	backToMenuMsg struct{}
	// errorMsg shows what went wrong and what to do; back is where Esc
	// returns to (nil: the menu).
	errorMsg struct {
		title, what, hint string
		back              Screen
	}
)

func show(s Screen) tea.Cmd { return func() tea.Msg { return switchMsg{s} } }

// showError shows err, named for what happened (see describe).
func showError(title string, err error, hint string, back Screen) tea.Cmd {
	return errorScreen(describe(title, err, hint), back)
}

// Deps is everything the wizard does to the world, so tests can replace it.
type Deps struct {
	Ctx           context.Context
	Logger        *slog.Logger
	Tuning        engine.Tuning
	ConfigPath    string
	ListImages    func(ctx context.Context, base string) ([]server.ImageEntry, error)
	FetchTorrent  func(ctx context.Context, src string) (*engine.FetchedTorrent, error)
	ListDisks     func() ([]disks.Disk, error)
	PrepareDeploy func(mi *metainfo.MetaInfo, target string) error
	Deploy        func(ctx context.Context, o engine.DeployOptions) (*engine.Job, error)
	Seed          func(ctx context.Context, o engine.SeedOptions) (*engine.Job, error)
	// Demo starts the demo swarm and returns its seeder; nil hides it.
	Demo     func(ctx context.Context) (*engine.Job, error)
	DiskDeps // whole-disk images and the --then action (deploy_disk.go)
	// AttachDaemon connects to a control daemon (HOST:PORT or
	// unix:/PATH); nil hides "Attach to a running ezio daemon".
	// DaemonAddr is the address the form starts with.
	AttachDaemon func(addr string) (Daemon, error)
	DaemonAddr   string
	// Announce puts a seeder on the LAN's mDNS (discover.Announce); nil
	// announces nothing.
	Announce func(ctx context.Context, in discover.Info) (stop func(), err error)
}

// RealDeps acts on this machine.
func RealDeps(ctx context.Context, log *slog.Logger, tu engine.Tuning) *Deps {
	return &Deps{
		Ctx: ctx, Logger: log, Tuning: tu, ConfigPath: DefaultConfigPath(),
		ListImages: engine.ListImages, FetchTorrent: func(ctx context.Context, src string) (*engine.FetchedTorrent, error) {
			return discover.FetchTorrent(ctx, src, discover.DefaultTimeout)
		}, ListDisks: disks.List,
		PrepareDeploy: func(mi *metainfo.MetaInfo, target string) error {
			_, _, err := engine.PrepareDeploy(mi, target, false)
			return err
		},
		Deploy: engine.Deploy, Seed: engine.Seed, Announce: discover.Announce,
	}
}

// Model is the root: it owns the shared state and routes to one screen.
type Model struct {
	c       *Common
	deps    *Deps
	cfg     *Config
	menu    *Menu
	cur     Screen
	askQuit bool // Ctrl-C pressed while work runs
	help    bool // the "?" page of the current screen
	serve   ServeValues
	build   BuildValues
	capture CaptureValues
	deploy  DeployValues
	attach  AttachValues
}

// New builds the wizard at its main menu.
func New(c *Common, deps *Deps, cfg *Config) *Model {
	if cfg == nil {
		cfg = &Config{}
	}
	m := &Model{c: c, deps: deps, cfg: cfg}
	m.menu = NewMenu(c, deps.Demo != nil, deps.AttachDaemon != nil)
	m.cur = m.menu
	return m
}

// Start shows s first (the demo opens straight on its dashboard).
func (m *Model) Start(s Screen) { m.cur = s }

// Current is the screen on display (for tests).
func (m *Model) Current() Screen { return m.cur }

func (m *Model) Init() tea.Cmd { return m.cur.Init() }

func (m *Model) running() Runner {
	if r, ok := m.cur.(Runner); ok && r.Running() {
		return r
	}
	return nil
}

func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.c.Width, m.c.Height = msg.Width, msg.Height
	case tea.KeyMsg:
		if m.askQuit {
			switch {
			case key.Matches(msg, m.c.Keys.Yes):
				m.askQuit = false
				if r := m.running(); r != nil {
					r.Stop()
				}
			case key.Matches(msg, m.c.Keys.No), key.Matches(msg, m.c.Keys.ForceQuit):
				m.askQuit = false
			}
			return m, nil
		}
		if key.Matches(msg, m.c.Keys.ForceQuit) || (key.Matches(msg, m.c.Keys.Quit) && m.quitKeyIsFree()) {
			if m.running() != nil {
				m.askQuit = true
				return m, nil
			}
			return m, tea.Quit
		}
		if m.help {
			// Any key closes the "?" page.
			m.help = false
			return m, nil
		}
		if key.Matches(msg, m.c.Keys.Help) && m.quitKeyIsFree() && !m.ownsHelp() {
			m.help = true
			return m, nil
		}
	case switchMsg:
		m.cur, m.help = msg.to, false
		return m, m.cur.Init()
	case backToMenuMsg:
		m.menu = NewMenu(m.c, m.deps.Demo != nil, m.deps.AttachDaemon != nil)
		m.cur, m.help = m.menu, false
		return m, nil
	case errorMsg:
		m.cur, m.help = &ErrorScreen{c: m.c, title: msg.title, what: msg.what, hint: msg.hint, back: msg.back}, false
		return m, nil
	case jobFinishedMsg:
		msg.result.c = m.c
		m.cur = msg.result
		return m, nil
	case menuChoiceMsg:
		return m, m.open(msg.choice)
	}
	var cmd tea.Cmd
	m.cur, cmd = m.cur.Update(msg)
	return m, cmd
}

// quitKeyIsFree tells whether "q" means quit here: not while typing.
func (m *Model) quitKeyIsFree() bool {
	switch s := m.cur.(type) {
	case *Menu, *Result, *DisksScreen, *ErrorScreen:
		return true
	case *Dashboard:
		return !s.typing()
	case *DiskSeedDashboard:
		return !s.typing()
	case *AttachDashboard:
		return !s.typing()
	}
	return false
}

// ownsHelp: the dashboard shows its full key list in its own footer.
func (m *Model) ownsHelp() bool {
	switch m.cur.(type) {
	case *Dashboard, *DiskSeedDashboard, *AttachDashboard:
		return true
	}
	return false
}

// helpPage lists every key of the current screen.
func (m *Model) helpPage() string {
	c, st := m.c, m.c.Styles
	lines := []string{c.titleBar("keys", ""), "", "  " + st.Heading.Render("Keys on this screen"), ""}
	for _, l := range c.footer(m.cur, true) {
		lines = append(lines, " "+l)
	}
	return c.page(lines, keyList{as(c.Keys.Back, "close")})
}

func (m *Model) open(c menuChoice) tea.Cmd {
	switch c {
	case choiceDeploy:
		return show(NewDeployFlow(m.c, m.deps, &m.deploy))
	case choiceServe:
		return show(NewServeFlow(m.c, m.deps, &m.serve))
	case choiceCapture:
		return show(NewCaptureFlow(m.c, m.deps, &m.capture, &m.serve))
	case choiceBuild:
		return show(NewBuildFlow(m.c, m.deps, &m.build, &m.serve))
	case choiceAttach:
		return show(NewAttachFlow(m.c, m.deps, &m.attach))
	case choiceDisks:
		return show(NewDisksScreen(m.c, m.deps))
	case choiceSettings:
		return show(NewSettings(m.c, m.deps, m.cfg))
	case choiceDemo:
		return startDemo(m.c, m.deps)
	case choiceQuit:
		return tea.Quit
	}
	return nil
}

func (m *Model) View() string {
	if m.help {
		return m.helpPage()
	}
	v := m.cur.View()
	r := m.running()
	if !m.askQuit || r == nil {
		return v
	}
	// The question replaces the last lines, so it is seen at any size.
	st, k := m.c.Styles, m.c.Keys
	question, consequence := r.StopQuestion()
	lines := strings.Split(v, "\n")
	q := []string{st.Bad.Render(" "+question+" ") + st.Text.Render(" "+consequence)}
	q = append(q, m.c.footer(keyList{as(k.Yes, "stop"), as(k.No, "keep going")}, false)...)
	if len(lines) >= len(q) {
		copy(lines[len(lines)-len(q):], q)
	}
	return m.c.screen(lines)
}

// ErrorScreen says what happened and what to do about it.
type ErrorScreen struct {
	c                 *Common
	title, what, hint string
	back              Screen
}

func (e *ErrorScreen) Init() tea.Cmd { return nil }

func (e *ErrorScreen) keys() keyList {
	k := e.c.Keys
	if e.back == nil {
		return keyList{as(k.Back, "back to the menu"), k.Quit}
	}
	return keyList{as(k.Back, "back, values kept"), k.Quit}
}

func (e *ErrorScreen) ShortHelp() []key.Binding  { return e.keys() }
func (e *ErrorScreen) FullHelp() [][]key.Binding { return [][]key.Binding{e.keys()} }

func (e *ErrorScreen) Update(msg tea.Msg) (Screen, tea.Cmd) {
	if k, ok := msg.(tea.KeyMsg); ok && (key.Matches(k, e.c.Keys.Back) || key.Matches(k, e.c.Keys.Enter)) {
		if e.back != nil {
			b := e.back
			return e, func() tea.Msg { return switchMsg{b} }
		}
		return e, func() tea.Msg { return backToMenuMsg{} }
	}
	return e, nil
}

func (e *ErrorScreen) View() string {
	c, st := e.c, e.c.Styles
	w := min(c.Width-4, 76)
	var body []string
	for _, l := range wrap(e.title, w-4) {
		body = append(body, st.Bad.Render(l))
	}
	body = append(body, "")
	body = append(body, wrap(e.what, w-4)...)
	if e.hint != "" {
		body = append(body, "", st.Heading.Render("What to do"))
		body = append(body, wrap(e.hint, w-4)...)
	}
	lines := []string{c.titleBar("error", ""), ""}
	lines = append(lines, indent(c.box("", body, w, len(body)+2, true), 2)...)
	return c.page(lines, e)
}

func indent(ls []string, n int) []string {
	p := strings.Repeat(" ", n)
	for i := range ls {
		ls[i] = p + ls[i]
	}
	return ls
}

// wrap breaks text into lines of at most w cells at spaces; a word wider
// than a line (a long path) is cut between characters, never inside one.
func wrap(s string, w int) []string {
	var out []string
	for _, para := range strings.Split(s, "\n") {
		line := ""
		for _, word := range strings.Fields(para) {
			switch {
			case line == "":
				line = word
			case ansi.StringWidth(line)+1+ansi.StringWidth(word) <= w:
				line += " " + word
			default:
				out = append(out, line)
				line = word
			}
			for w > 0 && ansi.StringWidth(line) > w {
				head := ansi.Truncate(line, w, "")
				out = append(out, head)
				line = line[len(head):]
			}
		}
		out = append(out, line)
	}
	return out
}

func errorTitle(what string) string { return fmt.Sprintf("Could not %s", what) }
