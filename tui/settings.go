package tui

import (
	"fmt"
	"net"
	"strconv"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/huh"

	"ezio/engine"
	"ezio/themes"
)

// Settings edits the theme and the engine's knobs, saves them, and says
// what each one does.
type Settings struct {
	c      *Common
	deps   *Deps
	cfg    *Config
	form   *huh.Form
	formID int
	saved  string
	theme  string
	aio    string
	hash   string
	cache  string
	port   string
}

func NewSettings(c *Common, deps *Deps, cfg *Config) *Settings {
	t := deps.Tuning
	s := &Settings{c: c, deps: deps, cfg: cfg, theme: c.Styles.Name,
		aio: strconv.Itoa(orDefault(t.AIOThreads, 4)), hash: strconv.Itoa(orDefault(t.HashingThreads, 2)),
		cache: strconv.Itoa(orDefault(t.CacheSizeMiB, engine.DefaultCacheSizeMiB)), port: strconv.Itoa(orDefault(cfg.ListenPort, engine.DefaultPeerPort))}
	s.build()
	return s
}

func orDefault(v, d int) int {
	if v > 0 {
		return v
	}
	return d
}

func positive(lo, hi int) func(string) error {
	return func(s string) error {
		n, err := strconv.Atoi(s)
		if err != nil || n < lo || n > hi {
			return fmt.Errorf("a number from %d to %d", lo, hi)
		}
		return nil
	}
}

func (s *Settings) build() {
	var opts []huh.Option[string]
	for _, n := range themes.Names() {
		opts = append(opts, huh.NewOption(n, n))
	}
	s.form, s.formID = newForm(s.c, huh.NewGroup(
		huh.NewSelect[string]().Title("Theme").Description("default follows the terminal; classic is white on blue; mono has no colour").Options(opts...).Value(&s.theme),
		huh.NewInput().Title("Disk I/O threads").Description("concurrent reads/writes; more helps SSDs and RAID, not one HDD").Value(&s.aio).Validate(positive(1, 64)),
		huh.NewInput().Title("Hashing threads").Description("pieces SHA-1 checked at once; at most the number of cores").Value(&s.hash).Validate(positive(1, 64)),
		huh.NewInput().Title("Cache size, MiB").Description("piece data held in memory; bigger absorbs slow disks").Value(&s.cache).Validate(positive(16, 65536)),
		huh.NewInput().Title("BitTorrent listen port").Description("where a server's peers connect; open it in firewalls (Deploy picks a free one)").Value(&s.port).Validate(positive(1, 65535)),
	))
}

// Init rebuilds the form from the values being edited.
func (s *Settings) Init() tea.Cmd {
	if s.saved != "" {
		return nil
	}
	s.build()
	return s.form.Init()
}

func (s *Settings) ShortHelp() []key.Binding {
	if s.saved != "" {
		return []key.Binding{as(s.c.Keys.Enter, "back to the menu")}
	}
	return formKeys(s.c, s.form, "menu")
}
func (s *Settings) FullHelp() [][]key.Binding { return [][]key.Binding{s.ShortHelp()} }

func (s *Settings) Update(msg tea.Msg) (Screen, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.KeyMsg:
		if key.Matches(msg, s.c.Keys.Back) {
			return s, func() tea.Msg { return backToMenuMsg{} }
		}
		if s.saved != "" && key.Matches(msg, s.c.Keys.Enter) {
			return s, func() tea.Msg { return backToMenuMsg{} }
		}
	case formDoneMsg:
		if msg.id == s.formID {
			return s, s.save()
		}
		return s, nil
	case settingsSavedMsg:
		if msg.s != s {
			return s, nil
		}
		if msg.err != nil {
			s.saved = "in effect for this session only"
			return s, showError("Could not save the settings", msg.err, "They apply to this session only.", nil)
		}
		s.saved = "saved to " + msg.path
		return s, nil
	}
	_, cmd := s.form.Update(msg)
	return s, cmd
}

// settingsSavedMsg says how writing the settings file ended.
type settingsSavedMsg struct {
	s    *Settings
	path string
	err  error
}

// save applies the settings to this session at once and writes the file
// in the background.
func (s *Settings) save() tea.Cmd {
	atoi := func(x string) int { n, _ := strconv.Atoi(x); return n }
	s.cfg.Theme = s.theme
	s.cfg.AIOThreads, s.cfg.HashingThreads, s.cfg.CacheSizeMiB, s.cfg.ListenPort = atoi(s.aio), atoi(s.hash), atoi(s.cache), atoi(s.port)
	s.c.Styles = themes.MustLoad(s.theme, themes.FromEnviron())
	s.deps.Tuning = s.cfg.Apply(s.deps.Tuning)
	host := "0.0.0.0"
	if h, _, err := net.SplitHostPort(s.deps.Tuning.ListenAddr); err == nil && h != "" {
		host = h
	}
	s.deps.Tuning.ListenAddr = net.JoinHostPort(host, strconv.Itoa(s.cfg.ListenPort))
	path := s.deps.ConfigPath
	if path == "" {
		s.saved = "in effect for this session (no config file)"
		return nil
	}
	s.saved = "being saved to " + path
	cfg := *s.cfg
	return func() tea.Msg { return settingsSavedMsg{s, path, cfg.Save(path)} }
}

func (s *Settings) View() string {
	if s.saved == "" {
		return formScreen(s.c, "settings", s.form, s)
	}
	c, st := s.c, s.c.Styles
	t := s.deps.Tuning
	lines := []string{c.titleBar("settings", ""), "", "  " + st.Good.Render("Settings "+s.saved+"."), "",
		"  " + st.Text.Render("theme "+s.cfg.Theme+": this screen is drawn with it"),
		"  " + st.Text.Render(fmt.Sprintf("every seed and deploy from now on: %d disk threads, %d hashing threads,", t.AIOThreads, t.HashingThreads)),
		"  " + st.Text.Render(fmt.Sprintf("%d MiB of piece cache, peers on port %d", t.CacheSizeMiB, s.cfg.ListenPort)),
	}
	return c.page(lines, s)
}
